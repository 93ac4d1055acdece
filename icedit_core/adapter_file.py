"""ICEdit adapter checkpoints: key names and shapes.

The released adapters (HF RiverZ/normal-lora, sanaka87/ICEdit-MoE-LoRA) are diffusers/PEFT LoRA files:
`transformer.<module>.lora_A.weight` [rank, in] and `.lora_B.weight` [out, rank] on the FLUX.1 transformer's
unfused diffusers modules, no alpha tensors (scale 1.0). This is the only module that knows those names.
"""
from __future__ import annotations

import torch

KEY_PREFIX = "transformer."

# Target modules of the ICEdit adapters, per block, in diffusers naming.
DOUBLE_BLOCK_TARGETS = ("norm1.linear", "attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0", "ff.net.2")
SINGLE_BLOCK_TARGETS = ("norm.linear", "proj_mlp", "attn.to_q", "attn.to_k", "attn.to_v", "proj_out")


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
    generator = torch.Generator().manual_seed(seed)
    state_dict = {}
    for module, (fan_in, fan_out) in shapes.items():
        down = torch.randn((rank, fan_in), generator=generator) / fan_in ** 0.5
        up = torch.randn((fan_out, rank), generator=generator) * scale
        state_dict[f"{KEY_PREFIX}{module}.lora_A.weight"] = down.to(dtype)
        state_dict[f"{KEY_PREFIX}{module}.lora_B.weight"] = up.to(dtype)
    return state_dict
