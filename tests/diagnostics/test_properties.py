"""Property tests (hypothesis): output shapes and ranges, and clear errors on NaN/inf inputs."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sbi_kit as sk

D = sk.diagnostics

SHAPES = settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
VALUES = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _key():
    import jax

    return jax.random.key(0)


@st.composite
def posterior_draws(draw):
    L = draw(st.integers(1, 6))
    n = draw(st.integers(1, 12))
    d = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    return rng.normal(size=(L, n, d)).astype(np.float32), rng.normal(size=(n, d)).astype(np.float32)


@SHAPES
@given(
    posterior_draws(),
    st.integers(1, 5),
    st.sampled_from([D.EuclideanDistance(), D.ManhattanDistance()]),
)
def test_tarp_curve_is_a_cdf_on_the_unit_interval(draws, num_bins, metric):
    samples, theta = draws
    ecp, alpha = D.tarp(_key(), samples, theta, num_bins=num_bins, metric=metric)
    ecp, alpha = np.asarray(ecp), np.asarray(alpha)
    assert ecp.shape == alpha.shape == (num_bins + 1,)
    assert alpha[0] == 0 and alpha[-1] == 1 and ecp[0] == 0 and ecp[-1] == 1
    assert np.all(np.diff(ecp) >= 0) and np.all((ecp >= 0) & (ecp <= 1))


@SHAPES
@given(posterior_draws())
def test_sbc_ranks_and_coverage_ranges(draws):
    samples, theta = draws
    L, n, d = samples.shape
    r = np.asarray(D.sbc_ranks(samples, theta))
    assert r.shape == (n, d) and r.min() >= 0 and r.max() <= L
    levels, cov = D.expected_coverage(-(samples**2).sum(-1), -(theta**2).sum(-1), num_levels=4)
    assert np.asarray(levels).shape == np.asarray(cov).shape == (5,)
    assert np.all(np.diff(np.asarray(cov)) >= 0)


@SHAPES
@given(st.integers(2, 9), st.integers(2, 9), st.integers(1, 3), st.integers(0, 2**16))
def test_mmd_shapes_symmetry_and_sign(m, n, d, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(m, d)).astype(np.float32)
    y = (rng.normal(size=(n, d)) + 0.5).astype(np.float32)
    kernel = D.GaussianKernel(1.0)
    for est in (D.UStatistic(), D.VStatistic()):
        a, b = (
            float(D.mmd(x, y, kernel=kernel, estimator=est)),
            float(D.mmd(y, x, kernel=kernel, estimator=est)),
        )
        assert np.isfinite(a) and abs(a - b) < 1e-5
    assert float(D.mmd(x, y, kernel=kernel, estimator=D.VStatistic())) >= -1e-6


@st.composite
def poisoned(draw, shape):
    """An array of the given shape with one NaN, +inf or −inf at a random position."""
    arr = np.zeros(shape, dtype=np.float32) + 0.5
    idx = tuple(draw(st.integers(0, s - 1)) for s in shape)
    arr[idx] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return arr


GOOD_SAMPLES = np.random.default_rng(0).normal(size=(4, 5, 2)).astype(np.float32)
GOOD_THETA = np.random.default_rng(1).normal(size=(5, 2)).astype(np.float32)


@VALUES
@given(poisoned((4, 5, 2)), poisoned((5, 2)), st.booleans())
def test_calibration_diagnostics_refuse_non_finite_inputs(bad_samples, bad_theta, which):
    samples, theta = (bad_samples, GOOD_THETA) if which else (GOOD_SAMPLES, bad_theta)
    with pytest.raises(ValueError, match="NaN or inf"):
        D.tarp(_key(), samples, theta)
    with pytest.raises(ValueError, match="NaN or inf"):
        D.sbc_ranks(samples, theta)


@VALUES
@given(poisoned((6, 2)), st.booleans())
def test_mmd_and_weights_refuse_non_finite_inputs(bad, first):
    good = np.zeros((6, 2), dtype=np.float32)
    x, y = (bad, good) if first else (good, bad)
    with pytest.raises(ValueError, match="NaN or inf"):
        D.mmd(x, y)
    with pytest.raises(ValueError, match="NaN or inf"):
        D.mmd_test(_key(), x, y, num_permutations=5)
    with pytest.raises(ValueError, match="NaN or inf"):
        D.mmd(good, good, weights=bad.sum(axis=1))  # NaN/±inf propagate
    with pytest.raises(ValueError, match="NaN or inf"):
        D.optimal_weights(bad)


@VALUES
@given(st.lists(st.integers(1, 4), min_size=1, max_size=4))
def test_wrong_shapes_raise_value_errors(shape):
    theta = np.zeros((3, 2), dtype=np.float32)
    samples = np.zeros(shape, dtype=np.float32)
    if len(shape) == 3 and tuple(shape[1:]) == (3, 2):
        return  # a valid shape
    with pytest.raises(ValueError, match=r"dimensions|\(num_samples, num_sims, d\)"):
        D.tarp(_key(), samples, theta)
    with pytest.raises(ValueError, match=r"dimensions|\(L, num_sims, d\)"):
        D.sbc_ranks(samples, theta)
