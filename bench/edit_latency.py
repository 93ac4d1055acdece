"""Where the time of one ICEdit edit goes, phase by phase, through the pack's nodes called in-process as the
shipped workflows wire them; and the same edit with the Early Filter in place of the KSampler, with its cost as a
ratio of the plain edit's measured in the same run. Medians over repeats. Not a test.

    scripts/bench edit_latency            # small random Flux Fill (2 + 2 blocks, 384 wide) on this machine's
                                            # CPU, 192x96 diptych, 28 steps, Early Filter 6 x 10, 3 rounds
    scripts/bench edit_latency --full     # FLUX.1 Fill size (19 + 38 blocks, 3072 wide, random bf16 weights),
                                            # 1024x512 diptych, 28 steps, Early Filter 6 x 10: needs a GPU
    scripts/bench edit_latency --full --judge local-vlm --vlm-folder Qwen2.5-VL-7B-Instruct   # VLM judge

Plain edit (workflows/icedit_basic.json): ICEditDiptych (diptych) -> ICEditPromptEncode (text_encode) ->
ICEditFillConditioning (vae_encode) -> ICEditModelSamplingFlux (flux_shift) -> KSampler's common_ksampler, euler /
simple, cfg 1 (sampling) -> VAEDecode (vae_decode) -> ICEditCrop (crop).
Early Filter edit (workflows/icedit_early_filter.json): the same, with ICEditEarlyFilterSampler (resume mode,
pairwise; judge ICEditJudgeHeuristic unless --judge says otherwise) as the sampling phase, split from outside
the node into
  candidates: from the node's start until it decodes the previews (the M x m candidate steps, one batch),
  judge:      the previews' VAE decode and the judge's comparisons (the VAE's and the judge's methods are wrapped),
  winner:     from the last comparison to the node's return (the n - m steps the winner resumes).
Model evaluations are counted with a unet function wrapper, as bench/early_filter.py does.

What the models are: the Flux Fill and the VAE (the Flux VAE's real architecture) have random weights; the text
encoders are the small smoke-test pair, except with --full, where ComfyUI's real-size CLIP-L + T5-XXL are built
with random weights on the GPU (--small-text-encoders keeps the small pair). Random weights give noise, not edits,
but the same computation. On a CPU the real-size VAE outweighs the small transformer, so the CPU ratios say little
about a GPU's; and the CPU numbers are only meaningful on an otherwise idle machine (torch's threads stall when
another process takes a core).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import time

from .common import add_model_size_arguments, use_full_size, write_results


import comfy.model_management
import comfy.sd
import comfy.supported_models_base
import comfy.utils
import folder_paths
import nodes as comfy_nodes
import torch
from comfy.text_encoders.flux import FluxClipModel, FluxTokenizer

from ..devtools import smoke_models
from ..icedit_core import early_filter as ef
from ..nodes.edit import (ICEditCrop, ICEditDiptych, ICEditFillConditioning,
                                       ICEditModelSamplingFlux, ICEditPromptEncode)
from ..nodes.judge import ICEditJudgeHeuristic, ICEditVLMJudgeLocal
from ..nodes.sampler import ICEditEarlyFilterSampler
from ..nodes.smoke_test import ICEditSmokeTestCLIPLoader

INSTRUCTION = "make the sky a warm sunset"  # the shipped workflows' example
SEED = 42
PLAIN_PHASES = ("diptych", "text_encode", "vae_encode", "flux_shift", "sampling", "vae_decode", "crop", "total")
EARLY_FILTER_PHASES = ("diptych", "text_encode", "vae_encode", "flux_shift", "sampling", "candidates", "judge",
                       "preview_decode", "comparisons", "winner", "vae_decode", "crop", "total")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="FLUX.1 Fill size on the GPU, bf16, paper settings")
    add_model_size_arguments(parser, hidden=384, heads=3, double=2, single=2)
    parser.add_argument("--panel-width", type=int, default=96, help="diptych panel width in pixels (square source)")
    parser.add_argument("--steps", type=int, default=28, help="n: steps of the plain edit and of the winner")
    parser.add_argument("--candidates", type=int, default=6, help="M: Early Filter seeds")
    parser.add_argument("--early-steps", type=int, default=10, help="m: steps each candidate runs before judging")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds (one plain edit + one Early Filter each)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed rounds first, with M candidates but 1 early step of 2 (loads, first calls)")
    parser.add_argument("--judge", choices=["heuristic", "local-vlm"], default="heuristic",
                        help="heuristic: ICEditJudgeHeuristic (no model); local-vlm: ICEditVLMJudgeLocal")
    parser.add_argument("--vlm-folder", default=smoke_models.SMOKE_FILES["vlm"][1],
                        help="with --judge local-vlm: a folder under models/vlm/, or a path (default: the small "
                             "random-weight Qwen2-VL of the smoke tests)")
    parser.add_argument("--vlm-max-new-tokens", type=int, default=256)
    parser.add_argument("--small-text-encoders", action="store_true",
                        help="with --full: the small smoke-test text encoders instead of real-size random ones")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()
    if args.full:
        use_full_size(args)
        args.panel_width = 512
        args.steps, args.candidates, args.early_steps = 28, 6, 10
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    ef.check_settings(ef.RESUME, args.candidates, args.early_steps, args.steps)
    return args


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine(device, dtype) -> dict:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info = {"cpu": f"{cpu_model()}, {cores} cores available, {torch.get_num_threads()} torch threads", "cores": cores,
            "torch": torch.__version__, "dtype": str(dtype).replace("torch.", ""), "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    info["summary"] = info.get("gpu", info["cpu"])
    return info


def real_size_text_encoders(device):
    """CLIP-L + T5-XXL at their real sizes (ComfyUI's FluxClipModel, as DualCLIPLoader type flux builds them)
    with random weights, made directly on the GPU: no files of that size exist here."""
    target = comfy.supported_models_base.ClipTarget(FluxTokenizer, FluxClipModel)
    clip = comfy.sd.CLIP(target, embedding_directory=folder_paths.get_folder_paths("embeddings"),
                         model_options={"initial_device": device})
    smoke_models.randomize_(clip.cond_stage_model, seed=2)
    return clip


def make_judge(args):
    if args.judge == "heuristic":
        return ICEditJudgeHeuristic.execute().result[0]
    folder = args.vlm_folder
    if os.path.isdir(folder):  # a path: its parent becomes one more models/vlm folder, as extra_model_paths does
        folder_paths.add_model_folder_path("vlm", os.path.dirname(os.path.abspath(folder)))
        folder = os.path.basename(os.path.abspath(folder))
    return ICEditVLMJudgeLocal.execute(folder, "auto", args.vlm_max_new_tokens).result[0]


class Stopwatch:
    """Laps in milliseconds; waits for the GPU at every mark, so a lap holds the work its phase queued."""

    def __init__(self, synchronize):
        self.synchronize = synchronize
        self.laps = {}
        self.start = self.last = self.now()

    def now(self) -> float:
        self.synchronize()
        return time.perf_counter()

    def lap(self, name: str) -> float:
        now = self.now()
        self.laps[name] = (now - self.last) * 1000
        self.last = now
        return now

    def finish(self) -> dict[str, float]:
        self.laps["total"] = (self.now() - self.start) * 1000
        return self.laps


@contextlib.contextmanager
def early_filter_marks(vae, judge, clock: Stopwatch):
    """Times where the node hands over to the VAE (its previews) and to the judge, by wrapping those two objects'
    methods for the length of one run; the node's own code is untouched."""
    marks = {"decode_start": None, "decode_end": None, "judge_end": None, "judge_calls": 0}
    decode, compare, score = vae.decode, judge.compare, judge.score

    def timed_decode(*args, **kwargs):
        marks["decode_start"] = clock.now()
        result = decode(*args, **kwargs)
        marks["decode_end"] = clock.now()
        return result

    def timed(method):
        def call(*args, **kwargs):
            result = method(*args, **kwargs)
            marks["judge_end"] = clock.now()
            marks["judge_calls"] += 1
            return result
        return call

    vae.decode, judge.compare, judge.score = timed_decode, timed(compare), timed(score)
    try:
        yield marks
    finally:
        del vae.decode, judge.compare, judge.score  # the instance attributes; the classes' methods show again


class Bench:
    def __init__(self, args, model, clip, vae, judge, source, synchronize):
        self.args, self.model, self.clip, self.vae, self.judge = args, model, clip, vae, judge
        self.source, self.synchronize = source, synchronize
        self.evaluations = []

    def count_evaluations(self, apply_model, call):
        self.evaluations.append(call["input"].shape[0])
        return apply_model(call["input"], call["timestep"], **call["c"])

    def prepare(self, clock: Stopwatch):
        """The phases both edits share, up to the model with the diptych's shift."""
        diptych, mask, layout = ICEditDiptych.execute(self.source, self.args.panel_width).result
        clock.lap("diptych")
        positive, negative, _, instruction = ICEditPromptEncode.execute(
            self.clip, INSTRUCTION, "released", "", 50.0).result
        clock.lap("text_encode")
        positive, negative, latent = ICEditFillConditioning.execute(positive, negative, self.vae, diptych, mask).result
        clock.lap("vae_encode")
        (shifted,) = ICEditModelSamplingFlux.execute(self.model, layout, 1.15, 0.5).result
        shifted.set_model_unet_function_wrapper(self.count_evaluations)
        clock.lap("flux_shift")
        return positive, negative, latent, layout, instruction, shifted

    def finish(self, clock: Stopwatch, sampled, layout):
        (decoded,) = comfy_nodes.VAEDecode().decode(self.vae, sampled)
        clock.lap("vae_decode")
        # Random weights draw noise on the left panel too, which the crop's source check (on in the workflows)
        # would refuse; that check compares 16x16 thumbnails, a negligible cost next to these phases.
        ICEditCrop.execute(decoded, layout, check_source=False)
        clock.lap("crop")

    def plain_edit(self, steps: int) -> tuple[dict, int]:
        self.evaluations.clear()
        clock = Stopwatch(self.synchronize)
        positive, negative, latent, layout, _, shifted = self.prepare(clock)
        (sampled,) = comfy_nodes.common_ksampler(shifted, SEED, steps, 1.0, "euler", "simple", positive, negative,
                                                 latent, denoise=1.0)
        clock.lap("sampling")
        self.finish(clock, sampled, layout)
        return clock.finish(), sum(self.evaluations)

    def early_filter_edit(self, candidates: int, early_steps: int, steps: int) -> tuple[dict, int, int]:
        self.evaluations.clear()
        clock = Stopwatch(self.synchronize)
        positive, negative, latent, layout, instruction, shifted = self.prepare(clock)
        with early_filter_marks(self.vae, self.judge, clock) as marks:
            sampled = ICEditEarlyFilterSampler.execute(
                shifted, positive, negative, latent, self.vae, self.judge, layout, instruction, SEED, candidates,
                early_steps, steps, 1.0, "euler", "simple", ef.RESUME, "pairwise", 0).result[0]
        started = clock.last
        ended = clock.lap("sampling")
        judge_end = max(marks["decode_end"], marks["judge_end"] or 0.0)  # one candidate: nothing to compare
        laps = clock.laps
        laps["candidates"] = (marks["decode_start"] - started) * 1000
        laps["judge"] = (judge_end - marks["decode_start"]) * 1000
        laps["preview_decode"] = (marks["decode_end"] - marks["decode_start"]) * 1000
        laps["comparisons"] = (judge_end - marks["decode_end"]) * 1000
        laps["winner"] = (ended - judge_end) * 1000
        self.finish(clock, sampled, layout)
        return clock.finish(), sum(self.evaluations), marks["judge_calls"]


def medians(rounds: list[dict], phases) -> tuple[dict, dict]:
    times = {phase: [round(r[phase], 3) for r in rounds] for phase in phases}
    return {phase: statistics.median(values) for phase, values in times.items()}, times


def print_table(results):
    config, plain, early = results["config"], results["plain_edit"], results["early_filter"]
    m_count, m, n = config["candidates"], config["early_steps"], config["steps"]
    print(f"\nICEdit edit latency: {config['double']}+{config['single']} blocks x {config['hidden']}, "
          f"{results['diptych']} diptych, n={n} steps, Early Filter M={m_count} x m={m} (resume, pairwise, "
          f"judge {results['judge']}); medians of {config['repeats']} rounds")
    print(f"machine: {results['machine']['summary']}; torch {results['machine']['torch']}, "
          f"{results['machine']['dtype']}" + (f"; CPU {results['machine']['cpu']}" if "gpu" in results["machine"]
                                              else ""))
    print(f"text encoders: {results['text_encoders']}\nVAE: {results['vae']}")
    labels = {"sampling": "sampling (node)", "candidates": "  candidates", "judge": "  judge",
              "preview_decode": "    preview decode", "comparisons": "    comparisons", "winner": "  winner"}
    print(f"{'phase':<20}{'plain ms':>12}{'early filter ms':>18}")
    for phase in EARLY_FILTER_PHASES:
        plain_ms = f"{plain['phases_ms'][phase]:.1f}" if phase in plain["phases_ms"] else "-"
        print(f"{labels.get(phase, phase):<20}{plain_ms:>12}{early['phases_ms'][phase]:>18.1f}")
    print(f"{'NFE':<20}{plain['nfe']:>12}{early['nfe']:>18}")
    print(f"per step: plain {plain['sampling_per_step_ms']:.1f} ms (batch 1); Early Filter candidates "
          f"{early['candidate_step_ms']:.1f} ms (batch {m_count}), winner {early['winner_step_ms']:.1f} ms (batch 1)")
    ratios = results["ratios"]
    print(f"Early Filter / plain: total {ratios['total']:.3f}, sampling {ratios['sampling']:.3f}, "
          f"NFE {ratios['nfe']:.3f}")


def main():
    args = parse_args()
    device = comfy.model_management.get_torch_device()
    if args.full and device.type != "cuda":
        raise SystemExit("--full builds a FLUX.1 Fill-size model (about 12 B parameters, 24 GB in bf16) and samples "
                         "a 1024x512 diptych: it needs a CUDA GPU, and none is available here. Run without --full "
                         "for the small model on the CPU.")
    if args.small_text_encoders and not args.full:
        raise SystemExit("--small-text-encoders only changes --full; without it the text encoders are small anyway")
    comfy.utils.set_progress_bar_enabled(False)  # no tqdm bars between the rows (ComfyUI's own switch)
    dtype = torch.bfloat16 if args.full else torch.float32
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    cache = os.environ.get("ICEDIT_CACHE", os.path.expanduser("~/.cache/icedit-comfyui"))
    smoke = smoke_models.ensure_smoke_models(cache)
    for kind, _ in smoke_models.SMOKE_FILES.values():
        folder_paths.add_model_folder_path(kind, os.path.join(smoke, kind))

    results = {"machine": machine(device, dtype), "config": vars(args)}
    print(f"building: random Flux Fill {args.double}+{args.single} blocks x {args.hidden}, "
          f"{results['machine']['dtype']}, on {results['machine']['summary']}", flush=True)
    config = smoke_models.flux_fill_config(hidden_size=args.hidden, num_heads=args.heads,
                                           depth=args.double, depth_single_blocks=args.single)
    if args.full and not args.small_text_encoders:
        clip = real_size_text_encoders(device)
        config["context_in_dim"], config["vec_in_dim"] = 4096, 768  # what T5-XXL and CLIP-L give
        results["text_encoders"] = ("real size: CLIP-L + T5-XXL (ComfyUI's FluxClipModel), random weights, "
                                    f"{str(comfy.model_management.text_encoder_dtype(device)).replace('torch.', '')}")
    else:
        clip = ICEditSmokeTestCLIPLoader.execute(smoke_models.SMOKE_FILES["text_encoders"][1]).result[0]
        results["text_encoders"] = ("small smoke-test CLIP-L + T5 (64 wide, 2 layers each), random weights: "
                                    "text_encode does NOT represent the real encoders' cost")
    model = smoke_models.build_flux_fill(config, seed=0, dtype=dtype, device=device)
    vae = comfy_nodes.VAELoader().load_vae(smoke_models.SMOKE_FILES["vae"][1])[0]
    results["vae"] = (f"the Flux VAE's architecture at its real size (ae.safetensors layout), random weights, "
                      f"{str(vae.vae_dtype).replace('torch.', '')}")
    judge = make_judge(args)
    results["judge"] = judge.name if args.judge == "heuristic" else f"{judge.name} VLM {args.vlm_folder}"
    source = torch.rand(1, args.panel_width, args.panel_width, 3, generator=torch.Generator().manual_seed(0))
    results["diptych"] = f"{2 * args.panel_width}x{args.panel_width}"
    bench = Bench(args, model, clip, vae, judge, source, synchronize)

    m_count, m, n = args.candidates, args.early_steps, args.steps
    plain_rounds, early_rounds = [], []
    began = time.perf_counter()
    with torch.inference_mode():  # as ComfyUI's executor runs nodes
        for _ in range(args.warmup):  # the same shapes (batch M for the candidates) at few steps
            bench.plain_edit(2)
            bench.early_filter_edit(m_count, 1, 2)
        print(f"warm-up done in {time.perf_counter() - began:.1f} s; timing {args.repeats} rounds", flush=True)
        for index in range(args.repeats):  # alternate, so that drift in the machine's speed hits both alike
            laps, plain_nfe = bench.plain_edit(n)
            plain_rounds.append(laps)
            laps, early_nfe, judge_calls = bench.early_filter_edit(m_count, m, n)
            early_rounds.append(laps)
            print(f"round {index + 1}/{args.repeats}: plain {plain_rounds[-1]['total'] / 1000:.2f} s, "
                  f"Early Filter {laps['total'] / 1000:.2f} s", flush=True)
    if early_nfe != ef.nfe(ef.RESUME, m_count, m, n):  # the counted evaluations against the node's own formula
        print(f"WARNING: the Early Filter made {early_nfe} model evaluations, not M*m + n - m = "
              f"{ef.nfe(ef.RESUME, m_count, m, n)}", flush=True)

    plain_ms, plain_times = medians(plain_rounds, PLAIN_PHASES)
    early_ms, early_times = medians(early_rounds, EARLY_FILTER_PHASES)
    results["plain_edit"] = {"phases_ms": plain_ms, "times_ms": plain_times, "nfe": plain_nfe,
                             "sampling_per_step_ms": plain_ms["sampling"] / n}
    results["early_filter"] = {"mode": ef.RESUME, "judge_mode": "pairwise", "phases_ms": early_ms,
                               "times_ms": early_times, "nfe": early_nfe, "judge_calls": judge_calls,
                               "candidate_step_ms": early_ms["candidates"] / m,
                               "winner_step_ms": early_ms["winner"] / (n - m)}
    results["ratios"] = {"total": early_ms["total"] / plain_ms["total"],
                         "sampling": early_ms["sampling"] / plain_ms["sampling"], "nfe": early_nfe / plain_nfe}
    results["wall_seconds"] = round(time.perf_counter() - began, 1)
    results["machine"]["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    results["notes"] = [
        "random weights: the images are noise, the amount of computation is a real edit's",
        "per-step times are phase time / steps, so they include the sampler's setup (noise, conditioning)",
        "ratios are of medians measured in the same run, plain edit and Early Filter alternating",
        f"judge {results['judge']}" + (": image statistics on the CPU; a VLM judge's comparisons cost far more"
                                       if args.judge == "heuristic" else ""),
    ]
    print_table(results)
    print(f"measured in {results['wall_seconds']} s after loading")
    cores = results["machine"]["cores"]
    if device.type == "cpu" and results["machine"]["load_average_1min_after"] > cores + 0.5:
        print(f"WARNING: the 1-minute load average was {results['machine']['load_average_1min_after']} on "
              f"{cores} cores: other work shared the CPU, and these times are not a quiet machine's")
    write_results(args.out, results)


if __name__ == "__main__":
    main()
