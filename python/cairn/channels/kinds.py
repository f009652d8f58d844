"""Effect kinds written by the core, and rendering the templates of each kind.

``message`` effects carry templated message fields, ``webhook`` effects a URL and
an optional body template, ``audience`` effects an ads-audience change (no
template).  Outbox rows written before kinds existed have no ``kind`` and are
messages.
"""

from __future__ import annotations

from typing import Any
from collections.abc import Mapping

from .errors import PermanentError
from .templates import render_message, render_webhook_body

MESSAGE = "message"
AUDIENCE = "audience"
WEBHOOK = "webhook"
KINDS = frozenset({MESSAGE, AUDIENCE, WEBHOOK})


def effect_kind(effect: Mapping[str, Any]) -> str:
    """The effect's kind; raises :class:`PermanentError` for kinds this version can't deliver."""
    kind = effect.get("kind", MESSAGE)
    if kind not in KINDS:
        raise PermanentError(f"unknown effect kind {kind!r}")
    return kind


def render_effect(effect: Mapping[str, Any], kind: str) -> dict[str, str]:
    """Render the effect's templates: message fields, or ``{"body": ...}`` for webhooks.

    A webhook without a body template renders to ``{}`` (the adapter then sends
    the JSON context); audience changes have nothing to render.
    """
    if kind == WEBHOOK:
        body = render_webhook_body(effect)
        return {} if body is None else {"body": body}
    if kind == AUDIENCE:
        return {}
    return render_message(effect)
