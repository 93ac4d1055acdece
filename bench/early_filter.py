"""Wall time and model evaluations (NFE) of the Early Filter's two modes against the naive way - every seed
sampled to the end, then judged - on the same model, in one run, with ratios. Not a test.

    scripts/bench early_filter            # small random Flux Fill on this machine's CPU, heuristic judge
    scripts/bench early_filter --full     # FLUX.1 Fill size, 1024x512 diptych, M=6, m=10, n=28 (a GPU)
    scripts/bench early_filter --editor flux_kontext [--full]   # FLUX.1 Kontext: the whole image (--full: at
                                          # Kontext's preferred size, 1024x1024 for a square source), M=6 m=7 n=20
"""
from __future__ import annotations

import argparse
import os
import time

from .common import add_model_size_arguments, use_full_size, write_results


import comfy.model_management
import comfy.sample
import folder_paths
import nodes as comfy_nodes
import torch

from ..devtools import smoke_models
from ..icedit_core import early_filter as ef
from ..icedit_core import editors
from ..icedit_core.judge.heuristic import HeuristicJudge
from ..nodes.edit import ICEditDiptych, ICEditFillConditioning, ICEditPromptEncode
from ..nodes.editors import ICEditKontextEncode
from ..nodes.sampler import ICEditEarlyFilterSampler
from ..nodes.smoke_test import ICEditSmokeTestCLIPLoader


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--editor", choices=(editors.ICEDIT, editors.FLUX_KONTEXT), default=editors.ICEDIT,
                        help="icedit: a FLUX.1 Fill diptych; flux_kontext: FLUX.1 Kontext on the whole image")
    add_model_size_arguments(parser, hidden=384, heads=3, double=2, single=2)
    parser.add_argument("--panel-width", type=int, default=128,
                        help="diptych panel width in pixels (flux_kontext: the source's width)")
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--early-steps", type=int, default=4)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()
    if args.full:
        use_full_size(args)
        args.panel_width = 512 if args.editor == editors.ICEDIT else 1024
        args.candidates, args.early_steps, args.steps = (6, 10, 28) if args.editor == editors.ICEDIT else (6, 7, 20)
    return args


def edit_inputs(args, clip, vae, dtype, device):
    """(model, positive, negative, latent, layout, instruction) of one edit of a random source, for the editor."""
    source = torch.rand(1, args.panel_width * 3 // 4, args.panel_width, 3, generator=torch.Generator().manual_seed(0))
    shape = dict(hidden_size=args.hidden, num_heads=args.heads, depth=args.double, depth_single_blocks=args.single)
    if args.editor == editors.FLUX_KONTEXT:
        model = smoke_models.build_flux_kontext(smoke_models.flux_kontext_config(**shape), seed=0, dtype=dtype,
                                                 device=device)
        # --full: Kontext's own preferred size (FluxKontextImageScale); else the source's small size.
        positive, negative, latent, layout, instruction = ICEditKontextEncode.execute(
            clip, vae, source, "make it red", 2.5, kontext_size=args.full).result
        return model, positive, negative, latent, layout, instruction
    model = smoke_models.build_flux_fill(smoke_models.flux_fill_config(**shape), seed=0, dtype=dtype, device=device)
    diptych, mask, layout = ICEditDiptych.execute(source, args.panel_width).result
    positive, negative, _, instruction = ICEditPromptEncode.execute(clip, "make it red", "released", "", 50.0).result
    positive, negative, latent = ICEditFillConditioning.execute(positive, negative, vae, diptych, mask).result
    return model, positive, negative, latent, layout, instruction


def main():
    args = parse_args()
    device = comfy.model_management.get_torch_device()
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    machine = torch.cuda.get_device_name(0) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    smoke = smoke_models.ensure_smoke_models(os.environ.get("ICEDIT_CACHE",
                                                            os.path.expanduser("~/.cache/icedit-comfyui")))
    for kind, _ in smoke_models.SMOKE_FILES.values():
        folder_paths.add_model_folder_path(kind, os.path.join(smoke, kind))
    clip = ICEditSmokeTestCLIPLoader.execute(smoke_models.SMOKE_FILES["text_encoders"][1]).result[0]
    vae = comfy_nodes.VAELoader().load_vae(smoke_models.SMOKE_FILES["vae"][1])[0]
    model, positive, negative, latent, layout, instruction = edit_inputs(args, clip, vae, dtype, device)

    evaluations = []

    def count(apply_model, call):
        evaluations.append(call["input"].shape[0])
        return apply_model(call["input"], call["timestep"], **call["c"])

    model.set_model_unet_function_wrapper(count)
    judge = HeuristicJudge()
    m, n, count_m = args.early_steps, args.steps, args.candidates

    def early_filter(mode):
        return ICEditEarlyFilterSampler.execute(model, positive, negative, latent, vae, judge, layout, instruction,
                                                42, count_m, m, n, 1.0, "euler", "simple", mode, "pairwise", 0)

    def naive():
        samples = latent["samples"]
        noise = torch.cat([comfy.sample.prepare_noise(samples, 42 + i) for i in range(count_m)])
        finals = comfy.sample.sample(model, noise, n, 1.0, "euler", "simple", positive, negative,
                                     samples.repeat(count_m, 1, 1, 1), disable_pbar=True, seed=42)
        original, previews = editors.judge_views(vae.decode(finals), layout)
        return ef.tournament(count_m, lambda a, b: judge.compare(original, previews[a], previews[b]))

    early_filter("resume")  # warm-up: loads, first-call overheads
    results = {"machine": machine, "torch": torch.__version__, "config": vars(args)}
    for name, run in (("naive_best_of_m", naive), ("paper", lambda: early_filter("paper")),
                      ("resume", lambda: early_filter("resume"))):
        evaluations.clear()
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize()
        results[name] = {"seconds": time.perf_counter() - start, "nfe": sum(evaluations)}
    base = results["naive_best_of_m"]
    size = f"{layout.working_width}x{layout.working_height} image" if args.editor == editors.FLUX_KONTEXT else \
        f"panel {args.panel_width}"
    print(f"Early Filter ({editors.editor(args.editor).display}), M={count_m} m={m} n={n}, {args.double}+"
          f"{args.single} blocks x {args.hidden}, {size}, on {machine}")
    print(f"{'variant':<18}{'seconds':>10}{'NFE':>6}{'time ratio':>12}{'NFE ratio':>11}")
    for name in ("naive_best_of_m", "paper", "resume"):
        r = results[name]
        print(f"{name:<18}{r['seconds']:>10.2f}{r['nfe']:>6}{r['seconds'] / base['seconds']:>12.3f}"
              f"{r['nfe'] / base['nfe']:>11.3f}")
    write_results(args.out, results)


if __name__ == "__main__":
    main()
