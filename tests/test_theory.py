import numpy as np
import pandas as pd
import pytest

from helpers import theory, theory_study


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
    v1, c1, t1 = theory_study.train_bow(corpus, seed=5, **kwargs)
    v2, c2, t2 = theory_study.train_bow(corpus, seed=5, **kwargs)
    v3, _, _ = theory_study.train_bow(corpus, seed=6, **kwargs)
    np.testing.assert_array_equal(v1, v2)
    assert t1.equals(t2) and c1 is None
    assert np.abs(v1 - v3).max() > 1e-3
    assert t1["loss"].iloc[-1] < t1["loss"].iloc[0]
    for settings in theory_study.THEORY_MODELS.values():  # every model of the chapter trains and lowers its loss
        _, context, t = theory_study.train_bow(corpus, **settings, **kwargs)
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


# --------------------------------------------------------------------------- the SGNS optimum in closed form
def test_closed_form_optimum_equals_an_exact_factorisation():
    """Eq. eq-gnorm-pmi against the G-norm of vectors that realise the optimum exactly (an SVD of PMI - log k):
    equal for every k (the shift cancels) and every factorisation (here two different splits of the SVD)."""
    corpus = theory.make_topic_corpus(n_ranks=3, seed=0, smoothing=0.2)
    p = corpus.p
    for positive in ("same", "topic"):
        reference = theory.sgns_optimum(corpus, positive, k=1)
        assert reference["bounded"] and reference["share_zero_pairs"] == 0
        for k in (1, 5):
            scores = theory.pmi_matrix(corpus, positive) - np.log(k)  # Eq. eq-sgns-optimum
            U, S, Vt = np.linalg.svd(scores)
            for a in (0.5, 0.2):
                u, v = U * S ** a, Vt.T * S ** (1 - a)
                np.testing.assert_allclose(u @ v.T, scores, atol=1e-10)
                np.testing.assert_allclose(theory.gnorm2(u, p, v), reference["gnorm"], rtol=1e-8, atol=1e-12)
            np.testing.assert_allclose(theory.sgns_optimum(corpus, positive, k=k)["gnorm"], reference["gnorm"])
    with pytest.raises(ValueError, match="k"):
        theory.sgns_optimum(corpus, "same", k=0)


def test_factor_two_is_the_small_pmi_limit():
    """Eq. eq-oyama: 2 KL = G-norm when every PMI is small (paraphrase positives, heavy smoothing), not with
    self-pairs (PMI(w, w) stays large); without smoothing most pairs never co-occur and there is no optimum."""
    table = theory.optimum_by_smoothing([0.0, 0.1, 0.99], n_ranks=3, seed=0).set_index(["smoothing", "positive"])
    assert not table.loc[(0.0, "same"), "bounded"] and table.loc[(0.0, "same"), "share_zero_pairs"] > 0.3
    assert np.isnan(table.loc[(0.0, "topic"), "slope"])
    assert table.loc[(0.99, "topic"), "slope"] == pytest.approx(2.0, abs=0.02)
    assert table.loc[(0.99, "topic"), "max_abs_pmi"] < 0.1
    assert abs(table.loc[(0.99, "same"), "slope"] - 2.0) > 1.0 and table.loc[(0.99, "same"), "max_abs_pmi"] > 1.0
    corpus = theory.make_topic_corpus(n_ranks=3, seed=0, smoothing=0.99)
    opt = theory.sgns_optimum(corpus, "topic")
    np.testing.assert_allclose(opt["gnorm"], 2 * opt["kl"], rtol=0.03)  # word by word, not just the slope
    with pytest.raises(ValueError, match="smoothing"):
        theory.make_topic_corpus(smoothing=1.0)


def test_smoothing_keeps_the_spread_and_frequencies():
    plain, smooth = theory.make_topic_corpus(seed=0), theory.make_topic_corpus(seed=0, smoothing=0.3)
    np.testing.assert_array_equal(plain.spread, smooth.spread)
    np.testing.assert_allclose(plain.p, smooth.p)  # mixing with the background keeps p(w)
    assert smooth.topic_word.min() > 0 and (plain.topic_word == 0).any()
    kl_plain, kl_smooth = theory.exact_kl(plain, "topic"), theory.exact_kl(smooth, "topic")
    assert (kl_smooth < kl_plain + 1e-12).all()  # mixing in the background makes every word less informative


def test_pmi_rows_are_sorted_rows_of_the_matrix():
    corpus = theory.make_topic_corpus(n_ranks=3, seed=0, smoothing=0.1)
    words = [corpus.words[0], corpus.words[-1]]
    rows = theory.pmi_rows(corpus, words, positive="topic")
    pmi = theory.pmi_matrix(corpus, "topic")
    for w in words:
        r = rows[rows["word"] == w]
        assert r["pmi"].is_monotonic_decreasing and list(r["rank"]) == list(range(1, len(corpus.words) + 1))
        np.testing.assert_allclose(np.sort(r["pmi"].to_numpy()), np.sort(pmi[corpus.words.index(w)]))
    with pytest.raises(ValueError, match="not in the corpus"):
        theory.pmi_rows(corpus, ["nope"])


