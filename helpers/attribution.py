"""Word weights from Integrated Gradients and SHAP (paper section 3.1, appendix D; the book's Eqs. eq-ig-norm, eq-sketch and eq-normalise).

The IG engine here computes the paper's Eq. 4, the Frobenius norm over every
input-embedding element and every output dimension of the IG attributions:

    c_t = || IG[t, :, :] ||_F,  IG[t,i,j] = (x - x')[t,i] * int_0^1 d f_j(X' + a (X - X')) / d x[t,i] da.

No library computes this for all D outputs at once (captum attributes one target at a
time; see its issue 1102), so the engine is written here: all interpolation points go
through one forward pass and all D output cotangents are pushed back in chunks with
``torch.autograd.grad(..., is_grads_batched=True)``. captum provides the quadrature
(:func:`captum.attr._utils.approximation_methods.approximation_parameters`) and, in
:func:`ig_captum_token_norms`, the reference the tests compare against.

The sketched mode (``projections=k``) uses linearity of IG in the output:
E ||IG[t](v^T f)||^2 = ||IG[t]||_F^2 for E[v v^T] = I, at k/D of the backward cost.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .config import cache_dir, check_count, tqdm
from .encoders import Encoder
from .units import sentence_table, split_words, units_key  # noqa: F401 (split_words: public re-export)

BASELINES = ("pad", "mask", "zero", "unk")
WORD_AGGS = ("frobenius", "rms", "sum", "first")
NORMALIZATIONS = ("mean1", "none", "times_length")
QUADRATURES = ("gausslegendre", "riemann_trapezoid", "riemann_middle", "riemann_left", "riemann_right")
SKETCHES = ("orthogonal", "gaussian")
#: Part of every cache key: results computed by an older engine (other word units, other baseline) are not reused.
ENGINE_VERSION = 2


# --------------------------------------------------------------------------- inputs
def tokenize(encoder: Encoder, text: str, truncate: bool = True) -> dict:
    """Token ids, the word each token belongs to, and the words (the book's word units).

    Words are :func:`helpers.units.word_units` with the encoder's tokenizer (spans of the
    original text in NFC, lower-cased for uncased tokenizers), so they share units with the
    information tables. Tokens that belong to no word -- the special tokens the tokenizer adds,
    special-token strings written in the text, and pieces that are only white space or invisible
    characters -- get word id None: they keep their embedding in the baseline and receive no weight.
    Too long: truncated with a warning (or an error with ``truncate=False``); a word that truncation
    cuts gets no weight (it is not the whole word). Empty: an error.
    """
    from .units import word_units

    if not isinstance(text, str):
        raise TypeError(f"a sentence must be a str, got {type(text).__name__}: {text!r}.")
    if not text.strip():
        raise ValueError(f"Cannot attribute an empty sentence: {text!r}.")
    tok = encoder.tokenizer
    full = tok(text, add_special_tokens=True)
    truncated = len(full["input_ids"]) > encoder.max_length
    if truncated and not truncate:
        raise ValueError(f"The sentence has {len(full['input_ids'])} tokens, more than the model's "
                         f"{encoder.max_length}: shorten it or pass truncate=True.")
    enc = tok(text, add_special_tokens=True, truncation=True, max_length=encoder.max_length,
              return_special_tokens_mask=True, return_offsets_mapping=True)
    units = word_units(text, tok)
    unit_of = {p: i for i, u in enumerate(units) for p in u["pieces"]}
    piece_ids = enc.word_ids()
    cut = None
    if truncated:
        kept = [w for w in piece_ids if w is not None]
        if kept and kept[-1] in full.word_ids()[len(piece_ids) - 1:]:
            cut = unit_of.get(kept[-1])  # the last kept piece goes on past the limit: its word is cut
        warnings.warn(f"Sentence of {len(full['input_ids'])} tokens truncated to the model's {encoder.max_length}; "
                      "the words beyond it get no weight"
                      + (f", nor the word {units[cut]['word']!r} that the limit cuts." if cut is not None else "."),
                      stacklevel=3)
    word_ids = []
    for position, (piece, special) in enumerate(zip(piece_ids, enc["special_tokens_mask"])):
        if piece is None or (special and piece not in unit_of):
            word_ids.append(None)
            continue
        if piece not in unit_of:
            raise RuntimeError(f"the tokenizer cut {text!r} into more pieces than the book's word units "
                               f"({len(unit_of)}); please report this text.")
        unit = unit_of[piece]
        start, end = enc["offset_mapping"][position]
        if end > start and not (units[unit]["start"] <= start and end <= units[unit]["end"]) and \
                not text[start:end].isspace():
            raise RuntimeError(f"word units drift from the tokenizer in {text!r}: token {position} "
                               f"({text[start:end]!r}) lies outside its word {units[unit]['word']!r}; please report.")
        word_ids.append(None if units[unit]["word"] is None or unit == cut else unit)
    n_words = max((w for w in word_ids if w is not None), default=-1) + 1
    if n_words == 0:
        raise ValueError(f"The sentence {text!r} has no word the tokenizer keeps.")
    words = [u["word"] for u in units]
    return {"input_ids": torch.tensor([enc["input_ids"]]), "word_ids": word_ids, "words": words[:n_words]}


def added_special_ids(tokenizer) -> set[int]:
    """The ids the tokenizer *adds* around a sentence ([CLS]/[SEP], <s>/</s>): not [UNK], which stands for text."""
    return set(tokenizer.build_inputs_with_special_tokens([]))


def baseline_embeddings(encoder: Encoder, input_ids: torch.Tensor, baseline: str = "pad",
                        keep: torch.Tensor | None = None) -> torch.Tensor:
    """X' for the paper's baseline "[CLS] [PAD] ... [PAD] [SEP]" (``pad``) or ``mask``, ``unk``, ``zero``.

    ``keep``: a boolean mask of the positions that keep their own embedding (and so receive no
    attribution); by default the special tokens the tokenizer adds (:func:`added_special_ids`).
    An [UNK] token stands for a word of the text and is replaced like any other word.
    """
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, got {baseline!r}.")
    tok = encoder.tokenizer
    if keep is None:
        added = added_special_ids(tok)
        keep = torch.tensor([[t in added for t in input_ids[0].tolist()]], dtype=torch.bool)
    special = torch.as_tensor(keep, dtype=torch.bool).reshape(input_ids.shape).to(input_ids.device)
    if baseline == "zero":
        x = encoder.embed_tokens(input_ids)
        return torch.where(special[..., None].to(x.device), x, torch.zeros_like(x))
    token_id = {"pad": tok.pad_token_id, "mask": tok.mask_token_id, "unk": tok.unk_token_id}[baseline]
    if token_id is None:
        raise ValueError(f"{encoder.name}'s tokenizer has no {baseline} token; choose another baseline "
                         f"({', '.join(b for b in BASELINES if b != baseline)}).")
    ids = torch.where(special, input_ids, torch.full_like(input_ids, token_id))
    return encoder.embed_tokens(ids)


def math_attention():
    """A context in which scaled-dot-product attention runs PyTorch's composite (math) kernel.

    A model loaded by the book uses eager attention; a ``SentenceTransformer`` the user passes in may use the
    fused SDPA kernels, which have no forward-mode derivative (and no batched backward on every device). The
    math kernel computes the same attention with every derivative the engines need.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.MATH])


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
               keep: torch.Tensor | None, rows_for, chunk_size: int):
    """The shared IG engine: one forward pass over every interpolation point, then the cotangents ``rows_for(D)``
    (k x D) pushed back ``chunk_size`` at a time. Returns (f(X), f(X'), X - X', rows, an iterator of
    (cotangent chunk c x D, IG chunk c x T x H)): IG[c, t, i] is the attribution of v_c . f to x_{t,i}."""
    x = encoder.embed_tokens(input_ids)[0].detach()
    x0 = baseline_embeddings(encoder, input_ids, baseline, keep)[0].detach()
    alphas, weights = _quadrature(quadrature, n_steps)
    alphas, weights = alphas.to(x), weights.to(x)
    mask = torch.ones(len(alphas), x.shape[0], dtype=torch.long, device=x.device)
    with torch.no_grad():
        ends = encoder.pool(torch.stack([x, x0]), mask[:2])
    rows = rows_for(ends.shape[1]).to(x)
    path = (x0 + alphas[:, None, None] * (x - x0)).requires_grad_(True)
    with math_attention():  # its backward is batched (vmap): the composite attention kernel supports that
        out = encoder.pool(path, mask)  # n_steps x D: one forward pass for every interpolation point

    def chunks():
        for start in range(0, rows.shape[0], chunk_size):
            v = rows[start:start + chunk_size]
            cot = v[:, None, :] * weights[None, :, None]  # quadrature weights folded into the cotangent
            (grads,) = torch.autograd.grad(out, path, grad_outputs=cot, is_grads_batched=True, retain_graph=True)
            yield v, grads.sum(1) * (x - x0)  # c x T x H

    return ends[0], ends[1], rows, chunks()


