"""STS evaluation (measure layer): is a model a better sentence encoder? The Spearman correlation of its cosine
similarities with the gold scores of an STS set (chapter 05's STS-B column, the stand-in's comparison), computed once
per model and pair set (a small cache under the model's fingerprint)."""
from __future__ import annotations

import numpy as np

from .encoders import Encoder

__all__ = ["pair_cosines", "sts_spearman_of", "sts_spearman"]


def pair_cosines(vectors) -> np.ndarray:
    """The cosine of each pair of consecutive rows (0 and 1, 2 and 3, ...): an STS set's sentences as the loader
    orders them (sorted by ``pair_id`` and ``side``)."""
    vectors = np.asarray(vectors)
    a, b = vectors[0::2], vectors[1::2]
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)


def sts_spearman_of(vectors, pairs) -> float:
    """STS Spearman of sentence vectors already computed for ``pairs`` sorted by ``pair_id`` and ``side`` (the one
    definition :func:`sts_spearman` and the bag-of-words encoders share)."""
    from scipy.stats import spearmanr

    return float(spearmanr(pair_cosines(vectors), pairs["score"].to_numpy()[0::2])[0])


def sts_spearman(encoder: Encoder, pairs, batch_size: int = 128, cache: bool = True) -> float:
    """Spearman correlation of cosine similarity with the gold scores on an STS set (the loader's DataFrame:
    consecutive ``side`` 0/1 rows form a pair with a ``score``): is the model a better sentence encoder?

    ``cache``: the value is kept in ``.cache/sts/`` (:func:`helpers.config.cached_table`) under the model's
    fingerprint (its weights' bytes and settings), the pairs (texts and scores) and the batch size, so a rebuild
    does not encode STS-B again for every checkpoint (chapter 05 measures about ten); a changed weight or another
    pair set is computed anew."""
    import pandas as pd

    from .config import cached_table, frame_digest

    pairs = pairs.sort_values(["pair_id", "side"])
    from .precision import DEFAULT  # what encode() runs in ($SENTENCE_PRECISION): part of the key

    settings = {"fingerprint": encoder.fingerprint() if cache else None, "batch_size": batch_size,
                "precision": DEFAULT, "pairs": frame_digest(pairs, ["pair_id", "side", "text", "score"])}

    def compute():
        vectors = encoder.encode(pairs["text"].tolist(), batch_size=batch_size)
        return pd.DataFrame({"spearman": [sts_spearman_of(vectors, pairs)]})

    table = cached_table("sts", settings, compute, cache, code=(sts_spearman, sts_spearman_of, pair_cosines,
                                                                 Encoder.encode))
    return float(table["spearman"].iloc[0])
