"""Retry scheduling for failed sends."""

from __future__ import annotations

import hashlib

from .config import RetryPolicy

# Jitter spreads retries of effects that failed together (e.g. receiver outage)
# so they do not hit the receiver again in one burst.  It is derived from the id
# rather than random so a replayed run schedules identically.
_JITTER_FRACTION = 10  # at most 1/10 of the delay


def jitter_ms(effect_id: str, attempts: int, delay_ms: int) -> int:
    """Deterministic jitter in ``[0, delay_ms // 10]`` for this effect and attempt."""
    span = delay_ms // _JITTER_FRACTION
    if span <= 0:
        return 0
    digest = hashlib.blake2b(f"{effect_id}:{attempts}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % (span + 1)


def retry_at(policy: RetryPolicy, effect_id: str, attempts: int, now_ms: int, permanent: bool) -> int | None:
    """When to retry after a failure, or ``None`` to dead-letter.

    ``attempts`` is the number of attempts made before this one.
    """
    if permanent or attempts + 1 >= policy.max_attempts:
        return None
    # Cap the exponent so huge attempt counts don't build enormous integers.
    delay = min(policy.max_ms, policy.base_ms * 2 ** min(attempts, 62))
    return now_ms + delay + jitter_ms(effect_id, attempts, delay)