def ig_token_norms(encoder: Encoder, input_ids: torch.Tensor, n_steps: int = 50, quadrature: str = "gausslegendre",
                   baseline: str = "pad", projections: int | None = None, sketch: str = "orthogonal",
                   chunk_size: int = 4, seed: int = 0, keep: torch.Tensor | None = None) -> dict:
    """Per-token ||IG[t,:,:]||_F over all D outputs (paper Eq. 4), and the completeness gap.

    Exact (``projections=None``): all D cotangents, ``chunk_size`` at a time (memory grows
    with chunk_size x n_steps x tokens x hidden). Sketched: ``projections`` rows of
    :func:`projection_matrix`. The completeness gap is
    max_j |sum_{t,i} IG[t,i,j] - (f_j(X) - f_j(X'))| / (||v_j|| ||f(X) - f(X')||) over the
    cotangents used (the unit vectors e_j when exact; the book's Eq. eq-sketch). ``keep``: positions
    that keep their embedding in the baseline (see :func:`baseline_embeddings`).
    """
    def rows_for(dim):
        return torch.eye(dim) if projections is None else projection_matrix(dim, int(projections), sketch, seed)

    f_x, f_ref, rows, chunks = _ig_engine(encoder, input_ids, n_steps, quadrature, baseline, keep, rows_for,
                                          chunk_size)
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
                     chunk_size: int = 4, seed: int = 0, keep: torch.Tensor | None = None) -> dict:
    """Per-token IG contributions to every output, summed over input dimensions: ``J[t, j] = sum_i IG[t, i, j]``
    (the IG tensor before the norm; T x D), with f(X) and f(X'). Completeness: sum_t J[t] = f(X) - f(X').

    Exact (``projections=None``): ``J[t]`` is a Jacobian-vector product, the derivative of f along token t's
    own displacement x_t - x'_t, integrated over the path; forward-mode AD gives all D outputs for T tangents,
    ``chunk_size`` tokens at a time (T passes instead of the D backward passes of the norms' engine; written
    here because captum attributes one output at a time). Sketched (``projections`` = k): ``J`` is T x k, the
    contributions to k random directions ``rows`` (k x D, E[v v^T] = I), so that ``J_a J_b^T / k`` estimates
    the inner products of exact rows. Used by :func:`helpers.pairs.pair_weights`.
    """
    if projections is not None:
        def rows_for(dim):
            return projection_matrix(dim, int(projections), sketch, seed)

        f_x, f_ref, rows, chunks = _ig_engine(encoder, input_ids, n_steps, quadrature, baseline, keep, rows_for,
                                              chunk_size)
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
        with math_attention():  # forward-mode AD through attention: the fused SDPA kernels lack it
            _, jv = torch.func.jvp(lambda e: encoder.pool(e, mask), (batch,), (tangent.reshape(-1, T, H),))
        rows.append((jv.reshape(c, len(alphas), -1) * weights[None, :, None]).sum(1))
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


