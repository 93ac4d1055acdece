"""Token-routed LoRA mixture of experts, as in ICEdit's MoE-LoRA.

For each token x (the same input the target linear receives):
    logits = R x                                   (a bias-free router, one row per expert)
    w      = softmax over the top-k logits (fp32), scattered into zeros      -> exactly 1.0 for k = 1
    delta  = sum_e w_e * B_e (A_e x) * (alpha / rank) * strength
and the layer's output is base(x) + delta. Knows nothing of Flux or ComfyUI.

Computed as two matrix products, experts batched: the router rows and all experts' A matrices form one
[E_pad + E*r, in] matrix (E_pad = E rounded up to 8 for aligned GEMM tiles), and the gated low-rank activations
[N, E*r] meet all experts' B matrices stacked as one [E*r, out] matrix.
"""
from __future__ import annotations

import torch
from einops import rearrange


def route(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """Gate weights [..., E] from router logits: softmax over the top-k logits in fp32, zeros elsewhere."""
    logits = logits.float()
    top_values, top_indices = torch.topk(logits, top_k, dim=-1)
    gates = torch.zeros_like(logits)
    return gates.scatter(-1, top_indices, torch.softmax(top_values, dim=-1))


class TokenRoutedLoRA:
    """One MoE-LoRA layer's weights, prepared for fast application; keeps a copy per (device, dtype)."""

    def __init__(self, router: torch.Tensor, downs: torch.Tensor, ups: torch.Tensor, top_k: int = 1,
                 scale: float = 1.0, strength: float = 1.0):
        experts, rank, in_features = downs.shape
        if router.shape != (experts, in_features):
            raise ValueError(f"router is {tuple(router.shape)}, expected ({experts}, {in_features})")
        if ups.shape[0] != experts or ups.shape[2] != rank:
            raise ValueError(f"expert B matrices are {tuple(ups.shape)}, expected ({experts}, out, {rank})")
        if not 1 <= top_k <= experts:
            raise ValueError(f"top_k = {top_k} must be between 1 and the number of experts ({experts})")
        self.num_experts, self.rank, self.top_k = experts, rank, top_k
        self.in_features, self.out_features = in_features, ups.shape[1]
        self.router_rows = -(-experts // 8) * 8
        padded_router = torch.zeros((self.router_rows, in_features), dtype=router.dtype)
        padded_router[:experts] = router
        self._fused_down = torch.cat([padded_router, rearrange(downs, "e r i -> (e r) i")]).contiguous()
        # Row block e of the stacked up-projection is B_e^T: [E*r, out]; alpha/rank and strength folded in.
        self._stacked_up = (rearrange(ups, "e o r -> (e r) o") * (scale * strength)).contiguous()
        self._cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def weights_for(self, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        key = (str(device), dtype)
        if key not in self._cache:
            self._cache[key] = (self._fused_down.to(device=device, dtype=dtype),
                                self._stacked_up.to(device=device, dtype=dtype))
        return self._cache[key]

    def release(self) -> None:
        """Drop the device copies (the CPU originals stay)."""
        self._cache.clear()

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        """The MoE contribution for inputs x [..., in] -> [..., out], in x's dtype."""
        fused_down, stacked_up = self.weights_for(x.device, x.dtype)
        flat = x.reshape(-1, self.in_features)
        hidden = flat @ fused_down.t()                                   # [N, E_pad + E*r]
        gates = route(hidden[:, :self.num_experts], self.top_k).to(x.dtype)
        low_rank = hidden[:, self.router_rows:].view(-1, self.num_experts, self.rank)
        gated = (low_rank * gates.unsqueeze(-1)).view(-1, self.num_experts * self.rank)
        return (gated @ stacked_up).view(*x.shape[:-1], self.out_features)
