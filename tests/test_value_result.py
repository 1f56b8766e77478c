"""Building blocks of value summaries: discrete HDIs and Monte Carlo noise removal."""

import itertools

import numpy as np

from bayesltv.value.result import denoise, discrete_hdi


def test_discrete_hdi_is_the_shortest_interval_with_enough_mass():
    rng = np.random.default_rng(0)
    support = np.array([0.0, 1.0, 2.5, 3.0, 7.0, 9.0])
    for _ in range(20):
        probs = rng.dirichlet(np.ones(len(support)))
        low, high = discrete_hdi(support, probs[None], 0.8)[0]
        best = None
        for i, j in itertools.combinations_with_replacement(range(len(support)), 2):
            if probs[i : j + 1].sum() >= 0.8 - 1e-12:
                width = support[j] - support[i]
                if best is None or width < best[0] - 1e-12:
                    best = (width, support[i], support[j])
        assert (low, high) == (best[1], best[2])


def test_denoise_recovers_the_epistemic_spread():
    rng = np.random.default_rng(1)
    truth = rng.normal(10.0, 2.0, size=(50, 4000))  # epistemic sd 2
    noise_variance = 9.0  # a Monte Carlo average with sd 3 around each draw's value
    noisy = truth + rng.normal(0.0, 3.0, size=truth.shape)
    clean = denoise(noisy, np.full(50, noise_variance))
    np.testing.assert_allclose(clean.std(axis=-1).mean(), 2.0, rtol=0.02)
    np.testing.assert_allclose(clean.mean(axis=-1), noisy.mean(axis=-1))
    # pure noise collapses to the mean; no noise leaves the draws alone
    flat = denoise(rng.normal(0.0, 1.0, size=(3, 5000)), np.full(3, 1.5))
    assert np.allclose(flat.std(axis=-1), 0.0)
    np.testing.assert_array_equal(denoise(noisy, 0.0), noisy)
