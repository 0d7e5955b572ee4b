"""TARP: agreement with the `tarp` package, its known faults fixed, and calibration verdicts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sbi_kit as sk

from .conftest import gaussian_draws

D = sk.diagnostics


def _package_inputs(seed=0, n=500, L=97, d=3):
    # L = 97 (prime) with B = n // 10 = 50 bins: f = c/97 never equals a grid level k/50 except
    # at 0 and 1, so the package's half-open histogram bins and `f < α` agree without ties.
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=(n, d))
    samples = rng.normal(size=(L, n, d))
    references = rng.uniform(-2, 2, size=(n, d))
    return samples, theta, references


METRICS = {"euclidean": D.EuclideanDistance(), "manhattan": D.ManhattanDistance()}


@pytest.mark.parametrize("metric", list(METRICS))
def test_matches_tarp_package_on_fixed_references(metric):
    tarp_pkg = pytest.importorskip("tarp")
    samples, theta, refs = _package_inputs()
    ecp_ref, alpha_ref = tarp_pkg.get_tarp_coverage(
        samples.copy(), theta.copy(), references=refs, metric=metric, norm=False
    )
    # the package's grid spans [min f, max f]; it is [0, 1] for these inputs
    assert alpha_ref[0] == 0.0 and alpha_ref[-1] == 1.0
    ecp, alpha = D.tarp(
        jax.random.key(0),
        samples,
        theta,
        references=refs,
        metric=METRICS[metric],
        normalize=False,
    )
    np.testing.assert_allclose(np.asarray(alpha), alpha_ref, atol=1e-6)
    np.testing.assert_allclose(np.asarray(ecp), ecp_ref, atol=1e-6)


def test_given_references_are_normalised_with_the_samples():
    tarp_pkg = pytest.importorskip("tarp")
    rng = np.random.default_rng(1)
    n, L, d = 500, 97, 3
    theta = rng.normal(size=(n, d))
    mean = (theta + 0.5 * rng.normal(size=(n, d))) / 1.25
    samples = mean + 0.3 * np.sqrt(0.2) * rng.normal(size=(L, n, d))  # overconfident
    refs = rng.uniform(-2, 2, size=(n, d)) * 5.0 + 3.0  # in θ's coordinates
    lo = theta.min(0)
    scale = theta.max(0) - lo + 1e-10
    ours, _ = D.tarp(jax.random.key(0), samples, theta, references=refs, normalize=True)
    # ours = the package given references that were rescaled by hand
    fixed, alpha_pkg = tarp_pkg.get_tarp_coverage(
        samples.copy(), theta.copy(), references=(refs - lo) / scale, norm=True
    )
    assert alpha_pkg[0] == 0.0 and alpha_pkg[-1] == 1.0
    np.testing.assert_allclose(np.asarray(ours), fixed, atol=1e-6)
    # the package itself treats the raw references as normalised coordinates (its fault) ...
    faulty, _ = tarp_pkg.get_tarp_coverage(samples.copy(), theta.copy(), references=refs, norm=True)
    mixed, _ = D.tarp(
        jax.random.key(0),
        (samples - lo) / scale,
        (theta - lo) / scale,
        references=refs,
        normalize=False,
    )
    np.testing.assert_allclose(np.asarray(mixed), faulty, atol=1e-6)
    # ... which changes the curve
    assert np.abs(faulty - np.asarray(ours)).max() > 0.02


def test_grid_spans_unit_interval_even_when_coverage_values_do_not():
    # every f_i lies in [0.25, 0.75]: the package's grid would span only that range
    n, L = 200, 100
    theta = jnp.zeros((n, 1))
    refs = jnp.full((n, 1), -1.0)
    base = jnp.linspace(-1.0, 1.0, L)[:, None, None] * jnp.ones((1, n, 1))
    samples = base * jnp.linspace(0.34, 0.5, n)[None, :, None] * 3.0
    ecp, alpha = D.tarp(
        jax.random.key(0), samples, theta, references=refs, normalize=False, num_bins=20
    )
    assert float(alpha[0]) == 0.0 and float(alpha[-1]) == 1.0
    assert alpha.shape == (21,) and ecp.shape == (21,)
    assert float(ecp[0]) == 0.0 and float(ecp[-1]) == 1.0
    np.testing.assert_array_equal(np.asarray(ecp[:4]), 0.0)  # nothing below α = 0.15


def test_bootstrap_replicates_differ_and_repeat_with_the_key():
    theta, samples, _, _ = gaussian_draws(3, 300, 50, 1.0)
    ecp, alpha = D.tarp(jax.random.key(7), samples, theta, num_bootstrap=20)
    assert ecp.shape == (20, alpha.shape[0])
    distinct = {tuple(np.round(np.asarray(r), 6)) for r in ecp}
    assert len(distinct) == 20  # the package's replicates after the first are identical
    again, _ = D.tarp(jax.random.key(7), samples, theta, num_bootstrap=20)
    np.testing.assert_array_equal(np.asarray(ecp), np.asarray(again))
    # the bootstrap spread is that of a proportion: sd of ECP(1/2) ≈ sqrt(.25 / 300) ≈ 0.029
    sd_mid = float(jnp.std(ecp[:, alpha.shape[0] // 2]))
    assert 0.01 < sd_mid < 0.06


@pytest.mark.parametrize(
    ("scale", "sign"), [(1.0, 0), (0.5, -1), (2.0, +1)], ids=["exact", "x0.5", "x2"]
)
def test_verdicts_on_gaussian_posteriors(scale, sign):
    # 1,000 simulations × 200 samples of the conjugate Gaussian problem (d = 2), seeded
    theta, samples, _, _ = gaussian_draws(14, 1000, 200, scale)
    ecp, alpha = D.tarp(jax.random.key(12), samples, theta)
    atc, p = D.tarp_summary(ecp, alpha, num_sims=1000)
    if sign == 0:
        assert p > 0.05 and abs(atc) < 0.02
    else:
        assert p < 1e-6 and np.sign(atc) == sign and abs(atc) > 0.03


def test_tarp_summary_matches_sbi_definitions():
    alpha = np.linspace(0, 1, 11)
    ecp = alpha**2
    atc, p = D.tarp_summary(ecp, alpha)
    np.testing.assert_allclose(atc, np.sum((ecp[5:] - alpha[5:]) * 0.1), rtol=1e-12)
    from scipy.stats import ks_2samp

    np.testing.assert_allclose(p, ks_2samp(ecp, alpha).pvalue, rtol=1e-12)
    atc_b, p_b = D.tarp_summary(np.stack([ecp, alpha]), alpha, num_sims=100)
    assert atc_b.shape == (2,) and p_b.shape == (2,)
    np.testing.assert_allclose(atc_b[1], 0.0, atol=1e-12)


def test_tarp_is_jittable_and_matches_eager():
    theta, samples, _, _ = gaussian_draws(0, 100, 30, 1.0)
    eager, _ = D.tarp(jax.random.key(1), samples, theta)
    jitted, _ = jax.jit(lambda k, s, t: D.tarp(k, s, t))(jax.random.key(1), samples, theta)
    np.testing.assert_array_equal(np.asarray(eager), np.asarray(jitted))


def test_bad_inputs_raise_clear_errors():
    theta, samples, _, _ = gaussian_draws(0, 50, 10, 1.0)
    with pytest.raises(ValueError, match="samples"):
        D.tarp(jax.random.key(0), samples[:, :40], theta)
    with pytest.raises(TypeError, match=r"`metric`.*got str 'cosine'"):
        D.tarp(jax.random.key(0), samples, theta, metric="cosine")
    for old, new in (("euclidean", "EuclideanDistance"), ("manhattan", "ManhattanDistance")):
        with pytest.raises(TypeError, match=rf"tarp: `metric`.*{new}\(\)"):
            D.tarp(jax.random.key(0), samples, theta, metric=old)
    with pytest.raises(ValueError, match="references"):
        D.tarp(jax.random.key(0), samples, theta, references=theta[:10])
    with pytest.raises(ValueError, match="`samples` contains NaN or inf"):
        D.tarp(jax.random.key(0), samples.at[0, 0, 0].set(jnp.nan), theta)
    for value in (jnp.inf, -jnp.inf):  # caught in the same pass as the distances
        with pytest.raises(ValueError, match="`samples` contains NaN or inf"):
            D.tarp(jax.random.key(0), samples.at[3, 7, 0].set(value), theta, normalize=False)
    with pytest.raises(ValueError, match="`theta` contains NaN or inf"):
        D.tarp(jax.random.key(0), samples, theta.at[2, 0].set(jnp.nan))
    with pytest.raises(ValueError, match="`references` contains NaN or inf"):
        D.tarp(jax.random.key(0), samples, theta, references=theta.at[1, 0].set(jnp.inf))
    with pytest.raises(ValueError, match="num_bins"):
        D.tarp(jax.random.key(0), samples, theta, num_bins=0)
