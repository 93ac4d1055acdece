"""Applying an ICEdit adapter to ComfyUI's Flux: the only place that knows Flux's module names.

- Plain LoRA modules go through ComfyUI's own LoRA key map and weight patching (merged weights: no cost per
  step; they compose with any other LoRA).
- MoE modules need the input of every token and cannot be merged. A DIFFUSION_MODEL wrapper on the patched
  clone sets an instance `forward` on each target Linear for the duration of one model call and removes it in
  `finally` (also when sampling is interrupted). The Linear objects and their state-dict keys stay as they are,
  so other LoRAs still find their keys and ComfyUI's low-VRAM weight casting still runs inside the original
  forward.
"""
from __future__ import annotations

import logging
import re

import comfy.lora
import comfy.model_base
import comfy.patcher_extension

from ..icedit_core.adapter_file import Adapter, AdapterFileError, to_diffusers_lora_state_dict
from ..icedit_core.moe import TokenRoutedLoRA

WRAPPER_KEY = "icedit_moe_lora"
FILL_IMG_IN_FEATURES = 384  # FLUX.1 Fill: 96 latent channels x 2x2 patches

# MoE targets: diffusers module name -> ComfyUI Flux module path.
_MOE_TARGETS = (
    (re.compile(r"^transformer_blocks\.(\d+)\.ff\.net\.2$"), "double_blocks.{}.img_mlp.2"),  # image stream only
    (re.compile(r"^single_transformer_blocks\.(\d+)\.proj_out$"), "single_blocks.{}.linear2"),  # text + image
)


def flux_moe_module_path(diffusers_module: str) -> str:
    for pattern, template in _MOE_TARGETS:
        match = pattern.match(diffusers_module)
        if match:
            return template.format(match.group(1))
    raise AdapterFileError(f"MoE module {diffusers_module} is not one ICEdit routes (transformer_blocks.N.ff.net.2 "
                           "or single_transformer_blocks.N.proj_out)")


def check_flux_model(model) -> list[str]:
    """Raise for a model that is not Flux; return warnings (e.g. not a Fill model)."""
    if not isinstance(model.model, comfy.model_base.Flux):
        raise ValueError(f"the ICEdit adapter needs a FLUX.1 (Fill) model; this MODEL is "
                         f"{type(model.model).__name__}")
    in_features = model.model.diffusion_model.img_in.weight.shape[1]
    if in_features != FILL_IMG_IN_FEATURES:
        return [f"this Flux model takes {in_features // 4} latent channels, not FLUX.1 Fill's "
                f"{FILL_IMG_IN_FEATURES // 4}: ICEdit was trained on FLUX.1 Fill and will not edit as intended"]
    return []


def _plain_patches(model, adapter: Adapter) -> dict:
    """ComfyUI LoRA patches for the plain modules, every module accounted for and shape-checked."""
    if not adapter.plain:
        return {}
    key_map = comfy.lora.model_lora_keys_unet(model.model, {})
    weights = model.model.state_dict()
    for module, lora in adapter.plain.items():
        target = key_map.get(f"transformer.{module}")
        if target is None:
            raise AdapterFileError(f"{adapter.source}: module {module} has no counterpart in this Flux model "
                                   f"(is the adapter for another base model, or deeper than this one?)")
        weight_key, offset = (target, None) if isinstance(target, str) else target
        weight = weights[weight_key]
        out_features = offset[2] if offset else weight.shape[0]
        if (lora.out_features, lora.in_features) != (out_features, weight.shape[1]):
            raise AdapterFileError(
                f"{adapter.source}: {module} maps [{lora.in_features} -> {lora.out_features}] "
                f"(lora_A {lora.rank}x{lora.in_features}, lora_B {lora.out_features}x{lora.rank}) but this model's "
                f"{weight_key}{f' slice {offset}' if offset else ''} is [{weight.shape[1]} -> {out_features}]: "
                "the adapter is for another base model")
    patches = comfy.lora.load_lora(to_diffusers_lora_state_dict(adapter.plain), key_map, log_missing=False)
    if len(patches) != len(adapter.plain):
        raise AdapterFileError(f"{adapter.source}: only {len(patches)} of {len(adapter.plain)} plain modules "
                               "mapped onto the model")
    return patches


