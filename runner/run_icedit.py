"""Edit images from text instructions with ICEdit, headless, through the real ComfyUI executor.

    scripts/icedit --edit photo.jpg "make the sky a warm sunset" --edit cat.png "give the cat a red hat"
    scripts/icedit --batch edits.jsonl --output edited/ --workers 2
    scripts/icedit --video clip.mp4 "make it snowy"          (every frame, motion-following noise; DIR/<id>_edited.mp4)
    scripts/icedit --flicker clip.mp4 edited/clip_edited.mp4 (how much an edited clip flickers against its source)

Starts a ComfyUI server with this pack per worker (or uses --servers), runs a shipped workflow for every item,
and writes DIR/<id>_edited.png, DIR/<id>_comparison.png and a ledger DIR/results.jsonl. Running the same
command again skips what is done and retries what failed.

Model files are looked for in --models-dir and in the ComfyUI's own models/ folder. When the real FLUX.1 Fill,
text encoders, VAE and ICEdit LoRA are not all there, it runs on small random-weight smoke-test models that it
generates once, and says so: those outputs are noise, not edits.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile

from . import comfy_host, engine, items as itemlib, paths, prompt as prompts, settings as settinglib, video
from .comfy_host import ComfyError

EXIT_INTERRUPTED = 130


def int_range(low: int, high: int | None = None):
    """An argparse type: a whole number in [low, high], with a one-line error that names the option."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{value} is outside [{low}, {high if high is not None else '...'}]")
        return value
    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scripts/icedit", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_argument_group("what to edit")
    what.add_argument("--edit", nargs=2, action="append", metavar=("IMAGE", "INSTRUCTION"), default=[],
                      help="an image and what to change in it; repeat for several")
    what.add_argument("--video", nargs=2, action="append", metavar=("CLIP", "INSTRUCTION"), default=[],
                      help="a video (.mp4, .mov, .webm, ...) and what to change in every frame: the video workflow, "
                           "sound and frame rate kept; repeat for several")
    what.add_argument("--flicker", nargs=2, metavar=("SOURCE", "EDITED"),
                      help="only measure: the flicker of an edited clip against its source clip, and the source's own "
                           "(needs opencv-python-headless)")
    optional_columns = [c for c in itemlib.MANIFEST_COLUMNS if c not in ("image", "instruction", "mask")]
    what.add_argument("--batch", metavar="FILE", help="a JSONL or CSV manifest (columns image, instruction, and "
                      f"optionally {', '.join(optional_columns)}; paths relative to the manifest), or a folder of "
                      "images with an instruction in NAME.txt beside each")
    what.add_argument("--output", default=os.path.join(paths.PACK_ROOT, "output"),
                      help="where the edits and the ledger results.jsonl go (default: output/)")
    add_run_options(p)
    return p


def add_run_options(p: argparse.ArgumentParser) -> None:
    """The options of how and where items are edited, shared with runner/evaluate.py."""
    how = p.add_argument_group("how")
    how.add_argument("--workflow", default="basic", metavar="NAME_OR_FILE",
                     help="basic: the normal ICEdit LoRA; moe: the ICEdit MoE-LoRA; early_filter: MoE-LoRA + Early "
                          "Filter with a local VLM judge; controlnet, upscale, lowvram, multiturn (one instruction "
                          "per line), fast, region, compound, text_region; video (chosen by --video), kontext_video (a "
                          "clip edited by FLUX.1 Kontext); or the path of "
                          "your own workflow (UI format) that declares its settable inputs (README: Your own "
                          "workflow)")
    settinglib.add_options(how)
    how.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="extra_inputs",
                     help="a value for an input your own --workflow declares in extra.icedit.inputs (e.g. cfg=2.5; "
                          "JSON or text); repeat for several")
    how.add_argument("--models-dir", help="a ComfyUI-style models folder holding the real weights")
    how.add_argument("--smoke-test", action="store_true", help="use the random-weight models even if real ones exist")
    scale = p.add_argument_group("scale and faults")
    scale.add_argument("--workers", type=int_range(1, 1024), help="ComfyUI servers to run at once, one per GPU "
                       "(default: one per visible GPU, or 1 on CPU); more than one runs on a local Ray instance")
    scale.add_argument("--ray-address", help="run the workers on this Ray cluster (e.g. auto, or 10.0.0.1:6379)")
    scale.add_argument("--servers", help="use these running ComfyUI servers (with this pack) as the workers, "
                       "comma-separated URLs")
    scale.add_argument("--server", help="one running ComfyUI server to use (same as --servers URL)")
    scale.add_argument("--retries", type=int_range(0, 100), default=2,
                       help="tries after a failed one, on another worker when there is one (default 2)")
    scale.add_argument("--item-timeout", type=int_range(1), default=1800,
                       help="seconds one item may take before its server is restarted and the item retried")
    scale.add_argument("--quiet", action="store_true", help="print only failures and the summary")
    p.add_argument("--cache", default=os.environ.get("ICEDIT_CACHE", os.path.expanduser("~/.cache/icedit-comfyui")),
                   help=argparse.SUPPRESS)


