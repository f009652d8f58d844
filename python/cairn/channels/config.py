"""Channel, ads and retry configuration, from the ``channels``/``ads``/``retry`` YAML sections.

Example::

    channels:
      email:   {type: smtp, host: 127.0.0.1, port: 2525, sender: "Cairn <noreply@cairn.local>"}
      sms:     {type: webhook, url: "http://127.0.0.1:9000/sms", headers: {}, timeout_s: 5}
      default: {type: file, path: "sent.ndjson"}
    ads: {url: "http://127.0.0.1:9000/audiences", batch_size: 500, sync_delay_s: 30}
    retry: {max_attempts: 6, base_ms: 500, max_ms: 300000}

Any channel not listed is routed to ``default``; with no configuration at all every
channel goes to the file sink ``<data>/sent.ndjson``.  Audience effects always go
to the ads adapter (:mod:`.ads`), configured by ``ads``; without ``ads.url`` its
batches go to the file sink of the ``ads`` route.  Webhook actions need no
configuration (the URL is in the effect), so ``webhook`` is not a channel name.
Errors name the offending key, e.g. ``channels.sms.url: required for type webhook``.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Union
from collections.abc import Mapping

import yaml

from .errors import ConfigError

DEFAULT_CHANNEL = "default"
DEFAULT_SINK_PATH = "sent.ndjson"
#: Channel of webhook-action effects; reserved because their URL is in the effect.
WEBHOOK_CHANNEL = "webhook"


@dataclass(frozen=True)
class SmtpSettings:
    """Send through an SMTP server (one kept-alive connection per channel)."""

    host: str = "127.0.0.1"
    port: int = 2525
    sender: str = "Cairn <noreply@cairn.local>"
    starttls: bool = False
    use_tls: bool = False
    username: str | None = None
    password: str | None = None
    timeout_s: float = 10.0


@dataclass(frozen=True)
class WebhookSettings:
    """POST each effect as JSON to ``url``."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 5.0


@dataclass(frozen=True)
class FileSettings:
    """Append each effect as one JSON line; relative paths resolve against the data dir."""

    path: str = DEFAULT_SINK_PATH


@dataclass(frozen=True)
class AdsSettings:
    """Digital-ads audience sync (J-7): changes are sent in batches, with a delay.

    A batch goes out when ``batch_size`` changes are buffered or ``sync_delay_s``
    after its first change; to ``url`` (JSON POST), else to the NDJSON file sink.
    """

    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 10.0
    batch_size: int = 500
    sync_delay_s: float = 30.0


