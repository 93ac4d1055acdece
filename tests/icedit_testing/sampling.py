"""A NOISE for the chunked-sampler tests (tests/pack): given values, so one chunk can be run alone with its slice
of the whole clip's noise. No ComfyUI import."""
from __future__ import annotations


class FixedNoise:
    """A NOISE that gives the given values: a slice of the whole clip's noise, for one chunk's reference."""

    def __init__(self, seed: int, values):
        self.seed, self.values = seed, values

    def generate_noise(self, input_latent):
        assert input_latent["samples"].shape == self.values.shape
        return self.values