def test_a_trained_full_rank_sgns_approaches_its_closed_form_optimum():
    """Training and the closed form are independent code: with as many dimensions as words and a long enough
    run, the trained G-norm follows the optimal one (a wrong centring or PMI in either would break this)."""
    corpus = theory.make_topic_corpus(n_ranks=2, seed=0, smoothing=0.3)
    check, words = theory_study.optimum_check(corpus, seeds=[0], dim=len(corpus.words), steps=3000, batch_size=1024,
                                        lr=0.02, log_every=1000, progress=False)
    assert check["correlation"] > 0.9 and abs(check["slope_ratio"] - 1) < 0.2, check
    assert theory_study.optimum_reached(check)
    assert np.corrcoef(words["gnorm_optimum"], words["kl_same"])[0, 1] > 0
    with pytest.raises(ValueError, match="never co-occur"):
        theory_study.optimum_check(theory.make_topic_corpus(n_ranks=2, seed=0), steps=2, progress=False)
    with pytest.raises(ValueError, match="not an SGNS model"):
        theory_study.optimum_check(corpus, model="cbow", steps=2, progress=False)


def test_optimum_rule():
    assert theory_study.optimum_reached({"correlation": 0.95, "slope_ratio": 1.1})
    assert not theory_study.optimum_reached({"correlation": 0.85, "slope_ratio": 1.0})
    assert not theory_study.optimum_reached({"correlation": 0.99, "slope_ratio": 1.3})


def test_seeds_are_averaged_and_cosine_slopes_are_not_identified():
    corpus = theory.make_topic_corpus(n_ranks=2, seed=0)
    models = {m: theory_study.THEORY_MODELS[m] for m in ("sgns_untied", "contrastive_cosine")}
    kwargs = dict(dim=4, steps=40, batch_size=32, log_every=10, progress=False)
    both, _, trajectories = theory_study.run_study(corpus, models, seeds=[0, 1], last=2, **kwargs)
    one, _, _ = theory_study.run_study(corpus, models, seeds=[0], last=2, **kwargs)
    two, _, _ = theory_study.run_study(corpus, models, seeds=[1], last=2, **kwargs)
    for key in ("r2_kl", "partial_r2_kl_given_i", "gnorm_r2_last", "partial_r2_kl_given_i_last"):
        expected = (one["sgns_untied"][key] + two["sgns_untied"][key]) / 2
        assert both["sgns_untied"][key] == pytest.approx(expected), key
    assert both["sgns_untied"]["seeds"] == 2 and "r2_kl_sd" in both["sgns_untied"]
    run = trajectories[(trajectories["model"] == "sgns_untied") & (trajectories["seed"] == 0)]
    assert one["sgns_untied"]["gnorm_slope_last"] == pytest.approx(run["slope_gnorm_vs_kl"].tail(2).mean())
    assert one["sgns_untied"]["gnorm_slope"] == pytest.approx(run["slope_gnorm_vs_kl"].iloc[-1])
    cosine = both["contrastive_cosine"]
    assert not cosine["slopes_identified"] and np.isnan(cosine["slope_kl"]) and np.isnan(cosine["gnorm_slope_last"])
    assert np.isfinite(cosine["r2_kl"]) and np.isfinite(cosine["partial_r2_kl_given_i_last"])


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
    corpus_kwargs = dict(n_topics=p["n_topics"], n_ranks=p["n_ranks"], zipf=p["zipf"],
                         concentration=p["concentration"], length=p["length"], seed=p["seed"])
    corpus = theory.make_topic_corpus(**corpus_kwargs)
    fits, words, _ = theory_study.run_study(corpus, dim=p["dim"], steps=p["steps"], batch_size=p["batch_size"], lr=p["lr"],
                                      temperature=p["temperature"], log_every=p["log_every"],
                                      seeds=range(p["seed"], p["seed"] + p["n_seeds"]), last=p["last_checkpoints"],
                                      progress=False)
    optimum = theory.optimum_by_smoothing(p["smoothing_grid"], **corpus_kwargs)
    return fits, words, optimum


