"""scripts/setup.sh as several scripts/icedit run it at once, against the real, already set-up cache."""
from __future__ import annotations

import os
import subprocess

from icedit_testing import CACHE, REPO


def test_three_setups_started_at_once_on_the_real_cache_all_succeed():
    """Found: of several scripts/icedit started at once, one died with `mv: cannot stat
    ...host-requirements.txt.new` (every setup wrote and renamed one shared temp file). Runs against the real,
    already set-up cache: nothing is installed, every setup only checks it."""
    env = {**os.environ, "ICEDIT_CACHE": CACHE}
    for _ in range(10):  # ten rounds: the race was one rename wide (about one setup in ten lost it)
        setups = [subprocess.Popen([os.path.join(REPO, "scripts", "setup.sh"), "--env"], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=env) for _ in range(3)]
        for setup in setups:
            stdout, stderr = setup.communicate(timeout=900)
            assert setup.returncode == 0, stderr
            assert "cannot stat" not in stderr, stderr
            assert "export ICEDIT_PYTHON=" in stdout and "export COMFYUI_PATH=" in stdout, stdout
    assert [name for name in os.listdir(CACHE) if name.endswith(".new")] == []
