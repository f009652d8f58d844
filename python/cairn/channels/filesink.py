"""File sink adapter: appends one JSON line per effect (the zero-config default).

Durability is per drained batch: lines are written as effects are sent and the
file is flushed and fsynced once in :meth:`FileSinkAdapter.flush`, which the
dispatcher calls before it settles the batch with the outbox.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import IO, Any
from collections.abc import Mapping

from .errors import TemporaryError
from .payload import delivery_payload


class FileSinkAdapter:
    """Adapter for ``type: file`` channels writing NDJSON to ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None
        self._dirty = False

    def _open(self) -> IO[str]:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")
        return self._file

    async def send(self, effect: Mapping[str, Any], rendered: Mapping[str, str]) -> None:
        """Append the delivery payload plus ``sent_ms`` as one JSON line."""
        await self.append(delivery_payload(effect, rendered))

    async def append(self, doc: Mapping[str, Any]) -> None:
        """Append ``doc`` plus ``sent_ms`` as one JSON line (durable after :meth:`flush`)."""
        body = {**doc, "sent_ms": int(time.time() * 1000)}
        line = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str)
        try:
            self._open().write(line + "\n")
        except OSError as err:
            raise TemporaryError(f"file sink {self.path}: {err}") from err
        self._dirty = True

    async def flush(self) -> None:
        """Flush and fsync the lines written since the last flush."""
        if self._file is None or not self._dirty:
            return
        self._file.flush()
        os.fsync(self._file.fileno())
        self._dirty = False

    async def close(self) -> None:
        """Flush and close the file."""
        if self._file is not None:
            await self.flush()
            self._file.close()
            self._file = None
