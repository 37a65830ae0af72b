import numpy as np
import pandas as pd
import pytest

from helpers import theory


def test_bound_has_no_violations():
    """A check of the code only: Jensen's inequality guarantees the bound for any vectors."""
    check = theory.check_bound(n_pairs=3000, seed=1)
    assert len(check) == 3000 and check["violation"].sum() == 0
    assert (check["gap"] > 1e-9).mean() > 0.9  # strict almost always for random vectors


def test_bound_is_tight_where_jensen_is_an_equality():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(1, 8)), rng.normal(size=(1, 8))  # one-word sentences
    for y in (0, 1):
        assert theory.log_likelihood(a, b, y) == pytest.approx(theory.sgns_bound(a, b, y), abs=1e-12)
    same = np.repeat(rng.normal(size=(1, 8)), 5, axis=0)  # every word-pair score equal
    other = np.repeat(rng.normal(size=(1, 8)), 3, axis=0)
    assert theory.log_likelihood(same, other, 1) == pytest.approx(theory.sgns_bound(same, other, 1), abs=1e-12)
    spread = rng.normal(size=(5, 8)) * 3
    assert theory.log_likelihood(spread, other, 0) > theory.sgns_bound(spread, other, 0) + 1e-6
    with pytest.raises(ValueError):
        theory.log_likelihood(a, b, -1)


def _two_word_corpus(q, length=2):
    return theory.TopicCorpus(["u", "v"], np.array(q, dtype=float), np.array([0.5, 0.5]), length)


def test_exact_kl_hand_computed():
    # disjoint topics, s' = s, n = 2: P(u,u) = 1/2, so p(.|u) = (1, 0) and KL = log 2
    assert theory.exact_kl(_two_word_corpus([[1, 0], [0, 1]]), "same") == pytest.approx([np.log(2)] * 2)
    # overlapping topics, paraphrase positives: joint = [[.3125, .1875], [.1875, .3125]], p = (1/2, 1/2)
    kl = theory.exact_kl(_two_word_corpus([[0.75, 0.25], [0.25, 0.75]]), "topic")
    expected = 0.625 * np.log(0.625 / 0.5) + 0.375 * np.log(0.375 / 0.5)
    assert kl == pytest.approx([expected, expected])


def test_exact_pair_distribution_matches_sampling():
    corpus = theory.make_topic_corpus(n_topics=3, spreads=(1, 3), n_ranks=2, length=4, seed=2)
    rng = np.random.default_rng(0)
    ids = corpus.sample(40000, rng)
    V = len(corpus.words)
    counts = np.zeros((V, V))
    for i in range(corpus.length):
        for j in range(corpus.length):
            np.add.at(counts, (ids[:, i], ids[:, j]), 1)
    empirical = counts / counts.sum()
    np.testing.assert_allclose(empirical, theory.pair_distribution(corpus, "same"), atol=3e-3)
    np.testing.assert_allclose(empirical.sum(1), corpus.p, rtol=0.05)


def test_corpus_separates_informativeness_from_frequency():
    corpus = theory.make_topic_corpus(seed=0)
    kl = theory.exact_kl(corpus, "topic")
    spread = corpus.topic_word.astype(bool).sum(0)
    means = [kl[spread == m].mean() for m in (1, 2, 4, 8)]
    assert means == sorted(means, reverse=True)  # KL falls with the spread
    # every level spans the same frequencies, so KL and I are nearly independent across the vocabulary
    assert abs(theory.corpus_summary(corpus)["spearman_kl_i"]) < 0.1
    for m in (1, 2, 4, 8):
        assert np.ptp(np.log(corpus.p[spread == m])) > 1.5  # a ladder of frequencies at every level
    with pytest.raises(ValueError, match="divide"):
        theory.make_topic_corpus(n_topics=8, spreads=(3,))


def test_training_is_deterministic_and_learns():
    corpus = theory.make_topic_corpus(n_ranks=3, seed=0)
    kwargs = dict(steps=120, batch_size=64, log_every=40, progress=False)
    v1, c1, t1 = theory.train_bow(corpus, seed=5, **kwargs)
    v2, c2, t2 = theory.train_bow(corpus, seed=5, **kwargs)
    v3, _, _ = theory.train_bow(corpus, seed=6, **kwargs)
    np.testing.assert_array_equal(v1, v2)
    assert t1.equals(t2) and c1 is None
    assert np.abs(v1 - v3).max() > 1e-3
    assert t1["loss"].iloc[-1] < t1["loss"].iloc[0]
    for settings in theory.THEORY_MODELS.values():  # every model of the chapter trains and lowers its loss
        _, context, t = theory.train_bow(corpus, **settings, **kwargs)
        assert t["loss"].iloc[-1] < t["loss"].iloc[0], settings
        assert (context is None) == (settings.get("tied", True) and settings["objective"] != "cbow")


