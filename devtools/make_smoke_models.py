"""Print the path of the smoke-test model folder, generating it first if needed.

`python -m comfyui_icedit.devtools.make_smoke_models [--cache DIR]` (the runner starts it in a process of its
own, with runner/paths.py's environment, because it imports ComfyUI).
"""
import argparse
import os
import sys

from . import bootstrap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", default=os.environ.get("ICEDIT_CACHE",
                                                          os.path.expanduser("~/.cache/icedit-comfyui")))
    args = parser.parse_args()
    bootstrap.import_pack()
    from .smoke_models import ensure_smoke_models

    print(ensure_smoke_models(args.cache, log=lambda msg: print(msg, file=sys.stderr)))


if __name__ == "__main__":
    main()