def _moe_layers(model, adapter: Adapter, top_k: int, strength: float) -> dict[str, TokenRoutedLoRA]:
    diffusion_model = model.model.diffusion_model
    layers = {}
    for module, moe in adapter.moe.items():
        path = flux_moe_module_path(module)
        try:
            linear = diffusion_model.get_submodule(path)
        except AttributeError:
            raise AdapterFileError(f"{adapter.source}: {module} routes into {path}, which this Flux model does not "
                                   "have (the adapter is for a deeper model)") from None
        out_features, in_features = linear.weight.shape
        if (moe.in_features, moe.out_features) != (in_features, out_features):
            raise AdapterFileError(
                f"{adapter.source}: {module} experts map [{moe.in_features} -> {moe.out_features}] (A "
                f"{moe.num_experts}x{moe.rank}x{moe.in_features}, B {moe.num_experts}x{moe.out_features}x{moe.rank}, "
                f"router {moe.num_experts}x{moe.in_features}) but this model's {path} is "
                f"[{in_features} -> {out_features}]: the adapter is for another base model")
        layers[path] = TokenRoutedLoRA(moe.router, moe.downs, moe.ups, top_k=top_k, scale=moe.scale,
                                       strength=strength)
    return layers


class MoEHooks:
    """The DIFFUSION_MODEL wrapper that routes tokens through the experts during one model call."""

    def __init__(self, layers: dict[str, TokenRoutedLoRA]):
        self.layers = layers

    def __call__(self, executor, *args, **kwargs):
        diffusion_model = executor.class_obj
        installed = []
        try:
            for path, layer in self.layers.items():
                linear = diffusion_model.get_submodule(path)
                previous = linear.__dict__.get("forward")  # another pack's instance hook, kept underneath ours
                linear.forward = _routed_forward(linear, layer, previous)
                installed.append((linear, previous))
            return executor(*args, **kwargs)
        finally:
            for linear, previous in reversed(installed):
                if previous is None:
                    del linear.forward
                else:
                    linear.forward = previous

    def release(self, *args) -> None:
        for layer in self.layers.values():
            layer.release()


def _routed_forward(linear, layer: TokenRoutedLoRA, previous):
    base = previous if previous is not None else type(linear).forward.__get__(linear)

    def forward(x, *args, **kwargs):
        out = base(x, *args, **kwargs)
        return out + layer.delta(x).to(out.dtype)

    return forward


def apply_adapter(model, adapter: Adapter, strength: float, top_k: int):
    """A clone of `model` with the adapter applied; `model` itself is never changed. Returns (clone, report)."""
    notes = check_flux_model(model)
    patches = _plain_patches(model, adapter)
    layers = _moe_layers(model, adapter, top_k, strength) if adapter.moe else {}
    # Everything is validated; only now is anything attached (to the clone).
    patched = model.clone()
    if patches:
        added = patched.add_patches(patches, strength)
        if len(added) != len(patches):
            raise AdapterFileError(f"{adapter.source}: ComfyUI accepted {len(added)} of {len(patches)} patches")
    if layers:
        hooks = MoEHooks(layers)
        patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, WRAPPER_KEY, hooks)
        # Free the experts' device copies when ComfyUI unloads this model.
        patched.add_callback_with_key(comfy.patcher_extension.CallbacksMP.ON_DETACH, WRAPPER_KEY, hooks.release)
    report = [adapter.describe()]
    if layers:
        report.append(f"plain modules merged through ComfyUI's LoRA patching; {len(layers)} MoE layers routed "
                      f"per token (top-{top_k}), strength {strength}")
    else:
        report.append(f"a normal LoRA: applied as plain LoRA only (as LoraLoaderModelOnly would), strength {strength}")
    for note in notes:
        logging.warning("ICEdit MoE-LoRA loader: %s", note)
        report.append("warning: " + note)
    return patched, "\n".join(report)
