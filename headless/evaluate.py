"""Evaluate ICEdit on a dataset in the MagicBrush layout through the real ComfyUI executor, with the paper's
metrics; writes a CSV of every sample and a summary table.

    eval "$(scripts/setup.sh --env)"
    "$ICEDIT_PYTHON" headless/evaluate.py path/to/magicbrush/test --clip models/clip-vit-large-patch14 \\
        --dino models/dino-vits16 --output eval-out

The layout: DATASET/edit_sessions.json ({image id: [{"input": file, "output": file, "instruction": text}, ...]})
with the files under DATASET/images/<image id>/, and optionally DATASET/local_descriptions.json ({image id:
{output file: caption}}) for CLIP-T. The first turn of every session is evaluated (single-turn protocol).
Without real weights the edits come from the smoke-test models, and the table says so.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bootstrap  # noqa: E402
import run_icedit  # noqa: E402

METRIC_COLUMNS = [("l1", "L1 ↓"), ("clip_i", "CLIP-I ↑"), ("dino", "DINO ↑"), ("clip_t", "CLIP-T ↑")]


def load_samples(dataset: str, limit: int | None = None) -> list[dict]:
    sessions_path = os.path.join(dataset, "edit_sessions.json")
    if not os.path.isfile(sessions_path):
        raise SystemExit(f"error: {sessions_path} not found; expected the MagicBrush layout (see --help)")
    with open(sessions_path, encoding="utf-8") as handle:
        sessions = json.load(handle)
    captions = {}
    captions_path = os.path.join(dataset, "local_descriptions.json")
    if os.path.isfile(captions_path):
        with open(captions_path, encoding="utf-8") as handle:
            captions = json.load(handle)
    samples = []
    for image_id, turns in sorted(sessions.items()):
        first = turns[0]
        folder = os.path.join(dataset, "images", image_id)
        sample = {"id": image_id, "instruction": first["instruction"],
                  "source": os.path.join(folder, first["input"]), "target": os.path.join(folder, first["output"]),
                  "caption": captions.get(image_id, {}).get(first["output"], "")}
        for key in ("source", "target"):
            if not os.path.isfile(sample[key]):
                raise SystemExit(f"error: sample {image_id}: {sample[key]} not found")
        samples.append(sample)
    return samples[:limit] if limit else samples


def summary_table(rows: list[dict], smoke: bool) -> str:
    present = [(key, title) for key, title in METRIC_COLUMNS if any(key in row for row in rows)]
    lines = ["| samples | " + " | ".join(title for _, title in present) + " |",
             "|---|" + "---|" * len(present)]
    means = []
    for key, _ in present:
        values = [row[key] for row in rows if key in row]
        means.append(f"{sum(values) / len(values):.4f}")
    lines.append(f"| {len(rows)} | " + " | ".join(means) + " |")
    if smoke:
        lines.append("\nSMOKE TEST: edits from random-weight models; these numbers say nothing about ICEdit.")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset")
    parser.add_argument("--output", default="icedit-eval", help="where the CSV, summary and edits go")
    parser.add_argument("--clip", help="a Hugging Face CLIP folder (CLIP-I, CLIP-T); without it: not computed")
    parser.add_argument("--dino", help="a Hugging Face DINO ViT folder (DINO); without it: not computed")
    parser.add_argument("--limit", type=int, help="evaluate only the first N samples")
    parser.add_argument("--workflow", choices=sorted(run_icedit.WORKFLOWS), default="basic")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--panel-width", type=int)
    parser.add_argument("--models-dir")
    parser.add_argument("--server")
    parser.add_argument("--smoke-test", action="store_true")
    parser.add_argument("--cache", default=os.environ.get("ICEDIT_CACHE", os.path.expanduser("~/.cache/icedit-comfyui")))
    args = parser.parse_args(argv)
    samples = load_samples(args.dataset, args.limit)
    # The metrics need only torch and transformers; icedit_core is pure, so it is imported on its own here.
    sys.path.insert(0, bootstrap.PACK_ROOT)
    from icedit_core import metrics

    clip = metrics.ClipScorer(args.clip) if args.clip else None
    dino = metrics.DinoScorer(args.dino) if args.dino else None
    os.makedirs(os.path.join(args.output, "edits"), exist_ok=True)
    args.candidates = args.early_steps = None
    server, base, smoke = run_icedit.start_session(args, tempfile.mkdtemp(prefix="icedit-eval-"))
    rows = []
    from PIL import Image

    with server:
        steps = args.steps or (4 if smoke else 28)
        panel_width = args.panel_width or (64 if smoke else 512)
        for index, sample in enumerate(samples):
            print(f"\n[{index + 1}/{len(samples)}] {sample['id']}: {sample['instruction']!r}")
            outputs, _ = run_icedit.edit_one(server, base, sample["source"], sample["instruction"], args.seed, steps,
                                             panel_width, name=f"eval_{sample['id']}")
            edited_bytes = next(data for kind, _, data in outputs if kind == "edited")
            edited_path = os.path.join(args.output, "edits", f"{sample['id']}.png")
            with open(edited_path, "wb") as handle:
                handle.write(edited_bytes)
            edited = Image.open(io.BytesIO(edited_bytes)).convert("RGB")
            scores = metrics.evaluate(edited, source=Image.open(sample["source"]), target=Image.open(sample["target"]),
                                      target_caption=sample["caption"], clip=clip, dino=dino)
            rows.append({"id": sample["id"], "instruction": sample["instruction"], **scores})
    columns = ["id", "instruction"] + sorted({k for row in rows for k in row} - {"id", "instruction"})
    csv_path = os.path.join(args.output, "metrics.csv")
    with open(csv_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    table = summary_table(rows, smoke)
    with open(os.path.join(args.output, "summary.md"), "w", encoding="utf-8") as handle:
        handle.write(table + "\n")
    print(f"\n{table}\n\nwrote {csv_path} and {os.path.join(args.output, 'summary.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
