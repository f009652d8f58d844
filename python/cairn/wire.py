"""Framing of the Cairn wire protocol v1, shared by the gateway and the clients.

A frame is a 4-byte unsigned big-endian length N followed by N bytes holding one
msgpack map (see docs/wire-protocol.md). Event frames are parsed and validated in
Rust (``Catalog.split_frame``); this module only frames bytes and encodes the small
control frames (hello, welcome, ack, error, admin replies).
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import msgpack

PROTOCOL_VERSION = 1
DEFAULT_PORT = 7400
DEFAULT_MAX_FRAME = 4 * 1024 * 1024
DEFAULT_MAX_BATCH = 10_000

_HEADER = struct.Struct(">I")

#: Error codes of the protocol (wire-protocol.md, "Flow control and errors").
ERROR_CODES = frozenset(
    {
        "bad_frame",
        "too_large",
        "unauthorized",
        "unsupported_version",
        "invalid",
        "unknown_op",
        "shutting_down",
        "internal",
    }
)


class FrameTooLarge(Exception):
    """The peer announced a frame longer than the agreed ``max_frame``."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"frame of {size} bytes exceeds max_frame {limit}")
        self.size = size
        self.limit = limit


def encode(obj: dict[str, Any]) -> bytes:
    """Return ``obj`` as one length-prefixed msgpack frame."""
    body = msgpack.packb(obj, use_bin_type=True)
    return _HEADER.pack(len(body)) + body


def frame_bytes(body: bytes) -> bytes:
    """Prefix already-encoded msgpack ``body`` with its length."""
    return _HEADER.pack(len(body)) + body


def decode(body: bytes) -> Any:
    """Decode one frame body (no length prefix)."""
    return msgpack.unpackb(body, raw=False, strict_map_key=False)


async def read_frame(reader: asyncio.StreamReader, max_frame: int) -> bytes | None:
    """Read one frame body; ``None`` on a clean EOF between frames.

    Raises ``FrameTooLarge`` before reading the body of an oversized frame and
    ``asyncio.IncompleteReadError`` when the stream ends inside a frame.
    """
    try:
        header = await reader.readexactly(4)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise
    (size,) = _HEADER.unpack(header)
    if size > max_frame:
        raise FrameTooLarge(size, max_frame)
    return await reader.readexactly(size)


def error(code: str, message: str, seq: int | None = None) -> dict[str, Any]:
    """Build an ``error`` frame body."""
    assert code in ERROR_CODES, code
    return {"op": "error", "seq": seq, "code": code, "message": message}
