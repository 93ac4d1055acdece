"""ICEditEarlyFilterSampler: several seeds run a few steps, a judge picks the best, only the winner finishes."""
from __future__ import annotations

from dataclasses import dataclass

import comfy.model_management
import comfy.sample
import comfy.samplers
import comfy.utils
import latent_preview
import nodes as comfy_nodes
import torch
from comfy_api.latest import io

from ..icedit_core import early_filter as ef
from ..icedit_core import editors
from . import editor_checks
from .io_types import Judge, Layout
from .validation import ICEditNode

# Samplers whose next step depends only on the current latent and sigma: a run split at step m and resumed
# is the same run. Multistep (history) and stochastic (noise per step) samplers are not.
RESUMABLE_SAMPLERS = ("euler", "heun", "dpm_2", "ddim")
# Where core EasyCache and LazyCache (comfy_extras/nodes_easycache.py) keep their state on a model.
STEP_CACHE_OPTION = "easycache"


class _Progress:
    """One progress bar over all candidate-steps of the run, with live previews of the first of a batch."""

    def __init__(self, model, total: int):
        self.bar = comfy.utils.ProgressBar(total)
        self.total = total
        self.done = 0
        self.previewer = latent_preview.get_previewer(model.load_device, model.model.latent_format)

    def callback(self, candidates: int, holder: dict):
        def on_step(step, x0, x, total_steps):
            holder["x0"] = x0
            self.done += candidates
            preview = self.previewer.decode_latent_to_preview_image("JPEG", x0) if self.previewer else None
            self.bar.update_absolute(min(self.done, self.total), self.total, preview)
        return on_step


def decode(vae, samples: torch.Tensor) -> torch.Tensor:
    """Decoded images [N, H, W, C], as VAE Decode gives them (a video VAE's frames, Qwen-Image's, flattened)."""
    return comfy_nodes.VAEDecode().decode(vae, {"samples": samples})[0]


def _chunks(count: int, size: int):
    size = size or count
    for start in range(0, count, size):
        yield list(range(start, min(count, start + size)))


@dataclass(frozen=True)
class EarlyFilterSettings:
    candidates: int
    early_steps: int
    mode: str = ef.RESUME
    judge_mode: str = "pairwise"
    batch_size: int = 0

    def check(self, model, sampler_name: str, steps: int) -> None:
        ef.check_settings(self.mode, self.candidates, self.early_steps, steps)
        if self.mode == ef.RESUME and sampler_name not in RESUMABLE_SAMPLERS:
            raise ValueError(f"resume mode continues a run half-way, which is exact only for samplers without "
                             f"history or per-step noise ({', '.join(RESUMABLE_SAMPLERS)}); {sampler_name} is "
                             "not one. Pick one of those or mode 'paper'.")
        if STEP_CACHE_OPTION in model.model_options.get("transformer_options", {}):
            raise ValueError("this model carries EasyCache or LazyCache, which skip steps by what the run did so "
                             "far: the candidates share one batch and the winner continues in a new run, so the "
                             "result would no longer be the winning seed's own run. Take the cache node out of "
                             "this model path (it works with KSampler).")

    def nfe(self, steps: int, cfg: float = 1.0) -> int:
        return ef.nfe(self.mode, self.candidates, self.early_steps, steps, cfg)


@dataclass
class EarlyFilterRun:
    samples: torch.Tensor  # the winner, sampled to the end
    previews: torch.Tensor  # what the judge saw: each candidate in the source's frame (ICEdit: its right panel)
    winner_seed: int
    report: str


def _select(judge, judge_mode, original, previews, instruction):
    def compare(incumbent, challenger):
        comfy.model_management.throw_exception_if_processing_interrupted()
        return judge.compare(original, previews[incumbent], previews[challenger], instruction)

    if judge_mode == "pairwise":
        return ef.tournament(previews.shape[0], compare)
    scores = []
    for preview in previews:
        comfy.model_management.throw_exception_if_processing_interrupted()
        scores.append(judge.score(original, preview, instruction))
    return ef.best_by_score(scores)