def test_gnorm_invariances_and_context_metric():
    rng = np.random.default_rng(0)
    vec, ctx, p = rng.normal(size=(20, 4)), rng.normal(size=(20, 4)), rng.dirichlet(np.ones(20))
    np.testing.assert_allclose(theory.gnorm2(vec, p), theory.gnorm2(vec + 3.0, p))
    # untied: the metric is the context vectors' covariance; scaling the contexts by c scales the norm by c^2
    np.testing.assert_allclose(theory.gnorm2(vec, p, 2 * ctx), 4 * theory.gnorm2(vec, p, ctx))
    assert not np.allclose(theory.gnorm2(vec, p, ctx), theory.gnorm2(vec, p))


def test_partial_r2():
    from helpers.regression import partial_r2

    rng = np.random.default_rng(0)
    i, k = rng.normal(size=500), rng.normal(size=500)
    assert partial_r2(2 * k + 0.1 * rng.normal(size=500), k, i) > 0.95  # k explains what i leaves
    assert partial_r2(i + 0.1 * rng.normal(size=500), k, i) < 0.02  # nothing to add beyond i


# --------------------------------------------------------------------------- the chapter's claims
def _chapter_defaults() -> dict:
    import papermill as pm

    from helpers.book import NOTEBOOK_DIR

    params = pm.inspect_notebook(str(NOTEBOOK_DIR / "01_theory.ipynb"))
    return {k: eval(v["default"]) for k, v in params.items()}  # the notebook's literals


@pytest.fixture(scope="module")
def study():
    """The chapter's study at its defaults (~40 s): the claims of its section 4 are checked on it."""
    p = _chapter_defaults()
    corpus = theory.make_topic_corpus(n_topics=p["n_topics"], n_ranks=p["n_ranks"], zipf=p["zipf"],
                                      concentration=p["concentration"], length=p["length"], seed=p["seed"])
    fits, words, _ = theory.run_study(corpus, dim=p["dim"], steps=p["steps"], batch_size=p["batch_size"], lr=p["lr"],
                                      temperature=p["temperature"], log_every=p["steps"], seed=p["seed"],
                                      progress=False)
    return fits, words


def _claims(fits: dict) -> dict:
    """Each statement of the chapter's verdict, as a boolean (the text states these, with glued numbers)."""
    s, t, c = fits["sgns_untied"], fits["sgns_tied"], fits["contrastive"]
    return {
        "theorem setting encodes KL beyond frequency": s["slope_kl"] > 0 and s["partial_r2_kl_given_i"] > 0.5
        and s["partial_r2_kl_given_i"] > s["partial_r2_i_given_kl"] + 0.3,
        "G-norm linear in KL with a slope between 3 and 5, not 2": s["gnorm_r2"] > 0.5 and 3 < s["gnorm_slope"] < 5,
        "tied vectors weaken the link": t["partial_r2_kl_given_i"] < s["partial_r2_kl_given_i"] - 0.3,
        "contrastive (paraphrase) encodes KL only weakly": c["partial_r2_kl_given_i"] < 0.3,
        "s' = s norms follow frequency": fits["contrastive_same"]["partial_r2_i_given_kl"]
        > fits["contrastive_same"]["partial_r2_kl_given_i"] + 0.2,
        "cosine: KL beyond frequency, frequency not beyond KL": fits["contrastive_cosine"]["partial_r2_kl_given_i"]
        > fits["contrastive_cosine"]["partial_r2_i_given_kl"] + 0.05,
        "the cbow control encodes KL beyond frequency": fits["cbow"]["partial_r2_kl_given_i"] > 0.1,
    }


def _refit(words: pd.DataFrame, fits: dict, shuffle: bool) -> dict:
    """The reports recomputed from the word table, with KL shuffled across words if asked (a negative control)."""
    rng = np.random.default_rng(0)
    out = {}
    for model, fit in fits.items():
        w = words[words["model"] == model].reset_index(drop=True)
        if shuffle:
            order = rng.permutation(len(w))
            w = w.assign(kl=w["kl"].to_numpy()[order], kl_same=w["kl_same"].to_numpy()[order])
        g = theory.ols(w[fit["kl_column"]], w["gnorm"])
        out[model] = {**theory.norm_report(w, "norm2", fit["kl_column"]), "gnorm_r2": g["r2"],
                      "gnorm_slope": g["beta"]}
    return out


def test_chapter_claims_hold_at_the_defaults(study):
    fits, words = study
    claims = _claims(_refit(words, fits, shuffle=False))
    assert all(claims.values()), {k: v for k, v in claims.items() if not v}
    assert _refit(words, fits, shuffle=False)["sgns_untied"]["r2_kl"] == pytest.approx(fits["sgns_untied"]["r2_kl"])


def test_the_claims_fail_when_kl_is_shuffled(study):
    """The negative control: with KL shuffled across words, the claims that KL is encoded must fail."""
    fits, words = study
    claims = _claims(_refit(words, fits, shuffle=True))
    for claim in ("theorem setting encodes KL beyond frequency", "G-norm linear in KL with a slope between 3 and 5, not 2",
                  "cosine: KL beyond frequency, frequency not beyond KL", "the cbow control encodes KL beyond frequency"):
        assert not claims[claim], claim