# --------------------------------------------------------------------------- words
def aggregate_words(token_norms, word_ids, words, word_agg: str = "frobenius", normalize: str = "mean1") -> pd.DataFrame:
    """Token weights -> word weights -> length-normalised weights (the book's word units and Eq. eq-normalise).

    word_agg: ``frobenius`` sqrt(sum c_t^2) (the paper's Eq. 4 over a word's subwords), ``rms``
    sqrt(mean c_t^2), ``sum``, ``first``. normalize: ``mean1`` n c_w / sum c (weights average 1
    in the sentence), ``none``, ``times_length`` c_w n. Special tokens (word id None) are dropped.
    """
    if word_agg not in WORD_AGGS:
        raise ValueError(f"word_agg must be one of {WORD_AGGS}, got {word_agg!r}.")
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}.")
    c = np.asarray(token_norms, dtype=float)
    if len(c) != len(word_ids):
        raise ValueError(f"{len(c)} token weights for {len(word_ids)} tokens: they must correspond one to one.")
    if not np.isfinite(c).all():
        bad = np.flatnonzero(~np.isfinite(c)).tolist()
        raise ValueError(f"non-finite token weights at tokens {bad} (values {c[bad].tolist()}): the model's output "
                         "overflowed or the cached row is damaged. Check the model (e.g. float32, not float16).")
    tokens = pd.DataFrame({"word_index": word_ids, "c": c})
    tokens = tokens[tokens["word_index"].notna()].astype({"word_index": int})
    grouped = tokens.groupby("word_index", sort=True)["c"]
    raw = {"frobenius": grouped.apply(lambda c: np.sqrt((c ** 2).sum())),
           "rms": grouped.apply(lambda c: np.sqrt((c ** 2).mean())),
           "sum": grouped.sum(), "first": grouped.first()}[word_agg]
    n = len(raw)
    weight = {"mean1": n * raw / raw.sum() if raw.sum() > 0 else raw * 0.0, "none": raw,
              "times_length": raw * n}[normalize]
    return pd.DataFrame({"word_index": raw.index.values, "word": [words[i] for i in raw.index],
                         "weight": weight.values, "raw_weight": raw.values,
                         "n_subwords": grouped.size().values})


# --------------------------------------------------------------------------- cache
class CacheError(RuntimeError):
    """The attribution cache file cannot be used: the message names it and what to do."""