def early_filter_sample(model, positive, negative, samples, vae, judge, layout, instruction, seed, steps, cfg,
                        sampler_name, scheduler, settings: EarlyFilterSettings) -> EarlyFilterRun:
    """The Early Filter on one edit's latent, for any editor: candidates seed, seed + 1, ... run early_steps steps,
    the judge picks from their previews (decoded and mapped to the source's frame by `layout`: ICEdit's diptych
    layout or an editor's frame), the winner finishes. Settings and inputs are checked by the caller
    (settings.check, editor_checks.check_inputs), before anything is sampled."""
    mode, candidates, early_steps = settings.mode, settings.candidates, settings.early_steps
    seeds = ef.consecutive_seeds(seed, candidates)
    noises = [comfy.sample.prepare_noise(samples, s) for s in seeds]  # per-seed, as a lone run would draw
    progress = _Progress(model, settings.nfe(steps))  # candidate-steps (the bar counts steps, at any cfg)

    def run(noise, latent_image, n_steps, holder, seed, **kwargs):
        # `seed` only feeds samplers that draw noise per step; the initial noise is given.
        return comfy.sample.sample(model, noise, n_steps, cfg, sampler_name, scheduler, positive, negative,
                                   latent_image, denoise=1.0, callback=progress.callback(noise.shape[0], holder),
                                   disable_pbar=True, seed=seed, **kwargs)

    partials, preview_latents = [], []
    for chunk in _chunks(candidates, settings.batch_size):
        noise = torch.cat([noises[i] for i in chunk])
        latent_image = samples.repeat(len(chunk), *[1] * (samples.ndim - 1))  # Qwen-Image's latents are 5-d
        holder = {}
        if mode == ef.PAPER:  # a complete early_steps-step run per candidate; its result is the preview
            out = run(noise, latent_image, early_steps, holder, seeds[chunk[0]])
            preview_latents.append(out)
        else:  # the first early_steps of the full schedule; the preview is the model's x0 estimate there
            out = run(noise, latent_image, steps, holder, seeds[chunk[0]], last_step=early_steps,
                      force_full_denoise=False)
            preview_latents.append(model.model.process_latent_out(holder["x0"].to(out.device)).to(out.dtype))
        partials.append(out)
    partials = torch.cat(partials)
    comfy.model_management.throw_exception_if_processing_interrupted()

    with torch.no_grad():  # ComfyUI's executor runs in inference mode; direct callers need not
        original, previews = editors.judge_views(decode(vae, torch.cat(preview_latents)), layout)
    selection = _select(judge, settings.judge_mode, original, previews, instruction)
    winner = selection.winner

    holder = {}
    if mode == ef.PAPER:
        final = run(noises[winner], samples, steps, holder, seeds[winner])
    else:
        final = run(torch.zeros_like(noises[winner]), partials[winner:winner + 1], steps, holder, seeds[winner],
                    start_step=early_steps, last_step=steps, force_full_denoise=True)
    report = (f"Early Filter ({mode}, {settings.judge_mode}, judge {judge.name}): {candidates} candidates x "
              f"{early_steps} steps, winner {steps} steps; NFE {settings.nfe(steps, cfg)}\n" + selection.report(seeds))
    return EarlyFilterRun(final, previews, seeds[winner], report)


