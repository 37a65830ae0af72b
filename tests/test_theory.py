import numpy as np
import pytest

from helpers import theory


def test_bound_has_no_violations():
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
    return theory.TopicCorpus(["u", "v"], np.array(q, dtype=float), np.array([0.5, 0.5]), length,
                              np.array([False, False]))


def test_exact_kl_hand_computed():
    # disjoint topics, s' = s, n = 2: P(u,u) = 1/2, so p(.|u) = (1, 0) and KL = log 2
    assert theory.exact_kl(_two_word_corpus([[1, 0], [0, 1]]), "same") == pytest.approx([np.log(2)] * 2)
    # overlapping topics, paraphrase positives: joint = [[.3125, .1875], [.1875, .3125]], p = (1/2, 1/2)
    kl = theory.exact_kl(_two_word_corpus([[0.75, 0.25], [0.25, 0.75]]), "topic")
    expected = 0.625 * np.log(0.625 / 0.5) + 0.375 * np.log(0.375 / 0.5)
    assert kl == pytest.approx([expected, expected])


def test_exact_pair_distribution_matches_sampling():
    corpus = theory.make_topic_corpus(n_topics=3, spreads=(1, 3), words_per_spread=4, length=4, seed=2)
    rng = np.random.default_rng(0)
    ids = corpus.sample(40000, rng)
    V = len(corpus.words)
    counts = np.zeros((V, V))
    for i in range(corpus.length):
        for j in range(corpus.length):
            np.add.at(counts, (ids[:, i], ids[:, j]), 1)
    empirical = counts / counts.sum()
    np.testing.assert_allclose(empirical, theory.pair_distribution(corpus, "same"), atol=3e-3)
    np.testing.assert_allclose(empirical.sum(1), corpus.p, atol=3e-3)


def test_corpus_informativeness_falls_with_spread():
    corpus = theory.make_topic_corpus(seed=0)
    kl = theory.exact_kl(corpus, "topic")
    spread = corpus.topic_word.astype(bool).sum(0)
    means = [kl[spread == m].mean() for m in (1, 2, 4, 8)]
    assert means == sorted(means, reverse=True)
    assert kl[corpus.is_function].max() < kl[spread == 1].min()


def test_training_is_deterministic_and_learns():
    corpus = theory.make_topic_corpus(words_per_spread=10, seed=0)
    kwargs = dict(steps=120, batch_size=64, log_every=40, progress=False)
    v1, t1 = theory.train_bow(corpus, seed=5, **kwargs)
    v2, t2 = theory.train_bow(corpus, seed=5, **kwargs)
    v3, _ = theory.train_bow(corpus, seed=6, **kwargs)
    np.testing.assert_array_equal(v1, v2)
    assert t1.equals(t2)
    assert not np.allclose(v1, v3)
    assert t1["loss"].iloc[-1] < t1["loss"].iloc[0]


def test_gnorm_of_centred_isotropic_vectors():
    # with G = p-weighted covariance, gnorm2 is invariant to adding the same vector to every word
    rng = np.random.default_rng(0)
    vec, p = rng.normal(size=(20, 4)), rng.dirichlet(np.ones(20))
    np.testing.assert_allclose(theory.gnorm2(vec, p), theory.gnorm2(vec + 3.0, p))
