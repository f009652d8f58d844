"""`cairn demo` (half of the README's quick start) runs on its own and shows what
happened, including a journey that waits a day on the manual clock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_runs_and_explains():
    done = subprocess.run([sys.executable, "-m", "cairn.cli", "demo"], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "12 accepted, 1 duplicates, 0 rejected" in out
    assert "a day passes on the manual clock: 1 timer(s) fired" in out
    assert "bought -> occurred (on purchase demo-5)" in out  # ann bought her cart
    assert "remind -> sent" in out and "Bob, your cart with Linen shirt is waiting." in out
    assert "invite_sms -> skipped  no 'phone' in profile" in out
    assert "club / silver" in out and "silver_welcome" in out  # tiers and a reward
    assert "dead letters: 0" in out