class AttributionCache:
    """A resumable on-disk cache (SQLite): one row per (settings, sentence), committed as it is computed.

    Each row carries a checksum of its value; a row whose checksum, length or numbers do not
    check out (edited, truncated, NaN) is not served: :func:`word_weights` recomputes it with a
    warning. Errors say which of four things is wrong, and only the last advises deleting the file:

    * the path is a folder (or its parent is a file): name a file;
    * the database is locked by another process (``make lab`` and ``make book`` share ``.cache/``):
      each statement waits up to ``timeout`` seconds, then the error says so;
    * the file or its folder is read-only: the cache opens read-only, serves the rows it has and
      warns that new rows are not saved;
    * the file is not a SQLite database, or is corrupt: damaged.

    Written here rather than with diskcache: the rows' checksums and the row validators are the point.
    """

    #: seconds a statement waits for another process's write lock before the locked error
    TIMEOUT = 60.0

    def __init__(self, path: Path | str | None = None, timeout: float | None = None):
        self.path = Path(path) if path else cache_dir("attribution") / "weights.sqlite"
        self.timeout = self.TIMEOUT if timeout is None else float(timeout)
        self.read_only = False
        if self.path.is_dir():
            raise CacheError(f"The attribution cache path {self.path} is a folder, not a file: pass a file path "
                             f"such as {self.path / 'weights.sqlite'} (cache=...), or cache=False.")
        if self.path.parent.exists() and not self.path.parent.is_dir():
            raise CacheError(f"The attribution cache {self.path} cannot be made: {self.path.parent} is a file, "
                             "not a folder. Point cache= at a file in a folder.")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        writable = os.access(self.path.parent, os.W_OK) and (not self.path.exists() or os.access(self.path, os.W_OK))
        try:
            if writable:
                self.db = sqlite3.connect(self.path, timeout=self.timeout)
                self.db.execute("CREATE TABLE IF NOT EXISTS weights (key TEXT PRIMARY KEY, value TEXT)")
                columns = {row[1] for row in self.db.execute("PRAGMA table_info(weights)")}
                if "checksum" not in columns:
                    self.db.execute("ALTER TABLE weights ADD COLUMN checksum TEXT")
                self.db.commit()
            else:
                self._open_read_only()
        except sqlite3.OperationalError as exc:
            if "readonly" in str(exc) or "read-only" in str(exc):
                self._open_read_only()
            else:
                raise self._error(exc) from exc
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from exc

    def _open_read_only(self) -> None:
        if not self.path.exists():
            raise CacheError(f"The attribution cache {self.path} does not exist and its folder is read-only: point "
                             "cache= at a writable file, or pass cache=False.")
        try:
            self.db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=self.timeout)
            self.db.execute("SELECT key, value, checksum FROM weights LIMIT 1").fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from exc
        self.read_only = True
        warnings.warn(f"The attribution cache {self.path} is read-only: its rows are served, new ones are computed "
                      "but not saved. Make the file writable, or point cache= at another file, to keep them.",
                      stacklevel=3)

    def _error(self, exc) -> CacheError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return CacheError(f"The attribution cache {self.path} is locked by another process (another notebook, "
                              f"make book or make lab writing to the same .cache/) and stayed locked for "
                              f"{self.timeout:g} s. The file is healthy: wait and run again, pass a longer timeout "
                              "(AttributionCache(path, timeout=600)), or point cache= at another file.")
        if "readonly" in text or "read-only" in text:
            return CacheError(f"The attribution cache {self.path} is read-only ({text}): make it writable, or point "
                              "cache= at another file.")
        if "unable to open" in text:
            return CacheError(f"The attribution cache {self.path} cannot be opened ({text}): check the path and its "
                              "permissions, or point cache= at another file.")
        return CacheError(f"The attribution cache {self.path} is damaged ({text}). Delete the file (its weights will "
                          "be recomputed), point cache= at another file, or pass cache=False.")

    @staticmethod
    def key(settings: dict, sentence_id, text: str) -> str:
        blob = json.dumps([settings, str(sentence_id), text], sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()

    @staticmethod
    def checksum(value: str) -> str:
        return hashlib.sha1(value.encode()).hexdigest()

    @staticmethod
    def check_weights(value: dict) -> str | None:
        """What is wrong with a cached word-weight row (None: nothing)."""
        norms = np.asarray(value["token_norms"], dtype=float)
        if len(norms) != len(value["word_ids"]):
            return f"{len(norms)} token weights for {len(value['word_ids'])} tokens"
        if not np.isfinite(norms).all() or not np.isfinite(value["completeness_gap"]):
            return "it holds a non-finite number"
        return None

    def get(self, key: str, check=None):
        """The cached value, or None when absent or invalid (an invalid row warns: it will be recomputed).
        ``check(value)`` says what is wrong with a row (default :meth:`check_weights`)."""
        try:
            row = self.db.execute("SELECT value, checksum FROM weights WHERE key = ?", (key,)).fetchone()
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from exc
        if row is None:
            return None
        problem = None
        if row[1] != self.checksum(row[0]):
            problem = "its checksum does not match (the row was edited or damaged)"
        else:
            try:
                value = json.loads(row[0])
                problem = (check or self.check_weights)(value)
            except (ValueError, KeyError, TypeError) as exc:
                problem = f"it cannot be read ({exc})"
        if problem:
            warnings.warn(f"A row of the attribution cache {self.path} is invalid: {problem}; it is recomputed.",
                          stacklevel=3)
            return None
        return value

    def has(self, key: str) -> bool:
        """Whether a row is stored under ``key`` (valid or not)."""
        try:
            return self.db.execute("SELECT 1 FROM weights WHERE key = ?", (key,)).fetchone() is not None
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from exc

    def put(self, key: str, value: dict) -> None:
        if self.read_only:
            return
        text = json.dumps(value)
        try:
            self.db.execute("INSERT OR REPLACE INTO weights (key, value, checksum) VALUES (?, ?, ?)",
                            (key, text, self.checksum(text)))
            self.db.commit()
        except sqlite3.OperationalError as exc:
            if "readonly" not in str(exc):
                raise self._error(exc) from exc
            self.read_only = True  # made read-only while we ran: keep serving what is there
            warnings.warn(f"The attribution cache {self.path} became read-only ({exc}): new rows are not saved.",
                          stacklevel=3)
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from exc

    @classmethod
    def open(cls, cache):
        """``cache`` as word_weights takes it: True (the default file), a path, an AttributionCache, or False."""
        if not cache:
            return None
        if isinstance(cache, cls):
            return cache
        return cls(None if cache is True else cache)

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM weights").fetchone()[0]


# --------------------------------------------------------------------------- methods as settings objects
class Method:
    """An attribution method: its settings (the fields of a dataclass) and how it attributes one sentence's tokens.

    Subclasses are registered by their ``name`` when they are defined, so a new method is one new file
    (a subclass of this class, imported before use) and no edit elsewhere: :func:`word_weights`, the
    roster run (:func:`helpers.roster.roster_results`), the sweep (:mod:`helpers.sweep`) and the explorer
    look methods up here and pass each method only the options its fields name.

    A subclass defines ``name``, its settings as dataclass fields, and :meth:`token_norms`; it may set
    ``shortens_text`` (the method sees the text itself, not token ids, so a long text is shortened
    before it) and override :meth:`settings` (its part of the cache key) and :meth:`validate`.
    """

    name: str = ""
    shortens_text: bool = False
    registry: dict = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):
            Method.registry[cls.name] = cls

    @classmethod
    def option_names(cls) -> tuple:
        """The keyword options this method takes (its dataclass fields)."""
        import dataclasses

        return tuple(f.name for f in dataclasses.fields(cls)) if dataclasses.is_dataclass(cls) else ()

    @classmethod
    def from_options(cls, options: dict, strict: bool = False) -> "Method":
        """The method with the options it takes from ``options`` (the others are for other methods); with
        ``strict``, an option it does not take is an error naming it."""
        names = cls.option_names()
        if strict:
            unknown = sorted(set(options) - set(names))
            if unknown:
                raise TypeError(f"method {cls.name!r} takes the options {list(names)}; got {unknown}.")
        return cls(**{k: v for k, v in options.items() if k in names})

    def validate(self) -> None:
        """Raise an error naming the setting at fault (called before any sentence is attributed)."""

    def settings(self, seed: int) -> dict:
        """The method's part of the cache key: everything that changes its numbers."""
        import dataclasses

        return {"method": self.name, **dataclasses.asdict(self)}

    def token_norms(self, encoder: Encoder, text: str, inputs: dict, seed: int) -> dict:
        """``token_norms`` (one non-negative number per token of ``inputs``), ``completeness_gap`` and
        optionally ``unresolved_tokens``."""
        raise NotImplementedError


