"""Random-weight ICEdit adapters (normal LoRA and MoE-LoRA) in the released key layout, sized to any Flux (Fill)
transformer: for the smoke-test models, the tests and the benchmarks. Never needed for real edits; the key names
come from icedit_core/adapter_file.py, the one module that knows them."""
from __future__ import annotations

import torch

from ..icedit_core.adapter_file import is_moe_target, lora_keys, router_key


def lora_target_shapes(hidden_size: int, double_blocks: int, single_blocks: int, in_channels: int = 96,
                       patch_size: int = 2, mlp_ratio: float = 4.0) -> dict[str, tuple[int, int]]:
    """{diffusers module name: (in_features, out_features)} for every ICEdit adapter target of a Flux (Fill)
    transformer of the given size. FLUX.1 Fill: hidden 3072, 19 double and 38 single blocks, 96 channels."""
    mlp = int(hidden_size * mlp_ratio)
    shapes = {"x_embedder": (in_channels * patch_size * patch_size, hidden_size)}
    for n in range(double_blocks):
        block = f"transformer_blocks.{n}."
        shapes[block + "norm1.linear"] = (hidden_size, 6 * hidden_size)
        for name in ("attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0"):
            shapes[block + name] = (hidden_size, hidden_size)
        shapes[block + "ff.net.2"] = (mlp, hidden_size)
    for n in range(single_blocks):
        block = f"single_transformer_blocks.{n}."
        shapes[block + "norm.linear"] = (hidden_size, 3 * hidden_size)
        shapes[block + "proj_mlp"] = (hidden_size, mlp)
        for name in ("attn.to_q", "attn.to_k", "attn.to_v"):
            shapes[block + name] = (hidden_size, hidden_size)
        shapes[block + "proj_out"] = (hidden_size + mlp, hidden_size)
    return shapes


def random_lora_state_dict(shapes: dict[str, tuple[int, int]], rank: int = 32, seed: int = 0,
                           scale: float = 0.02, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """A normal (non-MoE) ICEdit LoRA in the released key layout with random weights, for tests and smoke
    runs. lora_B is non-zero (a freshly initialised PEFT LoRA has B = 0 and would change nothing)."""
    return random_moe_lora_state_dict(shapes, rank=rank, num_experts=0, seed=seed, scale=scale, dtype=dtype)


def random_moe_lora_state_dict(shapes: dict[str, tuple[int, int]], rank: int = 32, num_experts: int = 4,
                               seed: int = 0, scale: float = 0.02, router_scale: float = 1.0,
                               dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """An ICEdit adapter in the released key layout with random weights: MoE on the `ff.net` / `proj_out`
    modules when num_experts > 0 (the MoE-LoRA), plain LoRA elsewhere. A large router_scale spreads the router
    logits apart, so that top-k decisions do not hinge on float rounding."""
    generator = torch.Generator().manual_seed(seed)
    state_dict = {}
    for module, (fan_in, fan_out) in shapes.items():
        if num_experts and is_moe_target(module):
            for expert in range(num_experts):
                down_key, up_key = lora_keys(module, expert)
                state_dict[down_key] = (torch.randn((rank, fan_in), generator=generator) / fan_in ** 0.5).to(dtype)
                state_dict[up_key] = (torch.randn((fan_out, rank), generator=generator) * scale).to(dtype)
            state_dict[router_key(module)] = (
                torch.randn((num_experts, fan_in), generator=generator) * router_scale / fan_in ** 0.5).to(dtype)
        else:
            down_key, up_key = lora_keys(module)
            state_dict[down_key] = (torch.randn((rank, fan_in), generator=generator) / fan_in ** 0.5).to(dtype)
            state_dict[up_key] = (torch.randn((fan_out, rank), generator=generator) * scale).to(dtype)
    return state_dict


def turbo_layout_shapes(hidden_size: int, double_blocks: int, single_blocks: int,
                        mlp_ratio: float = 4.0) -> dict[str, tuple[int, int]]:
    """{diffusers module name: (in, out)} of a speed LoRA such as FLUX.1-Turbo-Alpha (diffusers layout): both
    streams of the double blocks (image and text: to_q/k/v, add_q/k/v_proj, outputs, feed-forwards,
    modulations) and the single blocks. Unlike ICEdit's adapters it touches the text stream, so a test with it
    shows a second LoRA landing on modules of its own and on modules ICEdit also patches."""
    mlp = int(hidden_size * mlp_ratio)
    shapes = {}
    for n in range(double_blocks):
        block = f"transformer_blocks.{n}."
        for name in ("attn.to_q", "attn.to_k", "attn.to_v", "attn.add_q_proj", "attn.add_k_proj",
                     "attn.add_v_proj", "attn.to_out.0", "attn.to_add_out"):
            shapes[block + name] = (hidden_size, hidden_size)
        for stream in ("ff", "ff_context"):
            shapes[block + f"{stream}.net.0.proj"] = (hidden_size, mlp)
            shapes[block + f"{stream}.net.2"] = (mlp, hidden_size)
        shapes[block + "norm1.linear"] = (hidden_size, 6 * hidden_size)
        shapes[block + "norm1_context.linear"] = (hidden_size, 6 * hidden_size)
    for n in range(single_blocks):
        block = f"single_transformer_blocks.{n}."
        for name in ("attn.to_q", "attn.to_k", "attn.to_v"):
            shapes[block + name] = (hidden_size, hidden_size)
        shapes[block + "proj_mlp"] = (hidden_size, mlp)
        shapes[block + "proj_out"] = (hidden_size + mlp, hidden_size)
        shapes[block + "norm.linear"] = (hidden_size, 3 * hidden_size)
    return shapes
