"""``start_ray``: the Ray settings every Cairn driver (engine, bench, demo, these
tests) starts with."""

from __future__ import annotations

import os
import subprocess
import sys

from cairn.raystart import INLINE_ARGS_BYTES

SETTING = "RAY_max_direct_call_object_size"


def test_this_session_started_ray_with_batches_inline() -> None:
    # conftest starts Ray with start_ray, as the engine does: shard batches of a
    # few hundred KB travel inline in the actor calls, not through the object store.
    assert os.environ.get(SETTING) == str(INLINE_ARGS_BYTES)
    assert INLINE_ARGS_BYTES > 4000 * 120, "a full batch of bench events fits inline"


def test_an_operators_own_setting_is_kept() -> None:
    code = ("import os, ray\nfrom cairn.raystart import start_ray\nstart_ray(num_cpus=1)\n"
            f"print(ray.is_initialized(), os.environ[{SETTING!r}])\nray.shutdown()")
    env = {**os.environ, SETTING: "200000"}
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          cwd="/")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "200000"]
