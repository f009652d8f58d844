"""Webhook adapter: POSTs each effect as JSON to a configured URL (SMS gateways etc.)."""

from __future__ import annotations

from typing import Any
from collections.abc import Mapping

import httpx

from .config import WebhookSettings
from .errors import ChannelError, PermanentError, TemporaryError
from .payload import delivery_payload

# 408 and 429 are client-side codes that explicitly mean "try again later".
_RETRYABLE_4XX = frozenset({408, 425, 429})


def classify_status(status: int, body: str) -> ChannelError | None:
    """Return ``None`` for 2xx, else the error class the status deserves."""
    if 200 <= status < 300:
        return None
    detail = f"webhook HTTP {status}: {body[:200]}"
    if status >= 500 or status in _RETRYABLE_4XX:
        return TemporaryError(detail)
    # Other 4xx (bad payload, unknown number) and unfollowed 3xx won't fix themselves.
    return PermanentError(detail)


class WebhookAdapter:
    """Adapter for ``type: webhook`` channels; one pooled HTTP client per channel."""

    def __init__(self, settings: WebhookSettings) -> None:
        self._settings = settings
        self._client = httpx.AsyncClient(timeout=settings.timeout_s, headers=dict(settings.headers))

    async def send(self, effect: Mapping[str, Any], rendered: Mapping[str, str]) -> None:
        """POST the delivery payload with ``Idempotency-Key`` set to the effect id."""
        headers = {"Idempotency-Key": str(effect.get("id", ""))}
        try:
            response = await self._client.post(
                self._settings.url, json=delivery_payload(effect, rendered), headers=headers
            )
        except httpx.HTTPError as err:
            # Connect/read timeouts and refused connections: the receiver may come back.
            raise TemporaryError(f"webhook {type(err).__name__}: {err}") from err
        error = classify_status(response.status_code, response.text)
        if error is not None:
            raise error

    async def flush(self) -> None:
        """Nothing to do: the receiver acknowledged each request."""

    async def close(self) -> None:
        """Close pooled connections."""
        await self._client.aclose()
