"""Which quadrature closes IG's completeness gap with the fewest points on all-MiniLM-L6-v2 (issue "Faster where
readers wait": an exact explanation costs about 0.8 s per point on 2 cores, so fewer points at the same gap is the
one lever left after bf16)?

Gauss-Legendre on [0, 1] (the book's rule) against Gauss-Legendre after a change of variable that puts more points
near the baseline (``gl_start``: a = u², weights 2u w) or near the input (``gl_end``: a = 1 - (1 - u)²), at 8, 10
and 12 points, on the explain benchmark's 21-word sentence, Figure 3's three and four STS-B validation sentences;
IG in bf16 with 32 sketch directions (the gap over random output directions; ``--exact`` for all 384). The two
changed rules are written here only (patched into :mod:`helpers.attribution.ig` for the run); they are not offered
by the library, since neither did better. One JSON line per rule and size::

    SENTENCE_DATA_DIR=../shared/data python benchmarks/quadrature.py >> benchmarks/quadrature_cpu.jsonl

Nothing is asserted (a measurement, not a test).
"""
import json
import sys
import time
from pathlib import Path

import numpy as np

from helpers.attribution import ig as igm
from helpers.attribution.tokens import tokenize
from helpers.data import FIGURE3, load_sentences
from helpers.encoders import load_encoder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from explain_speed import SENTENCE  # noqa: E402

BOOK_RULE = igm._quadrature


def changed_rule(method: str, n: int):
    """Gauss-Legendre after the change of variable ``method`` names (or the book's rules as they are)."""
    if method not in ("gl_start", "gl_end"):
        return BOOK_RULE(method, n)
    a, w = (t.double() for t in BOOK_RULE("gausslegendre", n))
    if method == "gl_start":
        return (a ** 2).float(), (2 * a * w).float()
    return (1 - (1 - a) ** 2).float(), (2 * (1 - a) * w).float()


def main() -> None:
    igm._quadrature = changed_rule
    encoder = load_encoder("all-MiniLM-L6-v2", pooling="mean")
    stsb = load_sentences("stsb", "validation", limit=8, seed=1)
    texts = [SENTENCE, *FIGURE3, *stsb["text"].tolist()[:4]]
    projections = None if "--exact" in sys.argv else 32
    for method in ("gausslegendre", "gl_start", "gl_end"):
        for n in (8, 10, 12):
            start = time.perf_counter()
            gaps = [igm.ig_token_norms(encoder, tokenize(encoder, t)["input_ids"], n, method, "pad", projections,
                                       precision="bf16", chunk_size=32)["completeness_gap"] for t in texts]
            print(json.dumps({"quadrature": method, "n_steps": n, "max_gap": round(max(gaps), 5),
                              "mean_gap": round(float(np.mean(gaps)), 5), "sentences": len(texts),
                              "projections": projections, "seconds": round(time.perf_counter() - start, 1)}),
                  flush=True)


if __name__ == "__main__":
    main()
