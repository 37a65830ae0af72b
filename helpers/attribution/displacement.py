"""The displacement from the IG baseline, ||x_t - x'_t||: the factor (x - x') of Eq. eq-ig, as a method."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .method import Method
from .tokens import baseline_embeddings, check_baseline

__all__ = ["Displacement"]


@dataclass
class Displacement(Method):
    """Each token's distance from the IG baseline, ||x_t - x'_t||: the factor (x - x') of Eq. eq-ig, with no
    gradient. An IG weight is this displacement times an average gradient, so when the displacement alone
    follows KL (or its opposite), so does IG: the book uses it to show why the choice of baseline moves the
    regression (paper limitation 1)."""

    name = "displacement"
    baseline: str = "pad"

    def validate(self) -> None:
        check_baseline(self.baseline)

    def settings(self) -> dict:
        return {"method": "displacement", "baseline": self.baseline}

    def token_norms(self, encoder, text, inputs):
        keep = torch.tensor([[w is None for w in inputs["word_ids"]]])
        with torch.no_grad():
            x = encoder.embed_tokens(inputs["input_ids"])
            x0 = baseline_embeddings(encoder, inputs["input_ids"], self.baseline, keep)
            distance = (x - x0)[0].norm(dim=-1)
        return {"token_norms": distance.tolist(), "completeness_gap": 0.0}
