"""Fast edits users combine with ICEdit, on ComfyUI's real classes (tiny FLUX.1 Fill): the MoE hooks under core
EasyCache / LazyCache, the MoE adapter followed by a Turbo-style LoRA, and the Early Filter's refusal of a step
cache (it would break the exact resume)."""
from __future__ import annotations

import logging
import re

import comfy.patcher_extension
import comfy.sample
import comfy.sd
import pytest
import torch
from comfy_extras.nodes_easycache import EasyCacheNode, LazyCacheNode

from comfyui_icedit.devtools import smoke_adapters, smoke_models
from comfyui_icedit.icedit_core.adapter_file import parse_state_dict
from comfyui_icedit.icedit_core.judge.heuristic import HeuristicJudge
from comfyui_icedit.nodes.flux_hooks import WRAPPER_KEY, apply_adapter
from comfyui_icedit.nodes.sampler import ICEditEarlyFilterSampler

CONFIG = smoke_models.TINY_FLUX_FILL
CACHES = {"EasyCache": EasyCacheNode, "LazyCache": LazyCacheNode}
STEPS = 8


@pytest.fixture(scope="module")
def setup(fill_inputs, tiny_flux_fill):
    shapes = smoke_adapters.lora_target_shapes(CONFIG["hidden_size"], CONFIG["depth"], CONFIG["depth_single_blocks"],
                                               in_channels=CONFIG["in_channels"])
    adapter = parse_state_dict(smoke_adapters.random_moe_lora_state_dict(shapes, rank=8, seed=3, scale=0.05,
                                                                         router_scale=8.0))
    moe_model, _ = apply_adapter(tiny_flux_fill, adapter, strength=1.0, top_k=1)
    return {"base": tiny_flux_fill, "moe": moe_model, **fill_inputs}


def sample(setup, model, seed=4):
    samples = setup["latent"]["samples"]
    noise = comfy.sample.prepare_noise(samples, seed)
    return comfy.sample.sample(model, noise, STEPS, 1.0, "euler", "simple", setup["positive"], setup["negative"],
                               samples, denoise=1.0, disable_pbar=True, seed=seed)


def with_cache(model, name, skipping: bool):
    # reuse_threshold 0 never reaches "change below threshold": every step runs. 3.0 (the most) from step 0 skips.
    settings = (3.0, 0.0, 1.0) if skipping else (0.0, 0.0, 1.0)
    return CACHES[name].execute(model, *settings, False).result[0]


def moe_layers(model):
    (hooks,) = model.get_wrappers(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, WRAPPER_KEY)
    return hooks.layers


@pytest.mark.parametrize("cache", list(CACHES))
def test_a_cache_that_skips_nothing_leaves_the_moe_edit_unchanged(setup, cache):
    uncached = sample(setup, setup["moe"])
    assert torch.equal(sample(setup, with_cache(setup["moe"], cache, skipping=False)), uncached)
    assert not torch.equal(uncached, sample(setup, setup["base"]))  # the MoE adapter is at work


@pytest.mark.parametrize("cache", list(CACHES))
def test_skipped_steps_skip_the_experts_and_nothing_stays_patched(setup, cache, caplog):
    base_before = sample(setup, setup["base"])
    uncached = sample(setup, setup["moe"])
    cached_model = with_cache(setup["moe"], cache, skipping=True)
    diffusion_model = cached_model.model.diffusion_model
    executed, routed = [], []
    hook = diffusion_model.img_in.register_forward_hook(lambda *args: executed.append(1))  # runs when a step runs
    layers = moe_layers(cached_model)
    for layer in layers.values():
        layer.delta = (lambda original: lambda x: routed.append(1) or original(x))(layer.delta)
    try:
        with caplog.at_level(logging.INFO):
            cached = sample(setup, cached_model)
    finally:
        hook.remove()
        for layer in layers.values():
            del layer.delta  # the instance attribute set above; the class method is back
    reported = re.search(rf"{cache} - skipped (\d+)/(\d+) steps", caplog.text)
    assert reported, caplog.text
    skipped, total = int(reported.group(1)), int(reported.group(2))
    assert total == STEPS and 0 < skipped < STEPS
    assert len(executed) == STEPS - skipped  # the skipped steps did not run the model ...
    assert len(routed) == (STEPS - skipped) * len(layers)  # ... nor the experts; every run step routed every layer
    assert not torch.equal(cached, uncached)  # skipping changes the result (that is its trade)
    # The hooks are gone after the run, the base model is untouched, and the MoE model alone is as before.
    assert all("forward" not in module.__dict__ for module in diffusion_model.modules())
    assert not setup["base"].get_wrappers(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, WRAPPER_KEY)
    # (ComfyUI leaves a clone's weight patches on the shared module until another patcher loads: the base
    # model is judged by what it computes when it is loaded again.)
    assert setup["base"].patches == {} and torch.equal(sample(setup, setup["base"]), base_before)
    assert torch.equal(sample(setup, setup["moe"]), uncached)


def test_the_moe_loader_then_a_turbo_lora_applies_both(setup, caplog):
    turbo = smoke_adapters.random_lora_state_dict(smoke_adapters.turbo_layout_shapes(
        CONFIG["hidden_size"], CONFIG["depth"], CONFIG["depth_single_blocks"]), rank=4, seed=11, scale=0.05)
    with caplog.at_level(logging.WARNING):
        both, _ = comfy.sd.load_lora_for_models(setup["moe"], None, turbo, 1.0, 0)  # what LoraLoaderModelOnly does
    assert "lora key not loaded" not in caplog.text.lower()
    shared = "diffusion_model.double_blocks.0.img_attn.qkv.weight"  # ICEdit's plain LoRA and Turbo both patch it
    assert len(both.patches[shared]) == 2 * len(setup["moe"].patches[shared])
    assert "diffusion_model.double_blocks.0.txt_attn.qkv.weight" in both.patches  # Turbo's own (text stream)
    assert "diffusion_model.double_blocks.0.txt_attn.qkv.weight" not in setup["moe"].patches
    assert moe_layers(both)  # the experts still route
    moe_only, with_turbo = sample(setup, setup["moe"]), sample(setup, both)
    assert not torch.equal(moe_only, with_turbo)
    turbo_only, _ = comfy.sd.load_lora_for_models(setup["base"], None, turbo, 1.0, 0)
    assert not torch.equal(with_turbo, sample(setup, turbo_only))


@pytest.mark.parametrize("cache", list(CACHES))
def test_the_early_filter_refuses_a_model_with_a_step_cache(setup, cache):
    with pytest.raises(ValueError, match="EasyCache or LazyCache"):
        ICEditEarlyFilterSampler.execute(
            model=with_cache(setup["moe"], cache, skipping=False), positive=setup["positive"],
            negative=setup["negative"], latent=setup["latent"], vae=setup["vae"], judge=HeuristicJudge(),
            layout=setup["layout"], instruction=setup["instruction"], seed=1, candidates=2, early_steps=1, steps=3,
            cfg=1.0, sampler_name="euler", scheduler="simple", mode="resume", judge_mode="pairwise", batch_size=0)