def methods() -> list[str]:
    """The names of every registered attribution method."""
    return sorted(Method.registry)


def make_method(method, options: dict | None = None, strict: bool = False) -> Method:
    """``method`` as a :class:`Method`: an instance as it is, or a registered name with the options it takes
    from ``options``."""
    if isinstance(method, Method):
        return method
    if method not in Method.registry:
        raise ValueError(f"method must be one of {methods()} (or a Method instance), got {method!r}.")
    return Method.registry[method].from_options(dict(options or {}), strict=strict)


def method_options(method: str, options: dict) -> dict:
    """The options of ``options`` that ``method`` takes (how the sweep, the roster run and the explorer hand
    one settings record to any method)."""
    names = make_method(method).option_names() if not isinstance(method, Method) else method.option_names()
    return {k: v for k, v in options.items() if k in names}


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

    def validate(self) -> None:
        check_count("chunk_size", self.chunk_size, 1)
        check_count("projections", self.projections, 1, allow_none=True)
        _quadrature(self.quadrature, self.n_steps)
        if self.baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {BASELINES}, got {self.baseline!r}.")

    def settings(self, seed: int) -> dict:
        return {"method": "ig", "n_steps": self.n_steps, "quadrature": self.quadrature, "baseline": self.baseline,
                "projections": self.projections, "sketch": self.sketch if self.projections else None,
                "seed": seed if self.projections else None}

    def token_norms(self, encoder, text, inputs, seed):
        sentence_seed = seed * 1_000_003 + int(hashlib.sha1(text.encode()).hexdigest()[:7], 16)
        keep = torch.tensor([[w is None for w in inputs["word_ids"]]])
        return ig_token_norms(encoder, inputs["input_ids"], self.n_steps, self.quadrature, self.baseline,
                              self.projections, self.sketch, self.chunk_size, sentence_seed, keep)


@dataclass
class SHAP(Method):
    """PartitionSHAP over every output dimension (the book's Eqs. eq-shapley, eq-efficiency)."""

    name = "shap"
    shortens_text = True
    max_evals: int | None = None
    shap_mask: str = "per_token"
    shap_batch_size: int = 64

    def validate(self) -> None:
        check_count("max_evals", self.max_evals, 1, allow_none=True)
        check_count("shap_batch_size", self.shap_batch_size, 1)
        if self.shap_mask not in SHAP_MASKS:
            raise ValueError(f"shap_mask must be one of {SHAP_MASKS}, got {self.shap_mask!r}.")

    def settings(self, seed: int) -> dict:
        return {"method": "shap", "max_evals": self.max_evals, "shap_mask": self.shap_mask}

    def token_norms(self, encoder, text, inputs, seed):
        return shap_token_norms(encoder, text, inputs, max_evals=self.max_evals, mask=self.shap_mask,
                                batch_size=self.shap_batch_size)



@dataclass
class Displacement(Method):
    """Each token's distance from the IG baseline, ||x_t - x'_t||: the factor (x - x') of Eq. eq-ig, with no
    gradient. An IG weight is this displacement times an average gradient, so when the displacement alone
    follows KL (or its opposite), so does IG: the book uses it to show why the choice of baseline moves the
    regression (paper limitation 1)."""

    name = "displacement"
    baseline: str = "pad"

    def validate(self) -> None:
        if self.baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {BASELINES}, got {self.baseline!r}.")

    def settings(self, seed: int) -> dict:
        return {"method": "displacement", "baseline": self.baseline}

    def token_norms(self, encoder, text, inputs, seed):
        keep = torch.tensor([[w is None for w in inputs["word_ids"]]])
        with torch.no_grad():
            x = encoder.embed_tokens(inputs["input_ids"])
            x0 = baseline_embeddings(encoder, inputs["input_ids"], self.baseline, keep)
            distance = (x - x0)[0].norm(dim=-1)
        return {"token_norms": distance.tolist(), "completeness_gap": 0.0}


