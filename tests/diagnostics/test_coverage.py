"""Expected coverage of highest-posterior-density regions."""

import jax.numpy as jnp
import numpy as np
import pytest

import sbi_kit as sk

from .conftest import gaussian_draws

D = sk.diagnostics


def test_hand_computed_curve():
    # 4 simulations, L = 4: counts of samples denser than the truth are 0, 1, 2, 4
    lp_samples = jnp.array(
        [[0.0, 5.0, 5.0, 5.0], [0.0, 0.0, 5.0, 5.0], [0.0, 0.0, 0.0, 5.0], [0.0, 0.0, 0.0, 5.0]]
    )
    lp_theta = jnp.array([1.0, 1.0, 1.0, -jnp.inf])
    levels, cov = D.expected_coverage(lp_samples, lp_theta, num_levels=4)
    # r* = 0, 1/4, 1/2, 1: covered at level c iff r* < c (all at c = 1)
    np.testing.assert_allclose(np.asarray(levels), [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(np.asarray(cov), [0, 0.25, 0.5, 0.75, 1.0])


@pytest.mark.parametrize(
    ("scale", "sign"), [(1.0, 0), (0.5, -1), (2.0, +1)], ids=["exact", "x0.5", "x2"]
)
def test_gaussian_posteriors(scale, sign):
    # 1,000 simulations × 200 samples of the conjugate problem; for a 2-d Gaussian the exact
    # coverage of the c-HPD region of a posterior with sd × s is 1 − (1 − c)^(s²)
    _, _, lp_s, lp_t = gaussian_draws(32, 1000, 200, scale)
    levels, cov = D.expected_coverage(lp_s, lp_t, num_levels=20)
    exact = 1 - (1 - np.asarray(levels)) ** (scale**2)
    # binomial sd ≤ 0.016 at n = 1,000, plus the O(1/L) discreteness of r*
    np.testing.assert_allclose(np.asarray(cov), exact, atol=0.05)
    area, p = D.coverage_summary(levels, cov, num_sims=1000)
    if sign == 0:
        assert p > 0.01 and abs(area) < 0.02
    else:
        assert p < 1e-6 and np.sign(area) == sign


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="num_sims"):
        D.expected_coverage(jnp.zeros((10, 5)), jnp.zeros(4))
    with pytest.raises(ValueError, match="NaN"):
        D.expected_coverage(jnp.zeros((10, 5)), jnp.zeros(5).at[0].set(jnp.nan))
    with pytest.raises(ValueError, match=r"\+inf"):
        D.expected_coverage(jnp.zeros((10, 5)).at[0, 0].set(jnp.inf), jnp.zeros(5))
