"""The wheel ships the actors: a plain, non-editable install runs the engine from
outside the repository, and `cairn serve` stops cleanly on SIGTERM."""

from __future__ import annotations

import re
import signal
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from cairn.client import Client

REPO = Path(__file__).resolve().parents[1]


def _wheel() -> Path:
    wheels = sorted((REPO / "target" / "wheels").glob("cairn_engine-*.whl"))
    assert wheels, "no wheel in target/wheels: run `make install` (make test does) first"
    return wheels[-1]


def test_wheel_contains_actors_and_extension():
    names = zipfile.ZipFile(_wheel()).namelist()
    assert "actors/__init__.py" in names and "actors/shard.py" in names
    assert any(re.match(r"cairn/_core\..*(so|pyd)$", n) for n in names)
    assert "cairn/_core.pyi" in names
    assert not any("__pycache__" in n for n in names)


@pytest.mark.slow
def test_fresh_venv_install_serves_from_outside_the_repo(tmp_path: Path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([py, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(_wheel())], check=True)
    # The dependencies (Ray, lmdb, ...) come from the test environment, appended after
    # the fresh venv's own site-packages, so cairn and actors load from the new install.
    fresh_site = Path(subprocess.check_output(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    (fresh_site / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    where = subprocess.check_output(
        [py, "-c", "import actors, cairn._core; print(actors.__file__); print(cairn._core.__file__)"],
        cwd=outside, text=True).split()
    assert all(str(fresh_site) in w for w in where), where

    proc = subprocess.Popen([venv / "bin" / "cairn", "serve", "--data", str(tmp_path / "data"), "--port", "0",
                             "--shards", "1"], cwd=outside, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        match = re.match(r"cairn listening on 127\.0\.0\.1:(\d+)", line)
        assert match, (line, proc.stderr.read() if proc.poll() is not None else "")
        with Client(host="127.0.0.1", port=int(match.group(1))) as client:
            result = client.send([{"id": "1", "contact": "a", "type": "view"}])
        assert result.accepted == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