ChannelSettings = Union[SmtpSettings, WebhookSettings, FileSettings]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: ``min(max_ms, base_ms * 2**attempts)`` plus jitter."""

    max_attempts: int = 6
    base_ms: int = 500
    max_ms: int = 300_000


@dataclass(frozen=True)
class ChannelConfig:
    """Which adapter serves each channel, and how failed sends are retried."""

    channels: Mapping[str, ChannelSettings] = field(default_factory=dict)
    default: ChannelSettings = field(default_factory=FileSettings)
    ads: AdsSettings = field(default_factory=AdsSettings)
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def settings_for(self, channel: str | None) -> tuple[str, ChannelSettings]:
        """Return ``(route name, settings)``; unknown channels route to ``default``."""
        if channel and channel in self.channels:
            return channel, self.channels[channel]
        return DEFAULT_CHANNEL, self.default


# --- validation helpers -------------------------------------------------------

_TYPES: dict[str, type] = {"smtp": SmtpSettings, "webhook": WebhookSettings, "file": FileSettings}


def _require_mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _check_str(value: Any, where: str, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a non-empty string")
    return value


def _check_number(value: Any, where: str, minimum: float, integer: bool) -> Any:
    # bool is an int subclass; `port: true` is a typo, not port 1.
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise ConfigError(f"{where}: expected {'an integer' if integer else 'a number'}")
    if value < minimum:
        raise ConfigError(f"{where}: must be >= {minimum}")
    return value


def _check_bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false")
    return value


def _check_headers(value: Any, where: str) -> dict[str, str]:
    headers = _require_mapping(value if value is not None else {}, where)
    for name, val in headers.items():
        if not isinstance(name, str) or not isinstance(val, str):
            raise ConfigError(f"{where}.{name}: header names and values must be strings")
    return dict(headers)


_FIELD_CHECKS = {
    "host": lambda v, w: _check_str(v, w),
    "sender": lambda v, w: _check_str(v, w),
    "url": lambda v, w: _check_url(v, w),
    "path": lambda v, w: _check_str(v, w),
    "username": lambda v, w: _check_str(v, w, optional=True),
    "password": lambda v, w: _check_str(v, w, optional=True),
    "port": lambda v, w: _check_port(v, w),
    "timeout_s": lambda v, w: _check_positive(v, w),
    "starttls": _check_bool,
    "use_tls": _check_bool,
    "headers": _check_headers,
}


def _check_url(value: Any, where: str) -> str:
    url = _check_str(value, where)
    assert url is not None
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: must start with http:// or https://")
    return url


def _check_port(value: Any, where: str) -> int:
    port = _check_number(value, where, 1, integer=True)
    if port > 65535:
        raise ConfigError(f"{where}: must be <= 65535")
    return port


def _check_positive(value: Any, where: str) -> float:
    number = _check_number(value, where, 0, integer=False)
    if number == 0:
        raise ConfigError(f"{where}: must be > 0")
    return float(number)


_ADS_CHECKS = {
    "url": lambda v, w: _check_url(v, w) if v is not None else None,
    "headers": _check_headers,
    "timeout_s": _check_positive,
    "batch_size": lambda v, w: _check_number(v, w, 1, integer=True),
    # 0 is allowed: flush as soon as the current dispatcher pass has buffered its changes.
    "sync_delay_s": lambda v, w: float(_check_number(v, w, 0, integer=False)),
}


# --- section parsers ----------------------------------------------------------


def _parse_channel(name: str, raw: Any) -> ChannelSettings:
    where = f"channels.{name}"
    spec = _require_mapping(raw, where)
    kind = spec.get("type")
    if kind not in _TYPES:
        raise ConfigError(f"{where}.type: must be one of {', '.join(sorted(_TYPES))} (got {kind!r})")
    cls = _TYPES[kind]
    allowed = {f.name for f in fields(cls)}
    values: dict[str, Any] = {}
    for key, value in spec.items():
        if key == "type":
            continue
        if key not in allowed:
            raise ConfigError(f"{where}.{key}: unknown key for type {kind}")
        values[key] = _FIELD_CHECKS[key](value, f"{where}.{key}")
    for key in _required_fields(cls):
        if key not in values:
            raise ConfigError(f"{where}.{key}: required for type {kind}")
    if values.get("starttls") and values.get("use_tls"):
        raise ConfigError(f"{where}.starttls: cannot be combined with use_tls (implicit TLS)")
    return cls(**values)


def _required_fields(cls: type) -> list[str]:
    return [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]


def _parse_retry(raw: Any) -> RetryPolicy:
    if raw is None:
        return RetryPolicy()
    spec = _require_mapping(raw, "retry")
    values: dict[str, int] = {}
    minimums = {"max_attempts": 1, "base_ms": 0, "max_ms": 0}
    for key, value in spec.items():
        if key not in minimums:
            raise ConfigError(f"retry.{key}: unknown key")
        values[key] = _check_number(value, f"retry.{key}", minimums[key], integer=True)
    policy = RetryPolicy(**values)
    if policy.max_ms < policy.base_ms:
        raise ConfigError("retry.max_ms: must be >= retry.base_ms")
    return policy


def _parse_channels(raw: Any) -> tuple[dict[str, ChannelSettings], ChannelSettings]:
    if raw is None:
        return {}, FileSettings()
    spec = _require_mapping(raw, "channels")
    parsed: dict[str, ChannelSettings] = {}
    for name, entry in spec.items():
        if not isinstance(name, str) or not name:
            raise ConfigError(f"channels: channel names must be non-empty strings (got {name!r})")
        if name == WEBHOOK_CHANNEL:
            # An entry here would be silently unused: say so instead.
            raise ConfigError(f"channels.{name}: reserved: webhook actions POST to the URL their program names")
        parsed[name] = _parse_channel(name, entry)
    default = parsed.pop(DEFAULT_CHANNEL, FileSettings())
    return parsed, default


def _parse_ads(raw: Any) -> AdsSettings:
    if raw is None:
        return AdsSettings()
    spec = _require_mapping(raw, "ads")
    values: dict[str, Any] = {}
    for key, value in spec.items():
        if key not in _ADS_CHECKS:
            raise ConfigError(f"ads.{key}: unknown key")
        values[key] = _ADS_CHECKS[key](value, f"ads.{key}")
    return AdsSettings(**values)


def load_channel_config(source: Mapping[str, Any] | str | Path | None = None) -> ChannelConfig:
    """Build a validated :class:`ChannelConfig`.

    ``source`` is the engine's parsed config document (only its ``channels``,
    ``ads`` and ``retry`` keys are read, other keys are ignored), a path to a YAML file, or
    ``None`` for the defaults.  Raises :class:`ConfigError` on invalid input.
    """
    if isinstance(source, (str, Path)):
        try:
            source = yaml.safe_load(Path(source).read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"{source}: cannot read channel config: {err}") from err
    doc = _require_mapping(source if source is not None else {}, "config")
    channels, default = _parse_channels(doc.get("channels"))
    return ChannelConfig(channels=channels, default=default, ads=_parse_ads(doc.get("ads")),
                         retry=_parse_retry(doc.get("retry")))
