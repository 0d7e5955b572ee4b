"""Posterior predictive checks: exact p-values for an exchangeable x_o, and failures that matter.

An ``x_o`` drawn like the replicates is exchangeable with them, so its p-value is uniform on
{1/(m+1), …, 1}; a misplaced ``x_o`` (shifted, breaking the replicates' correlation, off a
constant coordinate, a stack shifted by less than one sd) fails at p = 1/(m+1).
"""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from scipy import stats

import sbi_kit as sk

from .conftest import NOISE_SD, GaussianPosterior, SamplesOnlyPosterior

M = 200  # replicates


def test_p_value_is_uniform_when_x_o_is_one_more_replicate():
    rng = np.random.default_rng(0)
    p = []
    for _ in range(300):
        draws = rng.standard_gamma(2.0, size=(M + 1, 4))  # skewed, so no normal assumption
        p.append(sk.diagnostics.predictive_check(draws[:-1], draws[-1]).p_value)
    p = np.array(p)
    assert p.min() >= 1 / (M + 1)
    # uniform on the grid {k / (M + 1)}: a KS test and the tail counted directly
    assert stats.kstest(p, "uniform").pvalue > 0.01
    assert 0 <= np.mean(p < 0.05) <= 0.09


def test_a_shifted_observation_fails_at_the_smallest_p_value():
    rng = np.random.default_rng(1)
    replicates = rng.normal(size=(M, 3))
    check = sk.diagnostics.predictive_check(replicates, np.array([4.0, 0.0, 0.0]))
    assert not check.passed
    assert check.p_value == pytest.approx(1 / (M + 1))
    assert check.num_replicates == M and check.statistics.shape == (M,)
    assert "below the level 0.05" in check.message()
    typical = sk.diagnostics.predictive_check(replicates, np.zeros(3))
    assert typical.passed and typical.p_value > 0.5
    assert typical.message().endswith(").")


def test_an_observation_that_breaks_the_correlation_fails():
    """Each coordinate of x_o is typical (|z| = 1), their combination is not: the copula
    Mahalanobis statistic sees it where a per-coordinate one would not."""
    rng = np.random.default_rng(2)
    a = rng.normal(size=M)
    replicates = np.c_[a, a + 0.05 * rng.normal(size=M)]
    check = sk.diagnostics.predictive_check(replicates, np.array([1.0, -1.0]))
    assert check.p_value == pytest.approx(1 / (M + 1))


def test_discrete_data_with_ties_and_a_constant_coordinate():
    rng = np.random.default_rng(3)
    counts = np.c_[rng.poisson(0.3, size=(M + 1, 3)), np.zeros(M + 1)]
    check = sk.diagnostics.predictive_check(counts[:-1], counts[-1])
    assert np.isfinite(check.statistic) and check.p_value > 0.05
    off = counts[-1].copy()
    off[3] = 1.0  # never seen among the replicates: x_o is impossible under them
    assert sk.diagnostics.predictive_check(counts[:-1], off).p_value == pytest.approx(1 / (M + 1))


def test_a_stack_shifted_by_half_a_standard_deviation_fails():
    """n = 50 i.i.d. observations shifted by 0.5 sd: no single one is an outlier, the stack is."""
    rng = np.random.default_rng(4)
    replicates = rng.normal(size=(M, 50, 2))
    same = sk.diagnostics.predictive_check(replicates, rng.normal(size=(50, 2)), iid=True)
    assert same.passed
    shifted = rng.normal(size=(50, 2)) + 0.5
    check = sk.diagnostics.predictive_check(replicates, shifted, iid=True)
    assert check.p_value == pytest.approx(1 / (M + 1))


class _ShiftedPosterior(GaussianPosterior):
    """The exact posterior moved by 3 (its sd is 0.45): misplaced, as a bad estimator's."""

    def sample(self, key, x_o, num_samples):
        return super().sample(key, x_o, num_samples) + 3.0


def test_posterior_predictive_check_of_an_exact_and_a_misplaced_posterior(conjugate_simulator):
    x_o = jnp.array([0.4, -0.7])
    good = sk.diagnostics.posterior_predictive_check(
        jax.random.key(0), GaussianPosterior(1.0), conjugate_simulator, x_o
    )
    assert good.passed and good.num_replicates == 200 and good.num_dropped == 0
    with pytest.warns(RuntimeWarning, match="posterior_predictive_check: x_o's outlyingness"):
        bad = sk.diagnostics.posterior_predictive_check(
            jax.random.key(0), _ShiftedPosterior(1.0), conjugate_simulator, x_o
        )
    assert not bad.passed and bad.p_value == pytest.approx(1 / 201)
    quiet = sk.diagnostics.posterior_predictive_check(
        jax.random.key(0), _ShiftedPosterior(1.0), conjugate_simulator, x_o, warn=False
    )
    assert quiet.p_value == bad.p_value
    again = sk.diagnostics.posterior_predictive_check(
        jax.random.key(0), GaussianPosterior(1.0), conjugate_simulator, x_o
    )
    assert again.p_value == good.p_value  # a fixed key gives the same check


class _StackPosterior(SamplesOnlyPosterior):
    """The exact posterior of n i.i.d. observations of the conjugate problem."""

    def sample(self, key, x_o, num_samples):
        stack = jnp.atleast_2d(x_o)
        n, s2 = stack.shape[0], NOISE_SD**2
        mean, sd = stack.sum(0) / (n + s2), jnp.sqrt(s2 / (n + s2))
        return mean + sd * jax.random.normal(key, (num_samples, 2))


def test_posterior_predictive_check_of_a_stack_with_dropped_simulations():
    """Replicate stacks keep their θ even when some of their simulations fail (NaN)."""
    prior = dist.Normal(jnp.zeros(2), 1.0).to_event(1)

    def flaky(key, theta):
        k1, k2 = jax.random.split(key)
        x = theta + NOISE_SD * jax.random.normal(k1, (2,))
        return jnp.where(jax.random.uniform(k2) < 0.05, jnp.nan, x)

    sim = sk.Simulator(prior, flaky)
    rng = np.random.default_rng(5)
    theta = rng.normal(size=2)
    x_o = theta + NOISE_SD * rng.normal(size=(10, 2))
    with pytest.warns(RuntimeWarning, match="dropped"):
        check = sk.diagnostics.posterior_predictive_check(
            jax.random.key(1), _StackPosterior(1.0), sim, x_o
        )
    assert check.passed and check.num_dropped > 0
    assert check.num_replicates == 200  # 10 simulations each: none lost all of them
