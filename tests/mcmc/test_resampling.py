"""Chain-mixture importance resampling: mode masses, moments, determinism, the ESS warning."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest

import sbi_kit as sk

_WIDE_1D = dist.Normal(jnp.zeros(1), 3.0).to_event(1)


def _two_modes(th):
    """Modes at ±2 (sd 0.3) with masses 0.8 and 0.2."""
    return jnp.logaddexp(
        jnp.log(0.8) + dist.Normal(2.0, 0.3).log_prob(th[0]),
        jnp.log(0.2) + dist.Normal(-2.0, 0.3).log_prob(th[0]),
    )


@pytest.mark.slow  # ≈ 12 s cold; resample_chains' doctest checks the mode masses by default
def test_resampling_gives_each_mode_its_mass_whatever_the_chains_share():
    # three chains in the light mode, one in the heavy one: pooled draws would put 75 % left
    chains = jnp.concatenate(
        [
            2.0 + 0.3 * jax.random.normal(jax.random.key(1), (1, 50, 1)),
            -2.0 + 0.3 * jax.random.normal(jax.random.key(2), (3, 50, 1)),
        ]
    )
    draws, ess = sk.mcmc.resample_chains(
        jax.random.key(0), _two_modes, _WIDE_1D, chains, 4000, sk.mcmc.ChainMixtureResampling()
    )
    right = np.asarray(draws[:, 0] > 0)
    # binomial sd of the share is 0.006 at 4,000 draws; 0.03 allows for the weights' noise
    assert abs(right.mean() - 0.8) < 0.03
    assert abs(float(draws[right, 0].mean()) - 2.0) < 0.03
    assert abs(float(draws[right, 0].std()) - 0.3) < 0.03
    assert float(ess) > 4000


_MEAN = jnp.array([0.3, -0.2, 0.1])
_COV = jnp.array([[0.04, 0.03, 0.0], [0.03, 0.09, -0.02], [0.0, -0.02, 0.02]])
_GAUSSIAN = dist.MultivariateNormal(_MEAN, _COV)
_BOX = dist.Uniform(-jnp.ones(3) * 2, jnp.ones(3) * 2).to_event(1)


def _sample_gaussian(resampling, **kwargs):
    """The tests' one MCMC set-up (the same sizes, so that the chains compile once)."""
    return sk.mcmc.sample(
        jax.random.key(3),
        _GAUSSIAN.log_prob,
        _BOX,
        5000,
        num_chains=6,
        num_warmup=150,
        resampling=resampling,
        **kwargs,
    )


def test_sample_with_resampling_matches_a_correlated_gaussian_in_a_box():
    result = _sample_gaussian(sk.mcmc.ChainMixtureResampling())
    assert result.samples.shape == (5000, 3)
    assert result.chains.shape == (6, 25, 3)  # draws_per_chain, not num_samples / chains
    assert result.importance_ess is not None and result.importance_ess > 5000
    assert "importance ESS" in result.summary()
    sd = jnp.sqrt(jnp.diag(_COV))
    # the mean's Monte Carlo sd is sd / 70 here; 0.05 sd is a loose, stable bound
    assert jnp.all(jnp.abs(result.samples.mean(0) - _MEAN) < 0.05 * sd)
    assert jnp.allclose(jnp.cov(result.samples.T), _COV, atol=0.005)
    again = _sample_gaussian(sk.mcmc.ChainMixtureResampling())
    np.testing.assert_array_equal(np.asarray(result.samples), np.asarray(again.samples))


def test_sample_with_resampling_warns_on_a_small_importance_ess():
    # one candidate per sample: the weights' ESS is below num_samples unless all are equal
    strict = sk.mcmc.ChainMixtureResampling(candidates_per_sample=1, min_ess_fraction=1.0)
    with pytest.warns(RuntimeWarning, match="importance resampling of the chains is unreliable"):
        _sample_gaussian(strict, raise_on_poor_mixing=False)
