"""The JSON body that webhook receivers and the file sink see for one effect."""

from __future__ import annotations

from typing import Any
from collections.abc import Mapping

# Effect fields forwarded verbatim; "context" is deliberately left out because it
# carries the whole profile, which receivers do not need and should not store.
_FORWARDED = ("id", "channel", "contact", "to", "program", "version", "node", "event_id", "created_ms")


def delivery_payload(effect: Mapping[str, Any], rendered: Mapping[str, str]) -> dict[str, Any]:
    """Return the delivery body: the effect's routing fields plus the rendered message."""
    body = {key: effect.get(key) for key in _FORWARDED}
    body["message"] = dict(rendered)
    return body