def word_weights(encoder: Encoder, sentences, method="ig", n_steps: int = 50,
                 quadrature: str = "gausslegendre", baseline: str = "pad", projections: int | None = None,
                 sketch: str = "orthogonal", word_agg: str = "frobenius", normalize: str = "mean1",
                 chunk_size: int = 4, max_evals: int | None = None, shap_mask: str = "per_token",
                 shap_batch_size: int = 64, truncate: bool = True, cache=True, seed: int = 0,
                 progress: bool = True, gap_warning: float = 0.01, **options) -> pd.DataFrame:
    """Word weights of every sentence (paper sections 3.1.1 and D.4; the book's Eqs. eq-ig-norm, eq-sketch and eq-normalise).

    Returns one row per word: ``sentence_id, word_index, word, weight, raw_weight``, plus
    ``n_subwords`` and the sentence's ``completeness_gap`` (IG: the completeness residual;
    SHAP: the additivity residual). ``method="ig"`` (exact, or sketched with ``projections``)
    or ``"shap"`` (see :func:`helpers.attribution.shap_token_norms`), or any other registered
    :class:`Method` by name (its own settings as further keyword ``options``) or as an instance
    (``method=IG(n_steps=20)``; the IG and SHAP keywords here are then ignored).
    ``cache``: True (``.cache/attribution``), a path, or False. Per-token results are cached,
    so ``word_agg`` and ``normalize`` can change without recomputation; an interrupted run
    resumes where it stopped.
    """
    if isinstance(method, str) and method not in Method.registry:
        raise ValueError(f"method must be one of {methods()} (or a Method instance), got {method!r}.")
    if word_agg not in WORD_AGGS:
        raise ValueError(f"word_agg must be one of {WORD_AGGS}, got {word_agg!r}.")
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}.")
    df = sentence_table(sentences)
    if isinstance(method, Method):
        if options:
            raise TypeError(f"options {sorted(options)} go into the Method instance, not word_weights.")
        spec = method
    else:
        known = {"n_steps": n_steps, "quadrature": quadrature, "baseline": baseline, "projections": projections,
                 "sketch": sketch, "chunk_size": chunk_size, "max_evals": max_evals, "shap_mask": shap_mask,
                 "shap_batch_size": shap_batch_size}
        if options:  # a registered method's own settings: each must be one it takes
            make_method(method, options, strict=True)
        spec = make_method(method, {**known, **options})
    spec.validate()
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, got {baseline!r}.")
    settings = spec.settings(seed)
    settings.update(engine=ENGINE_VERSION, model=encoder.name, fingerprint=encoder.fingerprint(), pooling=encoder.pooling,
                    normalize_output=encoder.normalize)
    store = AttributionCache.open(cache)
    frames, gaps, seconds, unresolved = [], [], [], []
    for sentence_id, text in tqdm(list(df.itertuples(index=False, name=None)), desc=f"{spec.name} word weights",
                                  disable=not progress):
        key = AttributionCache.key(settings, sentence_id, text)
        if spec.shortens_text and truncate:
            text_used = truncate_text(encoder, text)  # shap's masker sees the text itself: shorten it
        else:
            text_used = text
        with warnings.catch_warnings():
            if store is not None and store.has(key):
                warnings.simplefilter("ignore")  # the truncation warning was given when the row was computed
            inputs = tokenize(encoder, text_used, truncate=truncate)

        def same_units(value, inputs=inputs):  # a row stored under other word units is recomputed, not served
            return AttributionCache.check_weights(value) or (
                None if (value["word_ids"], value["words"]) == (inputs["word_ids"], inputs["words"])
                else "its word units differ from the tokenizer's today")

        result = store.get(key, same_units) if store is not None else None
        if result is None:
            started = time.perf_counter()
            out = spec.token_norms(encoder, text_used, inputs, seed)
            if not np.isfinite(out["token_norms"]).all():
                raise ValueError(f"sentence {sentence_id!r} ({text[:60]!r}): the model gave non-finite attributions "
                                 "(overflow or NaN in its output); nothing was cached. Check the model's weights "
                                 "and dtype.")
            result = {"token_norms": [float(c) for c in out["token_norms"]], "word_ids": inputs["word_ids"],
                      "words": inputs["words"], "completeness_gap": out["completeness_gap"],
                      "unresolved_tokens": int(out.get("unresolved_tokens", 0)),
                      "seconds": time.perf_counter() - started}
            if store is not None:
                store.put(key, result)
        words = aggregate_words(result["token_norms"], result["word_ids"], result["words"], word_agg, normalize)
        words.insert(0, "sentence_id", sentence_id)
        words["completeness_gap"] = result["completeness_gap"]
        gaps.append(result["completeness_gap"])
        unresolved.append(result.get("unresolved_tokens", 0))
        seconds.append(result.get("seconds", np.nan))
        frames.append(words)
    table = pd.concat(frames, ignore_index=True)
    bad = int(np.sum(np.asarray(gaps) > gap_warning))
    if bad:
        warnings.warn(f"{bad} of {len(gaps)} sentences have a completeness gap above {gap_warning:.0%} "
                      f"(worst {max(gaps):.2%}); raise n_steps (IG) or max_evals (SHAP).", stacklevel=2)
    blocked = int(np.sum(np.asarray(unresolved) > 0))
    if blocked:
        warnings.warn(f"{blocked} of {len(unresolved)} sentences have word tokens that share one SHAP value (blocks "
                      f"PartitionSHAP did not split within max_evals={getattr(spec, 'max_evals', None) or 500}; {int(np.sum(unresolved))} "
                      "tokens in all): their weights are block averages. Raise max_evals (the longest sentences "
                      "need about 20 x their tokens).", stacklevel=2)
    table.attrs.update(units=units_key(encoder.tokenizer), settings=settings, word_agg=word_agg, normalize=normalize, unresolved_sentences=blocked,
                       seconds_per_sentence=float(np.nanmean(seconds)) if seconds else float("nan"))
    return table


SHAP_MASKS = ("per_token", "collapsed")


