"""HTTP adapters: configured webhook channels and webhook actions.

- :class:`WebhookAdapter` (``type: webhook`` channels, e.g. SMS gateways) POSTs each
  effect as JSON to the configured URL.
- :class:`WebhookActionAdapter` serves ``kind: webhook`` effects: a program action
  that calls the URL it names, with its rendered body template.

Both send ``Idempotency-Key: <effect id>`` and share :func:`post`'s status rules.
"""

from __future__ import annotations

import json
from typing import Any
from collections.abc import Mapping

import httpx

from .config import WebhookSettings
from .errors import ChannelError, PermanentError, TemporaryError
from .payload import action_payload, delivery_payload

# 408, 425 and 429 are client-side codes that explicitly mean "try again later".
_RETRYABLE_4XX = frozenset({408, 425, 429})
#: Timeout of webhook actions, which have no configuration of their own.
ACTION_TIMEOUT_S = 10.0
JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain; charset=utf-8"


def classify_status(status: int, body: str, what: str = "webhook") -> ChannelError | None:
    """Return ``None`` for 2xx, else the error class the status deserves."""
    if 200 <= status < 300:
        return None
    detail = f"{what} HTTP {status}: {body[:200]}"
    if status >= 500 or status in _RETRYABLE_4XX:
        return TemporaryError(detail)
    # Other 4xx (bad payload, unknown number) and unfollowed 3xx won't fix themselves.
    return PermanentError(detail)


async def post(client: httpx.AsyncClient, url: str, what: str = "webhook", **request: Any) -> None:
    """POST ``request`` (httpx keyword arguments) to ``url``; raise unless answered 2xx."""
    try:
        response = await client.post(url, **request)
    except httpx.HTTPError as err:
        # Connect/read timeouts and refused connections: the receiver may come back.
        raise TemporaryError(f"{what} {type(err).__name__}: {err}") from err
    error = classify_status(response.status_code, response.text, what)
    if error is not None:
        raise error


class WebhookAdapter:
    """Adapter for ``type: webhook`` channels; one pooled HTTP client per channel."""

    def __init__(self, settings: WebhookSettings) -> None:
        self._settings = settings
        self._client = httpx.AsyncClient(timeout=settings.timeout_s, headers=dict(settings.headers))

    async def send(self, effect: Mapping[str, Any], rendered: Mapping[str, str]) -> None:
        """POST the delivery payload with ``Idempotency-Key`` set to the effect id."""
        headers = {"Idempotency-Key": str(effect.get("id", ""))}
        await post(self._client, self._settings.url, json=delivery_payload(effect, rendered), headers=headers)

    async def flush(self) -> None:
        """Nothing to do: the receiver acknowledged each request."""

    async def close(self) -> None:
        """Close pooled connections."""
        await self._client.aclose()


def _action_url(effect: Mapping[str, Any]) -> str:
    call = effect.get("webhook")
    url = call.get("url") if isinstance(call, Mapping) else None
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise PermanentError(f"webhook: invalid url {url!r}")
    return url


def _looks_like_json(text: str) -> bool:
    # Only objects and arrays: a body rendering to a bare number or word is meant as text.
    if not text.lstrip().startswith(("{", "[")):
        return False
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def action_body(effect: Mapping[str, Any], rendered: Mapping[str, str]) -> tuple[bytes, str]:
    """``(body, content type)`` of a webhook action: the rendered template, else the JSON context."""
    text = rendered.get("body")
    if text is None:
        doc = json.dumps(action_payload(effect), ensure_ascii=False, separators=(",", ":"), default=str)
        return doc.encode(), JSON_TYPE
    return text.encode(), JSON_TYPE if _looks_like_json(text) else TEXT_TYPE


class WebhookActionAdapter:
    """Adapter for webhook actions (``kind: webhook``): POSTs to the URL in the effect.

    Needs no configuration; one pooled client serves every URL.
    """

    def __init__(self, timeout_s: float = ACTION_TIMEOUT_S) -> None:
        self._client = httpx.AsyncClient(timeout=timeout_s)

    async def send(self, effect: Mapping[str, Any], rendered: Mapping[str, str]) -> None:
        """POST the rendered body with ``Idempotency-Key`` set to the effect id."""
        url = _action_url(effect)
        body, content_type = action_body(effect, rendered)
        headers = {"Idempotency-Key": str(effect.get("id", "")), "Content-Type": content_type}
        try:
            await post(self._client, url, content=body, headers=headers)
        except httpx.InvalidURL as err:  # not an HTTPError: e.g. a bad port in the URL
            raise PermanentError(f"webhook: invalid url {url!r}: {err}") from err

    async def flush(self) -> None:
        """Nothing to do: the receiver acknowledged each request."""

    async def close(self) -> None:
        """Close pooled connections."""
        await self._client.aclose()
