"""Builds and owns the adapter instances for a :class:`ChannelConfig`."""

from __future__ import annotations

import logging
from pathlib import Path

from .adapter import Adapter
from .config import ChannelConfig, ChannelSettings, FileSettings, SmtpSettings, WebhookSettings
from .email import SmtpAdapter
from .filesink import FileSinkAdapter
from .webhook import WebhookAdapter

log = logging.getLogger("cairn.channels")


class AdapterRegistry:
    """Maps channel names to adapters, creating each lazily on first use.

    Every configured channel has its own adapter; all unlisted channels share the
    ``default`` one.  File sinks are shared per resolved path so two channels
    writing to the same file never interleave partial lines.
    """

    def __init__(self, config: ChannelConfig, data_dir: Path) -> None:
        self._config = config
        self._data_dir = Path(data_dir)
        self._by_route: dict[str, Adapter] = {}
        self._files: dict[Path, FileSinkAdapter] = {}

    def route(self, channel: str | None) -> str:
        """Name of the config entry serving ``channel`` (itself or ``default``)."""
        return self._config.settings_for(channel)[0]

    def adapter_for(self, channel: str | None) -> Adapter:
        """The adapter that delivers effects of ``channel``."""
        route, settings = self._config.settings_for(channel)
        adapter = self._by_route.get(route)
        if adapter is None:
            adapter = self._by_route[route] = self._build(settings)
        return adapter

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
        """Distinct adapters created so far."""
        unique: dict[int, Adapter] = {id(a): a for a in self._by_route.values()}
        return list(unique.values())

    async def close(self) -> None:
        """Close every adapter, even if some fail to close."""
        adapters, self._by_route, self._files = self.active(), {}, {}
        for adapter in adapters:
            try:
                await adapter.close()
            except Exception:  # noqa: BLE001 - one failing close must not leak the rest
                log.exception("closing channel adapter %r failed", adapter)
