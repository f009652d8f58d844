"""The data folder: what lives where, and how many shards it was made with."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

FORMAT = 1


class LayoutError(Exception):
    """The data folder cannot be used as asked."""


@dataclass(frozen=True)
class DataLayout:
    root: Path
    shards: int

    def shard_path(self, index: int) -> Path:
        return self.root / "shards" / f"{index:03d}"

    @property
    def definitions_dir(self) -> Path:
        """Every applied definitions document (msgpack), one file per version: contacts
        inside an older version of a program keep walking it."""
        return self.root / "definitions"

    def definitions_file(self, version: int) -> Path:
        return self.definitions_dir / f"{version:08d}.msgpack"

    def definitions_versions(self) -> list[tuple[int, bytes]]:
        """(version, document) of every applied version, oldest first."""
        if not self.definitions_dir.exists():
            # Folders made before versions were kept hold only the last document.
            legacy, version = self.root / "definitions.msgpack", self.root / "definitions.version"
            if legacy.exists() and version.exists():
                return [(int(version.read_text()), legacy.read_bytes())]
            return []
        files = sorted(self.definitions_dir.glob("*.msgpack"))
        return [(int(f.stem), f.read_bytes()) for f in files]


def open_layout(root: Path, shards: int | None) -> DataLayout:
    """Open or create the data folder; the shard count is fixed at creation."""
    root.mkdir(parents=True, exist_ok=True)
    meta = root / "engine.json"
    if meta.exists():
        known = json.loads(meta.read_text())["shards"]
        if shards is not None and shards != known:
            raise LayoutError(f"{root} holds {known} shards; start it with --shards {known} "
                              f"(changing the shard count of existing data is not supported yet)")
        return DataLayout(root, known)
    count = shards or os.cpu_count() or 1
    if count < 1:
        raise LayoutError(f"--shards must be at least 1, got {count}")
    tmp = meta.with_suffix(".tmp")
    tmp.write_text(json.dumps({"format": FORMAT, "shards": count}))
    tmp.replace(meta)
    return DataLayout(root, count)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so a crash leaves the old or the new file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
