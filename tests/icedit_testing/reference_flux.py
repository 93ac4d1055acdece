"""A reference to check the pack against: diffusers' own FluxTransformer2DModel with the same random weights as
a ComfyUI Flux (converted with ComfyUI's own mapping), and a plain, loop-based LoRA / MoE-LoRA applied to its
unfused modules with forward hooks. Written independently of icedit_core.moe on purpose."""
from __future__ import annotations

import comfy.model_detection
import torch
from diffusers import FluxTransformer2DModel

from comfyui_icedit.devtools import smoke_models


def flux_pair(double_blocks=2, single_blocks=2, seed=11):
    """(diffusers model, ComfyUI ModelPatcher) of a tiny FLUX.1 Fill with identical weights, fp32."""
    config = dict(smoke_models.TINY_FLUX_FILL, depth=double_blocks, depth_single_blocks=single_blocks)
    heads = config["num_heads"]
    reference = FluxTransformer2DModel(
        patch_size=1, in_channels=config["in_channels"] * 4, out_channels=config["out_channels"] * 4,
        num_layers=double_blocks, num_single_layers=single_blocks, attention_head_dim=config["hidden_size"] // heads,
        num_attention_heads=heads, joint_attention_dim=config["context_in_dim"],
        pooled_projection_dim=config["vec_in_dim"], guidance_embeds=True, axes_dims_rope=tuple(config["axes_dim"]))
    smoke_models.randomize_(reference, seed)
    # ComfyUI's converter writes into the tensors it is given: hand it copies.
    converted = comfy.model_detection.convert_diffusers_mmdit(
        {k: v.detach().clone() for k, v in reference.state_dict().items()}, "")
    patcher = smoke_models.build_flux_fill(config, seed=0)
    patcher.model.diffusion_model.load_state_dict(converted, strict=True)
    return reference.eval(), patcher, config


def random_inputs(config, height=4, width=6, text_tokens=5, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return {
        "x": torch.randn(1, config["in_channels"], height, width, generator=generator),
        "context": torch.randn(1, text_tokens, config["context_in_dim"], generator=generator),
        "y": torch.randn(1, config["vec_in_dim"], generator=generator),
        "timestep": torch.tensor([0.6]),
        "guidance": torch.tensor([50.0]),
    }


@torch.no_grad()
def run_reference(reference, inputs) -> torch.Tensor:
    x = inputs["x"]
    batch, channels, height, width = x.shape
    packed = x.view(batch, channels, height // 2, 2, width // 2, 2).permute(0, 2, 4, 1, 3, 5)
    packed = packed.reshape(batch, (height // 2) * (width // 2), channels * 4)
    ids = torch.zeros(height // 2, width // 2, 3)
    ids[..., 1] = torch.arange(height // 2)[:, None]
    ids[..., 2] = torch.arange(width // 2)[None, :]
    out = reference(hidden_states=packed, encoder_hidden_states=inputs["context"], pooled_projections=inputs["y"],
                    timestep=inputs["timestep"], img_ids=ids.reshape(-1, 3),
                    txt_ids=torch.zeros(inputs["context"].shape[1], 3), guidance=inputs["guidance"],
                    return_dict=False)[0]
    out = out.view(batch, height // 2, width // 2, -1, 2, 2).permute(0, 3, 1, 4, 2, 5)
    return out.reshape(batch, -1, height, width)


@torch.no_grad()
def run_comfy(patcher, inputs) -> torch.Tensor:
    """The ComfyUI diffusion model's forward, with the patcher's weight patches and wrappers as sampling
    applies them (sampler_helpers merges the patcher's wrappers into transformer_options)."""
    import comfy.model_management

    comfy.model_management.load_models_gpu([patcher])
    return forward(patcher, inputs)


@torch.no_grad()
def forward(patcher, inputs) -> torch.Tensor:
    """The diffusion model's forward as the patcher is loaded now, with its wrappers."""
    options = {"wrappers": patcher.wrappers}
    return patcher.model.diffusion_model(inputs["x"], inputs["timestep"], inputs["context"], y=inputs["y"],
                                         guidance=inputs["guidance"], transformer_options=options).clone()


def _strip(key: str) -> str:
    return key[len("transformer."):] if key.startswith("transformer.") else key


def attach_reference_adapter(reference, state_dict, top_k=1, strength=1.0, margins=None):
    """Forward hooks on the diffusers modules: out + strength * LoRA(x), or the routed expert sum (a loop over
    experts, the top-k softmax done token by token). Returns the hook handles. `margins`, if a list, collects
    each routed token's gap between its k-th and (k+1)-th router logit."""
    modules = {}
    for key, tensor in state_dict.items():
        name = _strip(key)
        for marker in (".lora_A.", ".lora_B.", ".lora_route."):
            if marker in name:
                module, rest = name.split(marker)
                modules.setdefault(module, {})[marker.strip(".") + "." + rest] = tensor.float()
    handles = []
    for module, parts in modules.items():
        target = reference.get_submodule(module)
        if "lora_route.weight" in parts:
            hook = _moe_hook(parts, top_k, strength, margins)
        else:
            hook = _lora_hook(parts["lora_A.weight"], parts["lora_B.weight"], strength)
        handles.append(target.register_forward_hook(hook))
    return handles


def _lora_hook(down, up, strength):
    def hook(module, args, output):
        return output + strength * (args[0] @ down.t()) @ up.t()
    return hook


def _moe_hook(parts, top_k, strength, margins):
    router = parts["lora_route.weight"]
    experts = router.shape[0]
    downs = [parts[f"lora_A.expert_{e}.weight"] for e in range(experts)]
    ups = [parts[f"lora_B.expert_{e}.weight"] for e in range(experts)]

    def hook(module, args, output):
        x = args[0]
        flat = x.reshape(-1, x.shape[-1])
        logits = flat @ router.t()
        weights = torch.zeros_like(logits)
        for token in range(flat.shape[0]):
            ranked = torch.sort(logits[token], descending=True)
            chosen = ranked.indices[:top_k]
            weights[token, chosen] = torch.softmax(ranked.values[:top_k], dim=0)
            if margins is not None and top_k < experts:
                margins.append(float(ranked.values[top_k - 1] - ranked.values[top_k]))
        delta = torch.zeros(flat.shape[0], output.shape[-1])
        for expert in range(experts):
            delta += weights[:, expert:expert + 1] * ((flat @ downs[expert].t()) @ ups[expert].t())
        return output + strength * delta.view(output.shape)
    return hook
