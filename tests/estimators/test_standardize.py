"""Z-scoring: bit for bit the old statistics on ordinary data; right where they were wrong."""

import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sbi_kit as sk
from sbi_kit.estimators import Standardizer


@pytest.fixture(scope="module")
def two_moons_x():
    return sk.simulate(jax.random.key(0), sk.tasks.get("two_moons"), 2000).x


def _fit_quietly(data, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ordinary data must not warn
        return Standardizer.fit(data, **kwargs)


def test_ordinary_data_get_the_float32_statistics_bit_for_bit(two_moons_x):
    """What every posterior trained so far used: ``jnp.mean`` and ``jnp.std`` in float32."""
    for data in (two_moons_x, 3.0 + 0.01 * two_moons_x, -50.0 * two_moons_x):
        s = _fit_quietly(data)
        np.testing.assert_array_equal(s.loc, jnp.mean(data, axis=0))
        np.testing.assert_array_equal(s.scale, jnp.std(data, axis=0))
        assert s.loc.dtype == s.scale.dtype == jnp.float32


@pytest.mark.parametrize("factor", [1e30, 1e-9, 1e-25, 1e36])
def test_huge_and_tiny_scales_z_score_like_the_unscaled_data(two_moons_x, factor):
    """Before: x·1e30 got scale inf (z-scores of 0) and x·1e-9 got scale 1 (z-scores ~1e-9),
    so the posterior ignored x. Now the scale is factor × the unscaled scale (float32
    rounding: 1e-6 relative) and the z-scores agree within 1e-5."""
    plain = _fit_quietly(two_moons_x)
    scaled_data = two_moons_x * factor
    scaled = _fit_quietly(scaled_data, name="x")
    assert np.isfinite(scaled.scale).all()
    np.testing.assert_allclose(np.asarray(scaled.scale) / factor, plain.scale, rtol=1e-5)
    np.testing.assert_allclose(scaled(scaled_data), plain(two_moons_x), atol=1e-5)


def test_a_constant_column_is_named_once_and_passed_through(two_moons_x):
    data = two_moons_x.at[:, 1].set(7.25)
    with pytest.warns(UserWarning, match=r"fit: column 1 of `x` is constant across all 2000") as w:
        s = Standardizer.fit(data, name="x", fn="fit")
    assert len(w) == 1
    assert float(s.scale[1]) == 1.0 and float(s.loc[1]) == 7.25  # z-scores exactly 0
    assert float(jnp.abs(s(data)[:, 1]).max()) == 0.0
    assert float(s.scale[0]) == float(jnp.std(data[:, 0]))
    # constant up to float32 rounding (a few ulps of 1e6) is constant too
    noisy = data.at[:, 1].set(1e6 + jnp.where(jnp.arange(2000) % 2 == 0, 0.0, 0.0625))
    with pytest.warns(UserWarning, match="column 1 of `x` is constant"):
        Standardizer.fit(noisy, name="x")


def test_a_small_but_informative_column_is_scaled(two_moons_x):
    """The relative threshold: 1e-9-sized values vary a lot relative to themselves."""
    data = two_moons_x.at[:, 0].multiply(1e-9)
    s = _fit_quietly(data)
    np.testing.assert_allclose(s(data)[:, 0], (data[:, 0] - s.loc[0]) / s.scale[0])
    np.testing.assert_allclose(float(jnp.std(s(data)[:, 0])), 1.0, rtol=1e-4)


def test_one_extreme_outlier_is_named(two_moons_x):
    """Before: one 1e30 in a column gave scale inf and z-scores of 0 for that column."""
    data = two_moons_x.at[5, 1].set(1e30)
    with pytest.warns(UserWarning, match=r"column 1 of `x` is dominated by a few extreme") as w:
        s = Standardizer.fit(data, name="x")
    assert len(w) == 1
    assert re.search(
        r"standard deviation 2.24e\+28 .* z-scored they differ by \d\.\de-2\d", str(w[0].message)
    )
    assert np.isfinite(s.scale).all()
    np.testing.assert_allclose(float(s.scale[1]), 1e30 / np.sqrt(2000), rtol=1e-3)
    # heavy tails are not outliers: a Cauchy column is z-scored without a warning
    cauchy = jax.random.cauchy(jax.random.key(3), (2000, 1))
    _fit_quietly(cauchy)


def test_a_nearly_constant_column_is_named_with_its_counts(two_moons_x):
    """SIR's first count: 0 in 999 of 1,000 simulations, one 1 that z-scores to 31.6 sd (an
    NLE with a MAF fitted to such data turned non-finite in its first epochs); the rows are
    counted and the distance given. A binary column with 3 % ones has a bulk spread and is
    z-scored without a word, as are the varying columns beside it."""
    data = two_moons_x[:1000].at[:, 0].set(0.0).at[454, 0].set(1.0)
    with pytest.warns(UserWarning, match=r"column 0 of `x` is nearly constant") as w:
        Standardizer.fit(data, name="x", fn="NLE.fit")
    assert len(w) == 1
    message = str(w[0].message)
    assert "takes the value 0 in 999 of its 1000 simulations" in message, message
    assert "the other one lies 31.6 standard deviations out" in message, message
    seven = data.at[:, 0].set(-1.0).at[:7, 0].set(2.5)  # 7 rare values, 1 % at each end: 10
    with pytest.warns(UserWarning, match=r"column 0 of `x` is nearly constant") as w:
        Standardizer.fit(seven, name="x")
    assert len(w) == 1 and "the other 7 lie up to 11.9 standard" in str(w[0].message)
    both = seven.at[:, 1].set(data[:, 0])
    with pytest.warns(UserWarning, match=r"2 columns \[0, 1\] of `x` are nearly constant"):
        Standardizer.fit(both, name="x")
    binary = data.at[:, 0].set(jnp.where(jnp.arange(1000) % 33 == 0, 1.0, 0.0))
    s = _fit_quietly(binary)
    assert float(s.scale[0]) == pytest.approx(float(jnp.std(binary[:, 0])))


def test_a_column_whose_z_scores_overflow_is_refused():
    col = jnp.full((10, 1), -3.4e38).at[0, 0].set(3.4e38)
    data = jnp.concatenate([jnp.linspace(0.0, 1.0, 10)[:, None], col], axis=1)
    with pytest.raises(ValueError, match=r"NPE.fit: column 1 of `x` cannot be z-scored in float32"):
        Standardizer.fit(data, name="x", fn="NPE.fit")


def test_elements_of_multidimensional_observations_are_named():
    data = jax.random.normal(jax.random.key(0), (50, 3, 4)).at[:, 2, 1].set(0.0)
    with pytest.warns(UserWarning, match=r"element \(2, 1\) of `x` is constant"):
        s = Standardizer.fit(data, name="x")
    assert s.loc.shape == s.scale.shape == (3, 4) and float(s.scale[2, 1]) == 1.0


def test_inside_jit_the_relative_threshold_applies_without_checks():
    data = jnp.stack([jnp.linspace(0.0, 1e-9, 20), jnp.full(20, 4.0)], axis=1)
    s = jax.jit(Standardizer.fit)(data)
    np.testing.assert_allclose(s.scale, [float(jnp.std(data[:, 0])), 1.0], rtol=1e-6)
