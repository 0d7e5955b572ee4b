"""SBC ranks, uniformity test and shape scores."""

import jax.numpy as jnp
import numpy as np
import pytest

import sbi_kit as sk

from .conftest import gaussian_draws

D = sk.diagnostics


def test_ranks_count_samples_below_the_truth():
    samples = jnp.array([[[0.0, 5.0]], [[1.0, 6.0]], [[2.0, 7.0]], [[3.0, 8.0]]])  # (L=4, n=1, 2)
    theta = jnp.array([[2.5, 4.0]])
    np.testing.assert_array_equal(np.asarray(D.sbc_ranks(samples, theta)), [[3, 0]])
    # a statistic given as a callable and as precomputed values gives the same ranks
    stat = lambda t: jnp.sum(t)  # noqa: E731
    r1 = D.sbc_ranks(samples, theta, statistics=stat)
    r2 = D.sbc_ranks(samples, theta, statistics=(samples.sum(-1), theta.sum(-1)))
    np.testing.assert_array_equal(np.asarray(r1), [[3, 0, 1]])  # sums 5, 7, 9, 11 vs 6.5
    np.testing.assert_array_equal(np.asarray(r1), np.asarray(r2))


@pytest.mark.parametrize(
    ("scale", "direction"), [(1.0, 0), (0.5, +1), (2.0, -1)], ids=["exact", "x0.5", "x2"]
)
def test_uniformity_and_shape_on_gaussian_posteriors(scale, direction):
    # 1,000 simulations × 100 samples (d = 2) of the conjugate problem, seeded; columns are
    # θ1, θ2 and −log q
    theta, samples, lp_s, lp_t = gaussian_draws(21, 1000, 100, scale)
    r = D.sbc_ranks(samples, theta, statistics=(-lp_s, -lp_t))
    assert r.shape == (1000, 3) and int(r.min()) >= 0 and int(r.max()) <= 100
    test = D.sbc_test(r, 100)
    if direction == 0:
        assert test.p_values.min() > 0.01 / 3
        assert np.abs(test.dispersion).max() < 3 and np.abs(test.bias).max() < 3
    else:
        assert test.p_values.max() < 1e-6
        # marginals: U shape (overconfident) or dome (underconfident)
        assert np.all(np.sign(test.dispersion[:2]) == direction)
        assert np.all(np.abs(test.dispersion[:2]) > 5)
        # −log q: the truth sits at low density (high ranks) when overconfident
        assert np.sign(test.bias[2]) == direction and abs(test.bias[2]) > 5


def test_chi2_test_has_its_level_under_uniform_ranks():
    # 400 columns of 300 exactly uniform ranks on 0..99: p-values ~ U(0, 1)
    rng = np.random.default_rng(0)
    r = rng.integers(0, 100, size=(300, 400))
    p = D.sbc_test(r, 99, num_bins=10).p_values
    assert abs(np.mean(p < 0.05) - 0.05) < 3 * np.sqrt(0.05 * 0.95 / 400)
    assert abs(np.mean(p) - 0.5) < 3 * np.sqrt(1 / 12 / 400)


def test_unequal_bins_use_exact_expected_frequencies():
    # L = 9: 10 possible ranks in 3 bins of sizes 4, 3, 3 — exactly uniform counts pass
    r = np.tile(np.arange(10), 30)[:, None]
    t = D.sbc_test(r, 9, num_bins=3)
    np.testing.assert_allclose(t.p_values, 1.0, atol=1e-12)
    np.testing.assert_allclose(t.bias, 0.0, atol=1e-9)
    np.testing.assert_allclose(t.dispersion, 0.0, atol=1e-9)


def test_bad_inputs_raise_clear_errors():
    theta, samples, _, _ = gaussian_draws(0, 50, 10, 1.0)
    with pytest.raises(ValueError, match="samples"):
        D.sbc_ranks(samples[:, :10], theta)
    with pytest.raises(ValueError, match="NaN or inf"):
        D.sbc_ranks(samples, theta.at[0, 0].set(jnp.inf))
    with pytest.raises(ValueError, match="NaN"):
        D.sbc_ranks(samples, theta, statistics=(samples[..., 0] * jnp.nan, theta[:, 0]))
    with pytest.raises(TypeError, match="statistics"):
        D.sbc_ranks(samples, theta, statistics=3.0)
    with pytest.raises(ValueError, match="0..10"):
        D.sbc_test(np.array([[11]]), 10)
    with pytest.raises(ValueError, match="num_bins"):
        D.sbc_test(np.zeros((5, 1), int), 10, num_bins=50)