def _claims(fits: dict, optimum: pd.DataFrame) -> dict:
    """Each statement of the chapter's verdict, as a boolean (the text states these, with glued numbers); the
    chapter reports means over the last checkpoints (``<key>_last``) where the fits have them."""
    def v(model, key):
        return fits[model].get(f"{key}_last", fits[model][key])

    largest = optimum[optimum["smoothing"] == optimum["smoothing"].max()].set_index("positive")
    return {
        "Oyama's setting encodes KL beyond frequency": v("sgns_untied", "slope_kl") > 0
        and v("sgns_untied", "partial_r2_kl_given_i") > 0.5
        and v("sgns_untied", "partial_r2_kl_given_i") > v("sgns_untied", "partial_r2_i_given_kl") + 0.3,
        "without smoothing the optimum does not exist": bool((~optimum[optimum["smoothing"] == 0]["bounded"]).all()),
        "the factor 2 is reached in the small-PMI limit, not with self-pairs":
            abs(largest.loc["topic", "slope"] - 2) < 0.1 and abs(largest.loc["same", "slope"] - 2) > 1,
        "tied vectors weaken the link": v("sgns_tied", "partial_r2_kl_given_i")
        < v("sgns_untied", "partial_r2_kl_given_i") - 0.3,
        "contrastive (paraphrase) encodes KL only weakly": v("contrastive", "partial_r2_kl_given_i") < 0.3,
        "s' = s norms follow frequency": v("contrastive_same", "partial_r2_i_given_kl")
        > v("contrastive_same", "partial_r2_kl_given_i") + 0.2,
        "cosine: KL beyond frequency, frequency not beyond KL": v("contrastive_cosine", "partial_r2_kl_given_i")
        > v("contrastive_cosine", "partial_r2_i_given_kl") + 0.05,
        "the cbow control encodes KL beyond frequency": v("cbow", "partial_r2_kl_given_i") > 0.1,
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
        out[model] = {**theory_study.norm_report(w, "norm2", fit["kl_column"]), "gnorm_r2": g["r2"],
                      "gnorm_slope": g["beta"]}
    return out


def test_chapter_claims_hold_at_the_defaults(study):
    fits, words, optimum = study
    claims = _claims(fits, optimum)
    assert all(claims.values()), {k: v for k, v in claims.items() if not v}
    # the word table (the first seed's last checkpoint) gives the same claims: no claim rests on the averaging
    assert _claims(_refit(words, fits, shuffle=False), optimum)["Oyama's setting encodes KL beyond frequency"]


def _shuffled_optimum(optimum: pd.DataFrame) -> pd.DataFrame:
    """The closed-form slopes refitted on KL shuffled across words (the optimal G-norm kept)."""
    p = _chapter_defaults()
    rng = np.random.default_rng(0)
    rows = []
    for _, row in optimum.iterrows():
        corpus = theory.make_topic_corpus(n_topics=p["n_topics"], n_ranks=p["n_ranks"], zipf=p["zipf"],
                                          concentration=p["concentration"], length=p["length"], seed=p["seed"],
                                          smoothing=row["smoothing"])
        opt = theory.sgns_optimum(corpus, row["positive"])
        slope = theory.ols(rng.permutation(opt["kl"]), opt["gnorm"])["beta"] if opt["bounded"] else float("nan")
        rows.append({**row.to_dict(), "slope": slope})
    return pd.DataFrame(rows)


def test_the_claims_fail_when_kl_is_shuffled(study):
    """The negative control: with KL shuffled across words, the claims that KL is encoded must fail."""
    fits, words, optimum = study
    claims = _claims(_refit(words, fits, shuffle=True), _shuffled_optimum(optimum))
    for claim in ("Oyama's setting encodes KL beyond frequency",
                  "the factor 2 is reached in the small-PMI limit, not with self-pairs",
                  "cosine: KL beyond frequency, frequency not beyond KL", "the cbow control encodes KL beyond frequency"):
        assert not claims[claim], claim


def test_bag_of_words_runs_are_cached_by_their_settings(tmp_path, monkeypatch):
    """A rebuild serves a trained run from .cache/theory (training is deterministic: the same numbers); another
    setting or corpus trains anew, and a damaged entry is trained again, never served."""
    monkeypatch.setenv("SENTENCE_CACHE_DIR", str(tmp_path))
    corpus = theory.make_topic_corpus(seed=0)
    first = theory_study.train_bow(corpus, steps=40, log_every=20, progress=False)
    entries = list((tmp_path / "theory").glob("bow-*.npz"))
    assert len(entries) == 1
    calls = []
    real = theory_study._train_bow
    monkeypatch.setattr(theory_study, "_train_bow", lambda *a: calls.append(a) or real(*a))
    again = theory_study.train_bow(corpus, steps=40, log_every=20, progress=False)
    assert not calls and np.array_equal(first[0], again[0])
    pd.testing.assert_frame_equal(first[2], again[2])
    theory_study.train_bow(corpus, steps=40, log_every=20, lr=0.01, progress=False)
    theory_study.train_bow(theory.make_topic_corpus(seed=1), steps=40, log_every=20, progress=False)
    assert len(calls) == 2
    entries[0].write_bytes(b"not an npz")
    repaired = theory_study.train_bow(corpus, steps=40, log_every=20, progress=False)
    assert len(calls) == 3 and np.array_equal(repaired[0], first[0])
