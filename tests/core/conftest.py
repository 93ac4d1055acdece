"""The core tier: icedit_core and the runner's logic, no ComfyUI and no server.

When this tier runs on its own (scripts/test --fast runs it first, alone), every test is checked afterwards for
having imported the host: a core test that needs ComfyUI belongs in tests/pack."""
import sys

import pytest

from icedit_testing import HOST_MODULES


def host_modules_loaded() -> list[str]:
    return sorted(name for name in sys.modules if name.split(".")[0] in HOST_MODULES)


@pytest.fixture(autouse=True)
def _no_host_import():
    checked = not host_modules_loaded()  # another tier in the same run already loaded ComfyUI: nothing to check
    yield
    if checked:
        loaded = host_modules_loaded()
        assert not loaded, f"a core test imported ComfyUI ({', '.join(loaded[:5])}); move it to tests/pack"
