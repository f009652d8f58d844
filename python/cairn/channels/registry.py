"""Builds and owns the adapter instances for a :class:`ChannelConfig`."""

from __future__ import annotations

import logging
from pathlib import Path

from .adapter import Adapter
from .ads import AdsAdapter
from .config import (
    WEBHOOK_CHANNEL,
    ChannelConfig,
    ChannelSettings,
    FileSettings,
    SmtpSettings,
    WebhookSettings,
)
from .email import SmtpAdapter
from .filesink import FileSinkAdapter
from .kinds import AUDIENCE, MESSAGE, WEBHOOK
from .webhook import WebhookActionAdapter, WebhookAdapter

log = logging.getLogger("cairn.channels")

ADS_CHANNEL = "ads"


class AdapterRegistry:
    """Maps effects to adapters, creating each lazily on first use.

    Messages are routed by channel: every configured channel has its own adapter;
    all unlisted channels share the ``default`` one.  Audience effects always go
    to the one :class:`AdsAdapter`, webhook actions to the one
    :class:`WebhookActionAdapter`, whatever the ``channels`` section says.  File
    sinks are shared per resolved path so two channels writing to the same file
    never interleave partial lines.
    """

    def __init__(self, config: ChannelConfig, data_dir: Path) -> None:
        self._config = config
        self._data_dir = Path(data_dir)
        self._by_route: dict[str, Adapter] = {}
        self._files: dict[Path, FileSinkAdapter] = {}
        self._ads: AdsAdapter | None = None
        self._actions: WebhookActionAdapter | None = None

    def route(self, channel: str | None, kind: str = MESSAGE) -> str:
        """Name of what serves the effect: ``ads``, ``webhook``, its channel or ``default``."""
        if kind == AUDIENCE:
            return ADS_CHANNEL
        if kind == WEBHOOK:
            return WEBHOOK_CHANNEL
        return self._config.settings_for(channel)[0]

    def adapter_for(self, channel: str | None, kind: str = MESSAGE) -> Adapter:
        """The adapter that delivers effects of ``kind`` on ``channel``."""
        if kind == AUDIENCE:
            return self._ads_adapter()
        if kind == WEBHOOK:
            if self._actions is None:
                self._actions = WebhookActionAdapter()
            return self._actions
        route, settings = self._config.settings_for(channel)
        adapter = self._by_route.get(route)
        if adapter is None:
            adapter = self._by_route[route] = self._build(settings)
        return adapter

    def _ads_adapter(self) -> AdsAdapter:
        if self._ads is None:
            settings = self._config.ads
            sink = None
            if settings.url is None:
                # The file the ads channel would use for messages; the data dir's sink otherwise.
                routed = self._config.settings_for(ADS_CHANNEL)[1]
                sink = self._file_sink(routed if isinstance(routed, FileSettings) else FileSettings())
            self._ads = AdsAdapter(settings, sink)
        return self._ads

    def _build(self, settings: ChannelSettings) -> Adapter:
        if isinstance(settings, SmtpSettings):
            return SmtpAdapter(settings)
        if isinstance(settings, WebhookSettings):
            return WebhookAdapter(settings)
        if isinstance(settings, FileSettings):
            return self._file_sink(settings)
        raise TypeError(f"unsupported channel settings {settings!r}")

    def _file_sink(self, settings: FileSettings) -> FileSinkAdapter:
        path = Path(settings.path).expanduser()
        if not path.is_absolute():
            path = self._data_dir / path
        path = path.resolve()
        if path not in self._files:
            self._files[path] = FileSinkAdapter(path)
        return self._files[path]

    def active(self) -> list[Adapter]:
        """Distinct adapters created so far; batching ones first (see :meth:`close`)."""
        special: list[Adapter] = [a for a in (self._ads, self._actions) if a is not None]
        unique: dict[int, Adapter] = {id(a): a for a in [*special, *self._by_route.values(), *self._files.values()]}
        return list(unique.values())

    async def close(self) -> None:
        """Close every adapter, even if some fail to close.

        The ads adapter closes first: it flushes its buffered batches, possibly
        into a file sink that must still be open.
        """
        adapters = self.active()
        self._by_route, self._files, self._ads, self._actions = {}, {}, None, None
        for adapter in adapters:
            try:
                await adapter.close()
            except Exception:  # noqa: BLE001 - one failing close must not leak the rest
                log.exception("closing channel adapter %r failed", adapter)
