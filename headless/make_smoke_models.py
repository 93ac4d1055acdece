"""Print the path of the smoke-test model folder, generating it first if needed.

Run with the setup's Python from the pack's folder: `python -m headless.make_smoke_models [--cache DIR]`.
"""
import argparse
import os
import sys

from . import bootstrap  # stdlib only; puts ComfyUI first on sys.path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", default=os.environ.get("ICEDIT_CACHE",
                                                          os.path.expanduser("~/.cache/icedit-comfyui")))
    args = parser.parse_args()
    bootstrap.import_pack()
    from comfyui_icedit.headless.smoke_models import ensure_smoke_models

    print(ensure_smoke_models(args.cache, log=lambda msg: print(msg, file=sys.stderr)))


if __name__ == "__main__":
    main()
