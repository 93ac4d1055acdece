"""Edit images from text instructions with ICEdit, headless, through the real ComfyUI executor.

    scripts/icedit --edit photo.jpg "make the sky a warm sunset" --edit cat.png "give the cat a red hat"

Starts a ComfyUI server with this pack (or uses --server), submits workflows/icedit_basic.json once per
(image, instruction) pair, shows progress, and writes <name>_edited.png and <name>_comparison.png.

Model files are looked for in --models-dir and in the ComfyUI's own models/ folder. When the real FLUX.1 Fill,
text encoders, VAE and ICEdit LoRA are not all there, it runs on small random-weight smoke-test models that it
generates once, and says so: those outputs are noise, not edits.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import comfy_host  # noqa: E402
import workflow_api  # noqa: E402
from bootstrap import PACK_ROOT, comfyui_path  # noqa: E402
from model_files import REAL_MODELS, SMOKE_FILES, SMOKE_ROLE  # noqa: E402

# The shipped workflows by short name: workflows/icedit_<name>.json (basic, moe, early_filter, controlnet, ...)
WORKFLOWS = {name[len("icedit_"):-len(".json")]: os.path.join(PACK_ROOT, "workflows", name)
             for name in sorted(os.listdir(os.path.join(PACK_ROOT, "workflows")))
             if name.startswith("icedit_") and name.endswith(".json")}
SMOKE_NOTICE = ("SMOKE TEST: the real ICEdit weights were not found, so this run uses small random-weight "
                "models. The images it writes are noise, not edits; they show that the whole path runs.")


def model_inputs(workflow: dict) -> list[tuple[str, str, int]]:
    """(node type, input name, widget index) of each model-file widget in the workflow."""
    types = {node["type"] for node in workflow["nodes"]}
    return [(node_type, name, index) for (node_type, name), (_, _, index) in REAL_MODELS.items()
            if node_type in types]


def find_missing_real_models(workflow: dict, model_dirs: list[str]) -> list[str]:
    missing = []
    for node_type, input_name, _ in model_inputs(workflow):
        folders, filename, _ = REAL_MODELS[(node_type, input_name)]
        found = any(os.path.exists(os.path.join(root, folder, filename))
                    for root in model_dirs for folder in folders)
        if not found:
            missing.append(f"{folders[0]}/{filename}")
    return missing


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


def smoke_workflow(workflow: dict) -> dict:
    """The workflow with the smoke-test files, and the stand-in text-encoder loader for DualCLIPLoader."""
    for node_type, input_name, index in model_inputs(workflow):
        role = SMOKE_ROLE.get((node_type, input_name))
        if role is not None:
            workflow = workflow_api.set_widget(workflow, node_type, index, SMOKE_FILES[role][1])
    workflow = json.loads(json.dumps(workflow))
    for node in workflow["nodes"]:
        if node["type"] == "DualCLIPLoader":
            node["type"] = "ICEditSmokeTestCLIPLoader"
            node["widgets_values"] = [SMOKE_FILES["text_encoders"][1]]
            node["title"] = "Smoke-test text encoders (random weights)"
    return workflow


def prepare_workflow(base: dict, image_name: str, instruction: str, seed: int, steps: int, panel_width: int,
                     candidates: int | None = None, early_steps: int | None = None) -> dict:
    workflow = workflow_api.set_widget(base, "LoadImage", 0, image_name)
    types = {node["type"] for node in workflow["nodes"]}
    if "ICEditMultiTurn" in types:  # widgets: instructions, seed, control, steps, panel_width, ...
        for index, value in ((0, instruction), (1, seed), (3, steps), (4, panel_width)):
            workflow = workflow_api.set_widget(workflow, "ICEditMultiTurn", index, value)
        return workflow
    workflow = workflow_api.set_widget(workflow, "ICEditPromptEncode", 0, instruction)
    workflow = workflow_api.set_widget(workflow, "ICEditDiptych", 0, panel_width)
    if "ICEditEarlyFilterSampler" in types:
        # widgets: seed, control, candidates, early_steps, steps, ...
        workflow = workflow_api.set_widget(workflow, "ICEditEarlyFilterSampler", 0, seed)
        workflow = workflow_api.set_widget(workflow, "ICEditEarlyFilterSampler", 4, steps)
        if candidates is not None:
            workflow = workflow_api.set_widget(workflow, "ICEditEarlyFilterSampler", 2, candidates)
        if early_steps is not None:
            workflow = workflow_api.set_widget(workflow, "ICEditEarlyFilterSampler", 3, early_steps)
        return workflow
    workflow = workflow_api.set_widget(workflow, "KSampler", 0, seed)
    return workflow_api.set_widget(workflow, "KSampler", 2, steps)


class ProgressPrinter:
    def __init__(self, prompt: dict):
        self.titles = {node_id: node["_meta"]["title"] for node_id, node in prompt.items()}
        self.started = time.monotonic()

    def __call__(self, kind: str, data: dict) -> None:
        elapsed = time.monotonic() - self.started
        if kind == "executing" and data.get("node") is not None:
            print(f"\n  [{elapsed:6.1f}s] {self.titles.get(data['node'], data['node'])}", end="", flush=True)
        elif kind == "progress":
            done, total = data.get("value", 0), data.get("max", 1)
            bar = "#" * int(20 * done / max(total, 1))
            print(f"\r  [{elapsed:6.1f}s] {self.titles.get(data.get('node'), '')} [{bar:<20}] {done}/{total}",
                  end="", flush=True)


def edit_one(server, base: dict, image_path: str, instruction: str, seed: int, steps: int, panel_width: int,
             candidates=None, early_steps=None, name="icedit") -> tuple[list[tuple[str, str, bytes]], list[str]]:
    """Upload, run the workflow, fetch what its SaveImage nodes wrote: ([(kind, file name, PNG bytes)], texts).
    kind is the SaveImage prefix: edited, comparison, turns."""
    uploaded = server.upload_image(image_path, name=f"{name}_{os.path.basename(image_path)}")
    workflow = prepare_workflow(base, uploaded, instruction, seed, steps, panel_width, candidates, early_steps)
    # Listed again: the upload has just added the image to LoadImage's choices.
    prompt = workflow_api.ui_to_api(workflow, server.object_info())
    entry = server.run(prompt, on_progress=ProgressPrinter(prompt))
    outputs, texts = [], []
    for output in entry["outputs"].values():
        for image in output.get("images", []):
            if image.get("type") == "output":  # previews (the Early Filter's candidates) stay on the server
                outputs.append((image["filename"].rsplit("_", 2)[0], image["filename"], server.view(image)))
        texts += [str(text) for text in output.get("text", [])]
    return outputs, texts


def ensure_smoke_models(python: str, cache: str) -> str:
    result = subprocess.run([python, os.path.join(PACK_ROOT, "headless", "make_smoke_models.py"), "--cache", cache],
                            stdout=subprocess.PIPE, text=True, check=True)
    return result.stdout.strip().splitlines()[-1]


def start_session(args, workdir: str):
    """A started ComfyUI server (or the one at args.server), the chosen workflow - switched to the smoke-test
    models when the real weights are missing - and whether it was switched. The caller stops the server."""
    with open(WORKFLOWS[args.workflow], encoding="utf-8") as handle:
        base = json.load(handle)
    comfy_dir = comfyui_path()
    model_dirs = [d for d in (args.models_dir, os.path.join(comfy_dir, "models")) if d]
    missing = [] if args.server else find_missing_real_models(base, model_dirs)
    smoke = args.smoke_test or bool(missing)
    smoke_dir = None
    if smoke and not args.server:
        if missing and not args.smoke_test:
            print("real weights not found: " + ", ".join(missing))
        smoke_dir = ensure_smoke_models(sys.executable, args.cache)
    server = comfy_host.ComfyServer(url=args.server, comfyui_path=comfy_dir, workdir=workdir)
    if not args.server:
        custom_nodes = os.path.join(PACK_ROOT, ".host", "custom_nodes")
        server.extra_model_paths = comfy_host.write_extra_model_paths(
            os.path.join(workdir, "extra_model_paths.yaml"), custom_nodes,
            [d for d in (args.models_dir, smoke_dir) if d])
        print(f"starting ComfyUI ({comfy_dir}); log: {server.log_path}")
    server.start()
    try:
        if args.server and not args.smoke_test:
            object_info = server.object_info()
            smoke = any(REAL_MODELS[(t, name)][1] not in
                        workflow_api.combo_choices(object_info[t]["input"]["required"][name])
                        for t, name, _ in model_inputs(base))
        if smoke:
            base = smoke_workflow(base)
            print(SMOKE_NOTICE)
    except Exception:
        server.stop()
        raise
    return server, base, smoke


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edit", nargs=2, action="append", metavar=("IMAGE", "INSTRUCTION"), default=[],
                        help="an image and what to change in it; repeat for several")
    parser.add_argument("--workflow", choices=sorted(WORKFLOWS), default="basic",
                        help="basic: the normal ICEdit LoRA; moe: the ICEdit MoE-LoRA (ICEditMoELoRALoader); "
                             "early_filter: MoE-LoRA + Early Filter with a local VLM judge; controlnet: guided by "
                             "a Canny ControlNet; upscale: edit, then upscale; lowvram: fp8 weights")
    parser.add_argument("--candidates", type=int, help="Early Filter seeds (default 6; 3 on smoke-test models)")
    parser.add_argument("--early-steps", type=int, help="Early Filter steps before judging (default 10; 2 on "
                                                        "smoke-test models)")
    parser.add_argument("--output", default=os.path.join(PACK_ROOT, "output"), help="where results go")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--steps", type=int, help="sampling steps (default 28; 4 on smoke-test models)")
    parser.add_argument("--panel-width", type=int, help="diptych panel width (default 512; 64 on smoke-test models)")
    parser.add_argument("--models-dir", help="a ComfyUI-style models folder holding the real weights")
    parser.add_argument("--server", help="use this running ComfyUI server (it must have the pack installed)")
    parser.add_argument("--smoke-test", action="store_true", help="use the random-weight models even if real ones exist")
    parser.add_argument("--cache", default=os.environ.get("ICEDIT_CACHE", os.path.expanduser("~/.cache/icedit-comfyui")))
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.makedirs(args.output, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="icedit-run-")
    edits = args.edit
    if not edits:
        source = example_image(os.path.join(workdir, "icedit_example.png"))
        edits = [(source, "make the sky a warm sunset")]
        print(f"no --edit given: editing a built-in synthetic example ({source})")
    for image_path, instruction in edits:
        if not os.path.isfile(image_path):
            print(f"error: no such image: {image_path}", file=sys.stderr)
            return 2
        if not instruction.strip():
            print(f"error: the instruction for {image_path} is empty", file=sys.stderr)
            return 2

    server, base, smoke = start_session(args, workdir)
    with server:
        steps = args.steps or (4 if smoke else 28)
        panel_width = args.panel_width or (64 if smoke else 512)
        written = []
        for index, (image_path, instruction) in enumerate(edits):
            stem = os.path.splitext(os.path.basename(image_path))[0]
            print(f"\n[{index + 1}/{len(edits)}] {image_path}: {instruction!r} (seed {args.seed}, {steps} steps, "
                  f"panel width {panel_width})")
            outputs, texts = edit_one(server, base, image_path, instruction, args.seed, steps, panel_width,
                                      args.candidates or (3 if smoke else None),
                                      args.early_steps or (2 if smoke else None), name=f"icedit_{index}")
            print()
            for kind, filename, data in outputs:
                name = f"{stem}_{kind}.png" if kind in ("edited", "comparison") else f"{stem}_{filename}"
                target = os.path.join(args.output, name)
                with open(target, "wb") as handle:
                    handle.write(data)
                written.append(target)
                print(f"  wrote {target}")
            for text in texts:  # reports (MoE loader, Early Filter, multi-turn log)
                print("  " + str(text).replace("\n", "\n  "))
    if smoke:
        print("\n" + SMOKE_NOTICE)
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main())
