"""The Rust core's allocator and transparent huge pages (docs/benchmarks.md).

mimalloc asks the kernel for 2 MB pages by default; a shard's short-lived batch
buffers then made the kernel zero fresh huge pages for about a quarter of its time.
Importing ``cairn`` turns that off before the extension loads, unless the operator
set ``MIMALLOC_ALLOW_THP`` themselves.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

STATUS = Path("/proc/self/status")
pytestmark = pytest.mark.skipif(
    not STATUS.exists() or "THP_enabled" not in STATUS.read_text(),
    reason="needs Linux's THP_enabled in /proc/self/status (Linux 6.0+)",
)

# PR_SET_THP_DISABLE is inherited across fork and exec, and this test process has
# imported cairn already: the child clears it before it imports the core.
REPORT = (
    "import ctypes, pathlib\n"
    "PR_SET_THP_DISABLE = 41\n"
    "assert ctypes.CDLL(None, use_errno=True).prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0) == 0\n"
    "import cairn._core\n"
    "print(next(l.split()[1] for l in pathlib.Path('/proc/self/status').read_text().splitlines()"
    " if l.startswith('THP_enabled')))"
)


def thp_enabled_after_import(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "MIMALLOC_ALLOW_THP"}
    done = subprocess.run([sys.executable, "-c", REPORT], env={**clean, **env}, capture_output=True,
                          text=True, check=True, cwd="/")
    return done.stdout.strip()


def test_importing_the_core_turns_transparent_huge_pages_off() -> None:
    assert thp_enabled_after_import() == "0"


def test_an_operator_can_turn_them_back_on() -> None:
    assert thp_enabled_after_import(MIMALLOC_ALLOW_THP="1") == "1"
