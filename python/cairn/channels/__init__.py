"""Cairn channels: deliver the effects that shard actors write to their outboxes.

Effects are messages, ads-audience changes or webhook actions (:mod:`.kinds`).
Pieces, one file each:

- :mod:`.outbox` — :class:`OutboxSource`, the protocol the engine implements over
  each shard's LMDB outbox (``due`` / ``settle``).
- :mod:`.dispatcher` — :class:`Dispatcher`, which drains the sources, renders,
  sends concurrently, retries with exponential backoff (:mod:`.backoff`) and
  dead-letters what keeps failing; keeps per-channel ``stats``.
- :mod:`.templates` — sandboxed Jinja2 rendering (:func:`render_message`) and
  apply-time validation (:func:`check_template`).
- :mod:`.config` — :class:`ChannelConfig` / :func:`load_channel_config` for the
  ``channels``, ``ads`` and ``retry`` YAML sections.
- Adapters: :mod:`.email` (SMTP), :mod:`.webhook` (HTTP POST: webhook channels
  and webhook actions), :mod:`.ads` (batched audience sync), :mod:`.filesink`
  (NDJSON file, the zero-config default), built by :mod:`.registry`.
- :mod:`.errors` — :class:`PermanentError` / :class:`TemporaryError`.
"""

from .config import ChannelConfig, load_channel_config
from .dispatcher import Dispatcher
from .errors import ConfigError, PermanentError, TemporaryError, TemplateRenderError
from .outbox import OutboxSource
from .templates import check_template, render_message

__all__ = [
    "ChannelConfig",
    "ConfigError",
    "Dispatcher",
    "OutboxSource",
    "PermanentError",
    "TemplateRenderError",
    "TemporaryError",
    "check_template",
    "load_channel_config",
    "render_message",
]