class ICEditEarlyFilterSampler(ICEditNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ICEditEarlyFilterSampler",
            display_name="ICEdit Early Filter Sampler",
            category="ICEdit",
            description="The paper's Early Filter: `candidates` seeds (seed, seed+1, ...) run `early_steps` steps "
                        "as one batch, a judge compares their previews, and only the winner is sampled to the "
                        "end. resume: the winner continues from its step, exactly as if that seed had run alone "
                        "(NFE M*m + n - m). paper: the winner is re-run from its noise (NFE n + M*m). Works for "
                        "ICEdit (FLUX.1 Fill), FLUX.1 Kontext and Qwen-Image-Edit: the layout says which.",
            inputs=[
                io.Model.Input("model", tooltip="FLUX.1 Fill (after the LoRA / MoE loader and ICEdit Flux Shift), "
                                                "FLUX.1 Kontext [dev], or Qwen-Image-Edit (after "
                                                "ModelSamplingAuraFlow)."),
                io.Conditioning.Input("positive", tooltip="From ICEditFillConditioning (or an editor's encode node)."),
                io.Conditioning.Input("negative", tooltip="From ICEditFillConditioning (or an editor's encode node)."),
                io.Latent.Input("latent", tooltip="From ICEditFillConditioning (one diptych) or an editor's encode "
                                                  "node (one image)."),
                io.Vae.Input("vae", tooltip="Decodes the candidates' previews for the judge."),
                Judge.Input("judge", tooltip="A judge loader: local VLM, API, or heuristic."),
                Layout.Input("layout", tooltip="From ICEditDiptych (or an editor's encode node): the source the judge "
                                               "compares against, and how a candidate maps back to it."),
                io.String.Input("instruction", force_input=True,
                                tooltip="The edit instruction (ICEditPromptEncode's instruction output)."),
                io.Int.Input("seed", default=42, min=0, max=ef.SEED_LIMIT - 1, control_after_generate=True,
                             tooltip="Candidate i uses seed + i, wrapping past the largest seed to 0."),
                io.Int.Input("candidates", default=6, min=1, max=64, tooltip="M: how many seeds compete (paper: 6)."),
                io.Int.Input("early_steps", default=10, min=1, max=200,
                             tooltip="m: steps each candidate runs before judging (paper: 10)."),
                io.Int.Input("steps", default=28, min=1, max=200, tooltip="n: the winner's full number of steps."),
                io.Float.Input("cfg", default=1.0, min=0.0, max=100.0, step=0.1,
                               tooltip="FLUX.1 Fill and Kontext [dev]: 1.0; Qwen-Image-Edit: 2.5 (twice the model "
                                       "evaluations: the negative too)."),
                io.Combo.Input("sampler_name", options=comfy.samplers.SAMPLER_NAMES, default="euler",
                               tooltip=f"resume mode needs a sampler without history: {', '.join(RESUMABLE_SAMPLERS)}."),
                io.Combo.Input("scheduler", options=comfy.samplers.SCHEDULER_NAMES, default="simple",
                               tooltip="The sigma schedule."),
                io.Combo.Input("mode", options=[ef.RESUME, ef.PAPER], default=ef.RESUME,
                               tooltip="resume: candidates run the first m of n steps, the winner continues. "
                                       "paper: candidates run their own m-step schedule, the winner is re-run."),
                io.Combo.Input("judge_mode", options=["pairwise", "absolute"], default="pairwise",
                               tooltip="pairwise: the paper's running maximum (M-1 comparisons). absolute: each "
                                       "candidate scored alone (VIEScore), the best wins."),
                io.Int.Input("batch_size", default=0, min=0, max=64,
                             tooltip="Candidates sampled together; 0 = all at once. Lower it to save memory."),
            ],
            outputs=[
                io.Latent.Output("winner_latent", display_name="latent", tooltip="The winner, sampled to the end."),
                io.Image.Output("previews", display_name="previews",
                                tooltip="What the judge saw: each candidate in the source's frame (ICEdit: its right "
                                        "panel)."),
                io.Int.Output("winner_seed", display_name="winner_seed", tooltip="The winning candidate's seed."),
                io.String.Output("report", display_name="report", tooltip="Every comparison or score, with the judge's reasons."),
            ],
        )

    @classmethod
    def execute(cls, model, positive, negative, latent, vae, judge, layout, instruction, seed, candidates,
                early_steps, steps, cfg, sampler_name, scheduler, mode, judge_mode, batch_size) -> io.NodeOutput:
        settings = EarlyFilterSettings(candidates, early_steps, mode, judge_mode, batch_size)
        settings.check(model, sampler_name, steps)
        if not instruction.strip():
            raise ValueError("the instruction is empty; link ICEditPromptEncode's instruction output")
        samples = latent["samples"]
        if samples.shape[0] != 1 or layout.batch_size != 1:
            raise ValueError(f"the Early Filter edits one image at a time; got a latent batch of "
                             f"{samples.shape[0]} and {layout.batch_size} source(s)")
        editor_checks.check_inputs(layout, model, positive)  # another editor's model or conditioning: before all
        judge.check()  # a judge that cannot answer is found now, not after every candidate was sampled
        run = early_filter_sample(model, positive, negative, samples, vae, judge, layout, instruction, seed, steps,
                                  cfg, sampler_name, scheduler, settings)
        return io.NodeOutput({"samples": run.samples}, run.previews, run.winner_seed, run.report)


NODES = [ICEditEarlyFilterSampler]