def config_from(args, p: argparse.ArgumentParser, output: str) -> engine.RunConfig:
    servers = [url for url in (args.servers or "").split(",") if url.strip()] + ([args.server] if args.server else [])
    if servers and args.models_dir:
        p.error("--models-dir is for servers this command starts; a running server uses its own model folders")
    if args.models_dir and not os.path.isdir(args.models_dir):
        p.error(f"--models-dir {args.models_dir}: no such folder")
    if args.ray_address and servers:
        p.error("--ray-address and --servers exclude each other")
    workflow = args.workflow
    if workflow not in prompts.WORKFLOWS:
        if not os.path.isfile(workflow):
            p.error(f"argument --workflow: {workflow!r} is neither a shipped workflow (choose from "
                    f"{', '.join(sorted(prompts.WORKFLOWS))}) nor a workflow file")
        workflow = os.path.abspath(workflow)
    try:
        extra_inputs = dict(settinglib.parse_assignment(text) for text in args.extra_inputs)
    except settinglib.SettingError as error:
        p.error(str(error))
    if extra_inputs and workflow in prompts.WORKFLOWS:
        p.error(f"--set is for the inputs your own --workflow file declares; the shipped {workflow} workflow takes "
                "its settings from their options (see --help)")
    return engine.RunConfig(output=os.path.abspath(output), workflow=workflow, extra_inputs=extra_inputs,
                            **{setting.name: getattr(args, setting.name) for setting in settinglib.SETTINGS},
                            models_dir=args.models_dir and os.path.abspath(args.models_dir),
                            servers=servers, workers=args.workers, ray_address=args.ray_address,
                            retries=args.retries, item_timeout=float(args.item_timeout), smoke_test=args.smoke_test,
                            cache=args.cache, comfyui_path=None if servers else paths.comfyui_path(),
                            quiet=args.quiet)


def _terminate_as_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if sum(map(bool, (args.edit or args.video, args.batch, args.flicker))) > 1:
        p.error("--edit/--video, --batch and --flicker exclude each other")
    if args.flicker:
        return measure_flicker(*args.flicker)
    # SIGTERM and SIGHUP unwind like Ctrl-C: servers this command started stop, its queued prompts are removed.
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    signal.signal(signal.SIGHUP, _terminate_as_interrupt)
    comfy_host.remove_orphaned_temp_dirs()  # what runs killed with SIGKILL left in the temp folder
    with tempfile.TemporaryDirectory(prefix=comfy_host.owned_prefix("icedit-run-")) as workdir:
        try:
            config = config_from(args, p, args.output)
            if args.batch:
                work = itemlib.read_batch(args.batch)
            elif args.edit or args.video:
                # A clip goes to --workflow when it takes video (kontext_video), else to the video workflow
                # (engine._assign_workflow), from --video or --edit alike: both are described.
                work = describe_clips(itemlib.from_edit_pairs(args.edit)
                                      + itemlib.from_edit_pairs(args.video, "--video"))
            else:
                source = example_image(os.path.join(workdir, "icedit_example.png"))
                print(f"no --edit given: editing a built-in synthetic example ({source})")
                work = itemlib.from_edit_pairs([(source, "make the sky a warm sunset")])
            summary = engine.run(config, work)
        except KeyboardInterrupt:
            print("\ninterrupted: the ledger keeps every finished item; run the same command again to go on",
                  file=sys.stderr)
            return EXIT_INTERRUPTED
        except (engine.RunError, itemlib.ItemError, prompts.PromptError, ComfyError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    print(f"\n{summary.edited} edited, {summary.already_done} already done, {summary.failed} failed"
          + (f", {summary.conflicts} not edited (id taken)" if summary.conflicts else "")
          + f" of {summary.total} in {summary.seconds:.1f} s; ledger: {os.path.join(config.output, 'results.jsonl')}")
    if summary.failed_ids:
        print("failed: " + ", ".join(summary.failed_ids[:20]) + (" ..." if len(summary.failed_ids) > 20 else "")
              + " (errors in results.jsonl; run again to retry)")
    if summary.smoke:
        print(engine.SMOKE_NOTICE)
    return 0 if not summary.failed and not summary.conflicts else 1


def describe_clips(items: list[itemlib.Item]) -> list[itemlib.Item]:
    """Says what each clip holds, and what its edit will do with an odd frame rate or a single frame."""
    for item in items:
        if item.error is None and video.is_video(item.image):  # anything else: the run refuses it, naming it
            try:
                info = video.inspect(item.image)
            except video.VideoError as error:
                item.error = f"{item.where}: {error}"
                continue
            print(f"{item.image}: {info.describe()}")
            for note in info.notes():
                print(f"  note: {note}")
    return items


def measure_flicker(source: str, edited: str) -> int:
    for path in (source, edited):
        if not os.path.isfile(path):
            print(f"error: --flicker: no such file {path}", file=sys.stderr)
            return 2
    try:
        report = video.flicker_of_files(source, edited)
    except (video.VideoError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report.text())
    return 0


def example_image(path: str) -> str:
    """A synthetic landscape (sky, sun, hills) so the command runs with no input at all."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (640, 480), (110, 170, 230))
    draw = ImageDraw.Draw(image)
    draw.ellipse((430, 60, 530, 160), fill=(250, 220, 90))
    draw.polygon([(0, 330), (180, 220), (360, 320), (520, 240), (640, 300), (640, 480), (0, 480)],
                 fill=(70, 130, 60))
    draw.rectangle((0, 420, 640, 480), fill=(90, 80, 60))
    image.save(path)
    return path


if __name__ == "__main__":
    sys.exit(main())
