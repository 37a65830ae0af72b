"""Integrated Gradients over every output dimension (paper Eq. 4; the book's Eqs. eq-ig, eq-ig-norm, eq-sketch).

The engine computes the Frobenius norm over every input-embedding element and every output dimension of the
IG attributions:

    c_t = || IG[t, :, :] ||_F,  IG[t,i,j] = (x - x')[t,i] * int_0^1 d f_j(X' + a (X - X')) / d x[t,i] da.

No library computes this for all D outputs at once (captum attributes one target at a time; see its issue
1102), so the engine is written here: all interpolation points go through one forward pass and all D output
cotangents are pushed back in chunks with ``torch.autograd.grad(..., is_grads_batched=True)``. captum
provides the quadrature (:func:`captum.attr._utils.approximation_methods.approximation_parameters`) and, in
:func:`ig_captum_token_norms`, the reference the tests compare against.

The sketched mode (``projections=k``) uses linearity of IG in the output:
E ||IG[t](v^T f)||^2 = ||IG[t]||_F^2 for E[v v^T] = I, at k/D of the backward cost.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..precision import DEFAULT as DEFAULT_PRECISION
from ..config import check_count, tqdm
from ..encoders import Encoder
from ..precision import autocast, check_precision
from .method import Method
from .tokens import baseline_embeddings, check_baseline, math_attention, tokenize

__all__ = ["QUADRATURES", "SKETCHES", "projection_matrix", "ig_token_norms", "ig_token_outputs",
           "ig_captum_token_norms", "IG", "completeness_by_steps"]

QUADRATURES = ("gausslegendre", "riemann_trapezoid", "riemann_middle", "riemann_left", "riemann_right")
SKETCHES = ("orthogonal", "gaussian")


def _quadrature(method: str, n_steps: int):
    from captum.attr._utils.approximation_methods import approximation_parameters

    if method not in QUADRATURES:
        raise ValueError(f"quadrature must be one of {QUADRATURES}, got {method!r}.")
    check_count("n_steps", n_steps, 2)
    step_sizes, alphas = approximation_parameters(method)
    return torch.tensor(alphas(n_steps)), torch.tensor(step_sizes(n_steps))


def projection_matrix(dim: int, k: int, kind: str = "orthogonal", seed: int = 0) -> torch.Tensor:
    """k x dim random projections with E[v v^T] = I (the book's Eq. eq-sketch).

    ``orthogonal``: rows of Haar-random orthogonal blocks scaled by sqrt(dim) (k = dim gives the
    exact norm); ``gaussian``: i.i.d. standard normal rows.
    """
    if kind not in SKETCHES:
        raise ValueError(f"sketch must be one of {SKETCHES}, got {kind!r}.")
    gen = torch.Generator().manual_seed(seed)
    if kind == "gaussian":
        return torch.randn(k, dim, generator=gen)
    blocks = []
    for _ in range(-(-k // dim)):
        q, r = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
        blocks.append((q * torch.sign(torch.diagonal(r))).T.float() * dim ** 0.5)
    return torch.cat(blocks)[:k]


# --------------------------------------------------------------------------- IG engine
def _ig_engine(encoder: Encoder, input_ids: torch.Tensor, n_steps: int, quadrature: str, baseline: str,
               keep: torch.Tensor | None, rows_for, chunk_size: int, precision: str = DEFAULT_PRECISION):
    """The shared IG engine: one forward pass over every interpolation point, then the cotangents ``rows_for(D)``
    (k x D) pushed back ``chunk_size`` at a time. Returns (f(X), f(X'), X - X', rows, an iterator of
    (cotangent chunk c x D, IG chunk c x T x H)): IG[c, t, i] is the attribution of v_c . f to x_{t,i}.

    ``precision``: the path's forward and backward passes in fp32 or bf16 (:mod:`helpers.precision`); f(X) and
    f(X') are always computed in fp32, so a completeness gap measured against them includes the rounding."""
    x = encoder.embed_tokens(input_ids)[0].detach()
    x0 = baseline_embeddings(encoder, input_ids, baseline, keep)[0].detach()
    alphas, weights = _quadrature(quadrature, n_steps)
    alphas, weights = alphas.to(x), weights.to(x)
    mask = torch.ones(len(alphas), x.shape[0], dtype=torch.long, device=x.device)
    with torch.no_grad():
        ends = encoder.pool(torch.stack([x, x0]), mask[:2])
    rows = rows_for(ends.shape[1]).to(x)
    path = (x0 + alphas[:, None, None] * (x - x0)).requires_grad_(True)
    with math_attention(), autocast(precision, x.device):  # batched backward (vmap) needs the composite kernel
        out = encoder.pool(path, mask)  # n_steps x D: one forward pass for every interpolation point

    def chunks():
        for start in range(0, rows.shape[0], chunk_size):
            v = rows[start:start + chunk_size]
            cot = (v[:, None, :] * weights[None, :, None]).to(out.dtype)  # quadrature weights in the cotangent
            (grads,) = torch.autograd.grad(out, path, grad_outputs=cot, is_grads_batched=True, retain_graph=True)
            yield v, grads.float().sum(1) * (x - x0)  # c x T x H, in fp32 from here on

    return ends[0], ends[1], rows, chunks()


def ig_token_norms(encoder: Encoder, input_ids: torch.Tensor, n_steps: int = 50, quadrature: str = "gausslegendre",
                   baseline: str = "pad", projections: int | None = None, sketch: str = "orthogonal",
                   chunk_size: int = 4, seed: int = 0, keep: torch.Tensor | None = None,
                   precision: str = DEFAULT_PRECISION) -> dict:
    """Per-token ||IG[t,:,:]||_F over all D outputs (paper Eq. 4), and the completeness gap.

    Exact (``projections=None``): all D cotangents, ``chunk_size`` at a time (memory grows
    with chunk_size x n_steps x tokens x hidden). Sketched: ``projections`` rows of
    :func:`projection_matrix`. The completeness gap is
    max_j |sum_{t,i} IG[t,i,j] - (f_j(X) - f_j(X'))| / (||v_j|| ||f(X) - f(X')||) over the
    cotangents used (the unit vectors e_j when exact; the book's Eq. eq-sketch). ``keep``: positions
    that keep their embedding in the baseline (see :func:`baseline_embeddings`). ``precision``: ``fp32`` or
    ``bf16`` for the path's passes (the gap is measured against fp32 outputs either way).
    """
    def rows_for(dim):
        return torch.eye(dim) if projections is None else projection_matrix(dim, int(projections), sketch, seed)

    f_x, f_ref, rows, chunks = _ig_engine(encoder, input_ids, n_steps, quadrature, baseline, keep, rows_for,
                                          chunk_size, precision)
    delta_f = f_x - f_ref
    sq = torch.zeros(input_ids.shape[1], dtype=torch.float64, device=f_x.device)
    gap = 0.0
    for v, ig in chunks:
        sq += (ig.double() ** 2).sum(-1).sum(0)
        residual = (ig.sum((1, 2)) - v @ delta_f).abs() / (v.norm(dim=1) * delta_f.norm()).clamp(min=1e-12)
        gap = max(gap, residual.max().item())
    if projections is not None:
        sq /= rows.shape[0]
    return {"token_norms": sq.sqrt().cpu().numpy(), "completeness_gap": gap,
            "delta_norm": delta_f.norm().item()}


def ig_token_outputs(encoder: Encoder, input_ids: torch.Tensor, n_steps: int = 50, quadrature: str = "gausslegendre",
                     baseline: str = "pad", projections: int | None = None, sketch: str = "orthogonal",
                     chunk_size: int = 4, seed: int = 0, keep: torch.Tensor | None = None,
                     precision: str = DEFAULT_PRECISION) -> dict:
    """Per-token IG contributions to every output, summed over input dimensions: ``J[t, j] = sum_i IG[t, i, j]``
    (the IG tensor before the norm; T x D), with f(X) and f(X'). Completeness: sum_t J[t] = f(X) - f(X').

    Exact (``projections=None``): ``J[t]`` is a Jacobian-vector product, the derivative of f along token t's
    own displacement x_t - x'_t, integrated over the path; forward-mode AD gives all D outputs for T tangents,
    ``chunk_size`` tokens at a time (T passes instead of the D backward passes of the norms' engine; written
    here because captum attributes one output at a time). Sketched (``projections`` = k): ``J`` is T x k, the
    contributions to k random directions ``rows`` (k x D, E[v v^T] = I), so that ``J_a J_b^T / k`` estimates
    the inner products of exact rows. Used by :func:`helpers.attribution.pairs.pair_weights`.
    """
    if projections is not None:
        def rows_for(dim):
            return projection_matrix(dim, int(projections), sketch, seed)

        f_x, f_ref, rows, chunks = _ig_engine(encoder, input_ids, n_steps, quadrature, baseline, keep, rows_for,
                                              chunk_size, precision)
        J = torch.cat([ig.sum(-1).T for _, ig in chunks], dim=1)  # T x k
        return {"J": J.double().cpu().numpy(), "rows": rows.double().cpu().numpy(),
                "f_x": f_x.double().cpu().numpy(), "f_ref": f_ref.double().cpu().numpy()}
    x = encoder.embed_tokens(input_ids)[0].detach()
    x0 = baseline_embeddings(encoder, input_ids, baseline, keep)[0].detach()
    alphas, weights = _quadrature(quadrature, n_steps)
    alphas, weights = alphas.to(x), weights.to(x)
    T, H = x.shape
    with torch.no_grad():
        ends = encoder.pool(torch.stack([x, x0]), torch.ones(2, T, dtype=torch.long, device=x.device))
    path = x0 + alphas[:, None, None] * (x - x0)  # S x T x H
    rows = []
    for start in range(0, T, chunk_size):
        tokens = torch.arange(start, min(T, start + chunk_size), device=x.device)
        c = len(tokens)
        tangent = torch.zeros(c, len(alphas), T, H, dtype=x.dtype, device=x.device)
        tangent[torch.arange(c), :, tokens] = (x - x0)[tokens][:, None, :]  # token t moves, the others stay
        batch = path[None].expand(c, -1, -1, -1).reshape(-1, T, H)
        mask = torch.ones(batch.shape[0], T, dtype=torch.long, device=x.device)
        with math_attention(), autocast(precision, x.device):  # forward-mode AD: the fused SDPA kernels lack it
            _, jv = torch.func.jvp(lambda e: encoder.pool(e, mask), (batch,), (tangent.reshape(-1, T, H),))
        rows.append((jv.float().reshape(c, len(alphas), -1) * weights[None, :, None]).sum(1))
    J = torch.cat(rows)
    return {"J": J.double().cpu().numpy(), "rows": np.eye(J.shape[1]), "f_x": ends[0].double().cpu().numpy(),
            "f_ref": ends[1].double().cpu().numpy()}


def ig_captum_token_norms(encoder: Encoder, input_ids: torch.Tensor, n_steps: int = 50,
                          quadrature: str = "gausslegendre", baseline: str = "pad", targets=None) -> np.ndarray:
    """The slow reference: captum's IntegratedGradients looped over output dimensions (targets).

    Returns per-token sqrt(sum over targets and hidden units of IG^2): equal to
    :func:`ig_token_norms` when ``targets`` is every dimension.
    """
    from captum.attr import IntegratedGradients

    x = encoder.embed_tokens(input_ids).detach()
    x0 = baseline_embeddings(encoder, input_ids, baseline).detach()

    def forward(embeds):
        return encoder.pool(embeds, torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device))

    ig = IntegratedGradients(forward)
    sq = torch.zeros(x.shape[1], dtype=torch.float64)
    for j in targets if targets is not None else range(encoder.dim):
        attr = ig.attribute(x, baselines=x0, target=int(j), n_steps=n_steps, method=quadrature,
                            internal_batch_size=n_steps)
        sq += (attr[0].double() ** 2).sum(-1).cpu()
    return sq.sqrt().numpy()


@dataclass
class IG(Method):
    """Integrated Gradients over every output dimension (the book's Eqs. eq-ig, eq-ig-norm; eq-sketch when
    ``projections`` is set)."""

    name = "ig"
    n_steps: int = 50
    quadrature: str = "gausslegendre"
    baseline: str = "pad"
    projections: int | None = None
    sketch: str = "orthogonal"
    chunk_size: int = 4
    #: the arithmetic of the path's passes, ``fp32`` or ``bf16`` (:mod:`helpers.precision`)
    precision: str = DEFAULT_PRECISION
    #: the sketch's random directions (each sentence draws its own from this seed and its text); unused when exact
    seed: int = 0

    def validate(self) -> None:
        check_precision(self.precision)
        check_count("chunk_size", self.chunk_size, 1)
        check_count("seed", self.seed, 0)
        check_count("projections", self.projections, 1, allow_none=True)
        if self.sketch not in SKETCHES:
            raise ValueError(f"sketch must be one of {SKETCHES}, got {self.sketch!r}.")
        _quadrature(self.quadrature, self.n_steps)
        check_baseline(self.baseline)

    def settings(self) -> dict:
        out = {"method": "ig", "n_steps": self.n_steps, "quadrature": self.quadrature, "baseline": self.baseline,
               "projections": self.projections, "sketch": self.sketch if self.projections else None,
               "seed": self.seed if self.projections else None}
        return out if self.precision == "fp32" else {**out, "precision": self.precision}  # fp32 keys as before

    def token_norms(self, encoder, text, inputs):
        sentence_seed = self.seed * 1_000_003 + int(hashlib.sha1(text.encode()).hexdigest()[:7], 16)
        keep = torch.tensor([[w is None for w in inputs["word_ids"]]])
        return ig_token_norms(encoder, inputs["input_ids"], self.n_steps, self.quadrature, self.baseline,
                              self.projections, self.sketch, self.chunk_size, sentence_seed, keep, self.precision)


def completeness_by_steps(encoder: Encoder, texts, n_steps_grid, quadratures=("gausslegendre", "riemann_trapezoid"),
                          baseline: str = "pad", projections: int | None = 32, progress: bool = True,
                          cache: bool = True) -> pd.DataFrame:
    """Worst completeness gap over ``texts`` for every (quadrature, n_steps): choose the cheapest n_steps under 1%.

    With ``projections`` the gap is checked on that many random output directions (IG is
    linear in the output, so each direction obeys completeness on its own). ``cache``: the table is kept in
    ``.cache/completeness/`` under the model's fingerprint, the texts and every setting
    (:func:`helpers.config.cached_table`), so a rebuild does not run the grid again.
    """
    from ..config import cached_table

    texts = [str(t) for t in texts]
    grid = [(q, int(n)) for q in quadratures for n in n_steps_grid]
    for quadrature, n in grid:
        _quadrature(quadrature, n)  # a bad rule or count is refused before any work
    settings = {"fingerprint": encoder.fingerprint() if cache else None, "texts": texts, "grid": grid,
                "baseline": baseline, "projections": projections, "precision": DEFAULT_PRECISION}

    def compute():
        rows = []
        for quadrature, n in tqdm(grid, desc="completeness", disable=not progress):
            gaps = [ig_token_norms(encoder, tokenize(encoder, t)["input_ids"], n, quadrature, baseline,
                                   projections)["completeness_gap"] for t in texts]
            rows.append({"quadrature": quadrature, "n_steps": n, "max_gap": max(gaps),
                         "mean_gap": float(np.mean(gaps))})
        return pd.DataFrame(rows)

    return cached_table("completeness", settings, compute, cache, code=(completeness_by_steps, ig_token_norms, _ig_engine, _quadrature))