def shap_masker(encoder: Encoder, mask: str = "per_token"):
    """shap's Text masker replacing removed tokens by the model's mask token (paper appendix D.4).

    ``per_token``: one mask token per removed token (``mask_token=None`` lets shap take the
    tokenizer's mask token and keeps ``collapse_mask_token`` off); ``collapsed``: a fully
    masked span becomes a single mask token (what passing ``mask_token="[MASK]"`` turns on).
    """
    import shap

    if mask not in SHAP_MASKS:
        raise ValueError(f"shap_mask must be one of {SHAP_MASKS}, got {mask!r}.")
    if encoder.tokenizer.mask_token is None:
        raise ValueError(f"{encoder.name}'s tokenizer has no mask token, which SHAP's masking needs.")
    if mask == "per_token":
        return shap.maskers.Text(encoder.tokenizer, mask_token=None, collapse_mask_token=False)
    return shap.maskers.Text(encoder.tokenizer, mask_token=encoder.tokenizer.mask_token, collapse_mask_token=True)


def truncate_text(encoder: Encoder, text: str) -> str:
    """The text cut after the last word that fits in the model (with a warning), as IG's tokenisation truncates.

    shap's masker tokenizes the whole text, so SHAP needs the text itself shortened.
    """
    enc = encoder.tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
    if len(enc["input_ids"]) <= encoder.max_length:
        return text
    n_special = len(enc["input_ids"]) - len(encoder.tokenizer(text, add_special_tokens=False)["input_ids"])
    keep = encoder.max_length - n_special
    words = [w for w in enc.word_ids() if w is not None]
    last_word = words[keep - 1]
    if keep < len(words) and words[keep] == last_word:  # the last kept token splits a word: drop that word
        last_word -= 1
    end = max(e for (s, e), w in zip(enc["offset_mapping"], enc.word_ids()) if w is not None and w <= last_word)
    warnings.warn(f"Sentence of {len(enc['input_ids'])} tokens truncated to the model's {encoder.max_length}; "
                  "the words beyond it get no weight.", stacklevel=4)
    return text[:end]


def shap_model(encoder: Encoder, batch_size: int = 64):
    """The model function shap calls: masked texts -> whole sentence vectors (N x D).

    shap hands over a numpy array of strings; the tokenizer needs a list of ``str``.
    """
    def f(texts):
        texts = [str(t) for t in np.atleast_1d(texts)]
        return encoder.encode(texts, batch_size=batch_size)
    return f


def shapley_by_enumeration(value, n_players: int):
    """Exact Shapley values of a vector-valued game by enumerating all 2^n coalitions (paper Eq. 17).

    ``value(masks)`` maps a (m x n) boolean array of coalitions to (m x D) payoffs. Written
    here because shap's ExactExplainer cannot take the Text masker (its clustering is a
    function, which ExactExplainer indexes as an array); used as the tests' reference.
    Returns (phi: n x D, base: the empty coalition's payoff).
    """
    from math import factorial

    if n_players > 14:
        raise ValueError(f"enumeration of 2^{n_players} coalitions is too large.")
    masks = ((np.arange(2 ** n_players)[:, None] >> np.arange(n_players)) & 1).astype(bool)
    payoff = np.asarray(value(masks), dtype=float)
    index = {tuple(m): i for i, m in enumerate(masks)}
    size = masks.sum(1)
    weight = np.array([factorial(k) * factorial(n_players - k - 1) / factorial(n_players) if k < n_players else 0.0
                       for k in size])
    phi = np.zeros((n_players, payoff.shape[1]))
    for i in range(n_players):
        without = ~masks[:, i]
        with_i = masks[without].copy()
        with_i[:, i] = True
        rows = [index[tuple(m)] for m in with_i]
        phi[i] = (weight[without][:, None] * (payoff[rows] - payoff[without])).sum(0)
    return phi, payoff[0]


def shap_token_norms(encoder: Encoder, text: str, inputs: dict | None = None, max_evals: int | None = None,
                     mask: str = "per_token", batch_size: int = 64, algorithm: str = "partition") -> dict:
    """Per-token ||phi[t, :]||_2 over the D outputs from PartitionSHAP (paper appendix D, Eq. 20).

    Uses shap's Partition explainer with its Text masker (:func:`shap_masker`). The text is
    passed as a one-element list (a bare string would be explained character by character).
    ``max_evals=None`` is shap's default (500). The additivity gap is
    max_j |base_j + sum_t phi[t, j] - f_j(x)| / ||f(x) - base||. ``algorithm="exact"``
    enumerates every coalition (:func:`shapley_by_enumeration`), for short sentences and tests.
    """
    import shap

    shortened = truncate_text(encoder, text)
    if inputs is None or shortened != text:
        text, inputs = shortened, tokenize(encoder, shortened)
    masker = shap_masker(encoder, mask)
    model = shap_model(encoder, batch_size)
    if algorithm == "partition":
        explainer = shap.PartitionExplainer(model, masker)
        budget = check_count("max_evals", max_evals, 1, allow_none=True) or 500
        needed = 2 * masker.shape(text)[1] + 1
        if budget < needed:  # below this, PartitionSHAP cannot even split the sentence once per token
            warnings.warn(f"max_evals={budget} is too small for {masker.shape(text)[1]} tokens; raised to {needed} "
                          "(2 x tokens + 1, the least that reaches every token).", stacklevel=3)
            budget = needed
        kwargs = {"max_evals": budget}
    elif algorithm == "exact":
        def coalition_value(masks):  # masker(mask, text) returns ((masked text,),)
            return model([masker(m, text)[0][0] for m in masks])

        phi, base = shapley_by_enumeration(coalition_value, masker.shape(text)[1])
    else:
        raise ValueError(f"algorithm must be 'partition' or 'exact', got {algorithm!r}.")
    if algorithm == "partition":
        explanation = explainer([text], batch_size=batch_size, silent=True, **kwargs)
        phi = np.asarray(explanation.values[0], dtype=float)  # tokens x D (special tokens included)
        base = np.asarray(explanation.base_values[0], dtype=float)
    if phi.shape[0] != len(inputs["word_ids"]):
        raise RuntimeError(f"shap split {text!r} into {phi.shape[0]} tokens, the tokenizer into "
                           f"{len(inputs['word_ids'])}; cannot map SHAP values to words.")
    output = model([text])[0]
    gap = float(np.max(np.abs(base + phi.sum(0) - output)) / max(np.linalg.norm(output - base), 1e-12))
    return {"token_norms": np.linalg.norm(phi, axis=1), "completeness_gap": gap, "phi": phi, "base": base,
            "unresolved_tokens": unresolved_tokens(phi, inputs["word_ids"])}


