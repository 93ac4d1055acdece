"""Evaluate ICEdit on a dataset in the MagicBrush layout through the real ComfyUI executor, with the paper's
metrics; writes a CSV of every sample and a summary table.

    scripts/evaluate path/to/magicbrush/test --clip models/clip-vit-large-patch14 \\
        --dino models/dino-vits16 --output eval-out [--workers 2 | --ray-address auto]

The layout: DATASET/edit_sessions.json ({image id: [{"input": file, "output": file, "instruction": text}, ...]})
with the files under DATASET/images/<image id>/, and optionally DATASET/local_descriptions.json ({image id:
{output file: caption}}) for CLIP-T. The first turn of every session is evaluated (single-turn protocol).
The edits run on the batch engine (OUT/edits/, with its ledger): several workers or a Ray cluster, and a re-run
continues where an interrupted one stopped. Without real weights the edits come from the smoke-test models,
and the table says so.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys

from . import engine, items as itemlib, run_icedit
from .comfy_host import ComfyError

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


def read_image(path: str):
    """An image as ComfyUI's LoadImage sees it: EXIF orientation applied, RGB."""
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        return ImageOps.exif_transpose(image).convert("RGB")


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
    parser = argparse.ArgumentParser(prog="scripts/evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset")
    parser.add_argument("--output", default="icedit-eval", help="where the CSV, summary and edits go")
    parser.add_argument("--clip", help="a Hugging Face CLIP folder (CLIP-I, CLIP-T); without it: not computed")
    parser.add_argument("--dino", help="a Hugging Face DINO ViT folder (DINO); without it: not computed")
    parser.add_argument("--limit", type=run_icedit.int_range(1), help="evaluate only the first N samples")
    run_icedit.add_run_options(parser)
    args = parser.parse_args(argv)
    samples = load_samples(args.dataset, args.limit)
    by_id = {sample["id"]: sample for sample in samples}
    config = run_icedit.config_from(args, parser, os.path.join(args.output, "edits"))
    work = itemlib.from_rows([{"image": s["source"], "instruction": s["instruction"], "id": s["id"]} for s in samples],
                             base=args.dataset, where=[f"sample {s['id']}" for s in samples])
    try:
        summary = engine.run(config, work)
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to go on", file=sys.stderr)
        return run_icedit.EXIT_INTERRUPTED
    except (engine.RunError, itemlib.ItemError, ComfyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    # The metrics need only torch and transformers: the pack's pure icedit_core, beside this package.
    from ..icedit_core import metrics

    clip = metrics.ClipScorer(args.clip) if args.clip else None
    dino = metrics.DinoScorer(args.dino) if args.dino else None
    ledger = itemlib.Ledger(config.output)
    rows = []
    for sample_id, sample in by_id.items():
        entry = ledger.state.get(sample_id)
        if entry is None or entry["status"] != "ok":
            continue
        edited = read_image(os.path.join(config.output, f"{sample_id}_edited.png"))
        scores = metrics.evaluate(edited, source=read_image(sample["source"]), target=read_image(sample["target"]),
                                  target_caption=sample["caption"], clip=clip, dino=dino)
        rows.append({"id": sample_id, "instruction": sample["instruction"], **scores})
    if not rows:
        print("error: no sample was edited; nothing to score", file=sys.stderr)
        return 1
    columns = ["id", "instruction"] + sorted({k for row in rows for k in row} - {"id", "instruction"})
    csv_path = os.path.join(args.output, "metrics.csv")
    with open(csv_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    table = summary_table(rows, summary.smoke)
    with open(os.path.join(args.output, "summary.md"), "w", encoding="utf-8") as handle:
        handle.write(table + "\n")
    missing = len(samples) - len(rows)
    print(f"\n{table}\n\nwrote {csv_path} and {os.path.join(args.output, 'summary.md')}"
          + (f"; {missing} samples failed and are not scored (see {config.output}/results.jsonl)" if missing else ""))
    return 0 if not missing else 1


if __name__ == "__main__":
    sys.exit(main())
