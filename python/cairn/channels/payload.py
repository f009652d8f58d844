"""The JSON bodies receivers see: per-effect deliveries and default webhook-action bodies."""

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


def action_payload(effect: Mapping[str, Any]) -> dict[str, Any]:
    """Body of a webhook action without a body template: the effect's template context.

    Unlike :func:`delivery_payload` this includes the profile: the program author
    chose to call this URL with it (the profile holds only the fields it needs).
    """
    context = effect.get("context") or {}
    return {
        "effect_id": effect.get("id"),
        "contact": effect.get("contact"),
        "program": effect.get("program"),
        "node": effect.get("node"),
        "event": context.get("event"),
        "profile": context.get("profile"),
        "loyalty": context.get("loyalty"),
    }