def unresolved_tokens(phi: np.ndarray, word_ids) -> int:
    """How many word tokens share their SHAP value vector exactly with a neighbour.

    PartitionSHAP splits the sentence top-down and stops when ``max_evals`` is spent; a block it
    did not split gives all its tokens the same value, which no trained model does by chance.
    The budget that splits every token grows faster than the length (measured with a tiny BERT:
    27 evaluations for 6 tokens, 107 for 12, 331 for 19), so no fixed rule is enough: check.
    """
    rows = [i for i, w in enumerate(word_ids) if w is not None]
    tied = set()
    for a, b in zip(rows, rows[1:]):
        if np.array_equal(phi[a], phi[b]) and np.abs(phi[a]).max() > 0:
            tied |= {a, b}
    return len(tied)


# --------------------------------------------------------------------------- studies of the method
def completeness_by_steps(encoder: Encoder, texts, n_steps_grid, quadratures=("gausslegendre", "riemann_trapezoid"),
                          baseline: str = "pad", projections: int | None = 32, progress: bool = True) -> pd.DataFrame:
    """Worst completeness gap over ``texts`` for every (quadrature, n_steps): choose the cheapest n_steps under 1%.

    With ``projections`` the gap is checked on that many random output directions (IG is
    linear in the output, so each direction obeys completeness on its own).
    """
    rows = []
    grid = [(q, n) for q in quadratures for n in n_steps_grid]
    for quadrature, n in tqdm(grid, desc="completeness", disable=not progress):
        gaps = [ig_token_norms(encoder, tokenize(encoder, t)["input_ids"], n, quadrature, baseline, projections)["completeness_gap"]
                for t in texts]
        rows.append({"quadrature": quadrature, "n_steps": n, "max_gap": max(gaps), "mean_gap": float(np.mean(gaps))})
    return pd.DataFrame(rows)


def compare_weights(tables: dict, reference: str | None = None) -> pd.DataFrame:
    """Spearman correlation and median relative difference of word weights between settings.

    ``tables``: name -> :func:`word_weights` table on the same sentences. With ``reference``,
    each table is compared with that one; otherwise every pair is.
    """
    from scipy.stats import spearmanr

    names = list(tables)
    pairs = [(reference, n) for n in names if n != reference] if reference else \
        [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    rows = []
    for a, b in pairs:
        merged = tables[a].merge(tables[b], on=["sentence_id", "word_index"], suffixes=("_a", "_b"))
        rows.append({"a": a, "b": b, "n_words": len(merged),
                     "spearman": spearmanr(merged["weight_a"], merged["weight_b"])[0],
                     "median_rel_diff": float(np.median(np.abs(merged["weight_b"] - merged["weight_a"]) / merged["weight_a"]))})
    return pd.DataFrame(rows)


def sketch_error(encoder: Encoder, sentences, exact: pd.DataFrame, ks, seeds=(0, 1, 2), progress: bool = True,
                 **options) -> pd.DataFrame:
    """Error of the sketched weights against the exact ones, for each k and seed (the book's Eq. eq-sketch)."""
    rows = []
    for k in ks:
        for seed in seeds:
            sketch = word_weights(encoder, sentences, projections=k, seed=seed, progress=False, **options)
            cmp = compare_weights({"exact": exact, "sketch": sketch}, reference="exact").iloc[0]
            rows.append({"projections": k, "seed": seed, "spearman": cmp["spearman"],
                         "median_rel_error": cmp["median_rel_diff"]})
    return pd.DataFrame(rows)


def per_sentence_spearman(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Spearman correlation of two settings' word weights within each sentence (sentences of >= 3 words)."""
    from scipy.stats import spearmanr

    merged = a.merge(b, on=["sentence_id", "word_index"], suffixes=("_a", "_b"))
    rows = [{"sentence_id": sid, "n_words": len(g), "spearman": spearmanr(g["weight_a"], g["weight_b"])[0]}
            for sid, g in merged.groupby("sentence_id") if len(g) >= 3]
    return pd.DataFrame(rows)


def mean_word_weights(weights: pd.DataFrame, min_occurrences: int = 3, k: int = 5) -> pd.DataFrame:
    """The k lowest- and k highest-weighted words (mean weight over occurrences, words seen >= min_occurrences)."""
    per_word = weights.groupby("word")["weight"].agg(mean_weight="mean", occurrences="count")
    per_word = per_word[per_word["occurrences"] >= min_occurrences].sort_values("mean_weight")
    if len(per_word) <= 2 * k:
        return per_word.assign(end="all")
    return pd.concat([per_word.head(k).assign(end="lowest"), per_word.tail(k).assign(end="highest")])
