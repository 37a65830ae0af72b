"""A pair's explanation (chapter 13): the contribution of every word pair to the similarity score the model itself
reports (``model.similarity()``; the book's Eq. eq-pair), with the reference terms and the completeness gap, trying
more quadrature points until the parts add up to the score. :func:`helpers.explain.explain` calls it for
``explain(model, text, other)``."""
from __future__ import annotations

import warnings

from .explanation import Explanation, n_tokens

__all__ = ["PAIR_STEPS", "similarity_of", "pair_method", "explain_pair"]

#: The quadrature points a pair's explanation tries in turn when ``n_steps`` is not given: it stops at the first
#: whose completeness gap is within :data:`helpers.views.GAP_THRESHOLD` of the score (chapter 13 measures them).
PAIR_STEPS = (20, 50, 150)


def similarity_of(model, encoder=None) -> str:
    """The similarity function the model reports (``model.similarity()``): a ``SentenceTransformer``'s
    ``similarity_fn_name``, else the one its loaded :class:`~helpers.encoders.Encoder` read from the folder or
    hub repository (``config_sentence_transformers.json``), else cosine (the sentence-transformers default)."""
    from .encoders import Encoder, load_encoder, similarity_name

    if type(model).__name__ == "SentenceTransformer":
        return similarity_name(getattr(model, "similarity_fn_name", None))
    if encoder is None:
        encoder = model if isinstance(model, Encoder) else load_encoder(model)
    return similarity_name(encoder.similarity_fn_name)


def pair_method(method, o: dict, used: str):
    """The IG object of a pair and the quadrature sizes to try: an IG object as given (exact; its own size), or one
    built from explain()'s keywords, trying each size of :data:`PAIR_STEPS` until the gap closes."""
    from .attribution import IG

    if isinstance(method, str):
        ig = IG(n_steps=o["n_steps"] or PAIR_STEPS[0], baseline=o["baseline"], seed=o["seed"], precision=used)
        return ig, [o["n_steps"]] if o["n_steps"] else list(PAIR_STEPS)
    if method.projections is not None:
        raise ValueError(f"a pair is explained by exact IG (its word-pair products need every output); got "
                         f"{method!r}: pass method=IG(...) without projections.")
    return method, [method.n_steps]


def explain_pair(loaded: dict, text: str, other: str, o: dict) -> "Explanation":
    """One pair's word-pair contributions to the model's own similarity score (Eq. eq-pair)."""
    encoder, label, method = loaded["encoder"], loaded["label"], o["method"]
    if getattr(method, "name", method) != "ig":
        raise ValueError("pairs are explained by IG only (its word-pair decomposition, Eq. eq-pair); use method='ig'.")
    ig, ladder = pair_method(method, o, loaded["precision"])
    own = similarity_of(loaded["model"], encoder)
    similarity = (o["similarity"] or own).lower()
    if similarity not in ("cosine", "dot"):
        raise ValueError(f"the model reports its similarity as {similarity!r}; a pair decomposes only for 'cosine' "
                         "or 'dot' (pass similarity='cosine' or 'dot' to explain one of those).")
    for name, value in (("text", text), ("other", other)):
        if n_tokens(encoder, value) > encoder.max_length and o["long"] != "truncate":
            raise ValueError(f"{name} has {n_tokens(encoder, value)} tokens and the model reads at most "
                             f"{encoder.max_length}: shorten it, or pass long='truncate' to explain what the model "
                             "computes (windows do not apply to a pair's single score).")
    from .attribution.pairs import pair_weights
    from .views import GAP_THRESHOLD

    tried = []
    for n_steps in ladder:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the truncation, when long='truncate', is stated below instead
            table = pair_weights(encoder, text, other, ig.replace(n_steps=n_steps), similarity=similarity,
                                 cache=o["cache"])
        tried.append((n_steps, float(table.attrs["completeness_gap"])))
        if tried[-1][1] <= GAP_THRESHOLD:
            break
    marks = [table.groupby(["index_a", "word_a"], sort=True)["contribution"].sum().reset_index()
             .rename(columns={"index_a": "word_index", "word_a": "word"}),
             table.groupby(["index_b", "word_b"], sort=True)["contribution"].sum().reset_index()
             .rename(columns={"index_b": "word_index", "word_b": "word"})]
    numbers = {"score": float(table.attrs["score"]), "reference": float(table.attrs["reference"]),
               "sum_of_contributions": float(table["contribution"].sum()),
               "completeness_gap": float(table.attrs["completeness_gap"]),
               "gap_of_contributions": float(table.attrs["gap_of_contributions"]), "n_steps": int(n_steps),
               "closes": bool(tried[-1][1] <= GAP_THRESHOLD)}
    said = ("as model.similarity() computes it" if similarity == own else
            f"as you asked; model.similarity() computes the {own} similarity")
    notes = [loaded["note"], f"score = {similarity} similarity, {said} = sum of the word-pair contributions + the "
             "reference terms (what any two texts share through the baseline) + the completeness gap"]
    if len(tried) > 1:
        notes.append("quadrature raised until the gap closed: " + ", ".join(
            f"{gap:.2%} of the score at {steps} points" for steps, gap in tried))
    if not numbers["closes"]:
        advice = ("pass a larger n_steps" if len(ladder) == 1 else
                  f"it stayed above {GAP_THRESHOLD:.0%} up to {PAIR_STEPS[-1]} points, where more points cost much "
                  "and gain little")
        warnings.warn(f"{label}: the word pairs and reference terms miss the score by {numbers['completeness_gap']:.1%} "
                      f"of it at {n_steps} quadrature points ({advice}); the explanation says so instead of an "
                      "equation.", UserWarning, stacklevel=3)
    return Explanation(kind="pair", model=label, texts=[text, other], method="ig", table=table.reset_index(drop=True),
                       marks=marks, numbers=numbers, notes=notes,
                       settings={"method": "ig", "exact": True, "n_steps": int(n_steps), "baseline": ig.baseline,
                                 "similarity": similarity, "precision": ig.precision}, _encoder=encoder)
