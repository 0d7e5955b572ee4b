"""sk.mcmc: NUTS and ensemble slice sampling against analytic posteriors; convergence checks."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

import sbi_kit as sk
from tests.conftest import NOISE_SD, gaussian_posterior


@pytest.fixture(scope="module")
def gaussian_with_likelihood(gaussian_simulator):
    """The conjugate Gaussian problem of conftest, with its exact likelihood."""
    return sk.Simulator(
        gaussian_simulator.prior,
        gaussian_simulator.simulate,
        lambda theta, x: dist.Normal(theta, NOISE_SD).log_prob(x).sum(),
    )


def _check_mean_and_sd(result, mean, sd, sd_rtol=0.1):
    """Mean within 4 Monte Carlo standard errors (from the ESS), sd within ``sd_rtol``."""
    samples = np.asarray(result.samples)
    standard_error = sd / np.sqrt(result.ess)
    assert np.all(np.abs(samples.mean(0) - mean) < 4 * standard_error), (samples.mean(0), mean)
    np.testing.assert_allclose(samples.std(0), sd, rtol=sd_rtol)


def test_reference_posterior_of_a_simulator_matches_the_conjugate_posterior(
    gaussian_with_likelihood,
):
    x_o = jnp.array([0.5, -0.3])
    result = sk.mcmc.reference_posterior(
        jax.random.key(0), gaussian_with_likelihood, x_o, 4000, num_chains=8, num_warmup=300
    )
    mean, sd = gaussian_posterior(x_o)
    assert result.samples.shape == (4000, 2) and result.chains.shape[:2] == (8, 500)
    assert result.max_r_hat < 1.01 and result.min_ess > 1000 and result.num_divergent == 0
    _check_mean_and_sd(result, np.asarray(mean), float(sd))


def test_reference_posterior_of_a_numpyro_model_keeps_the_support():
    """θ ~ U(0, 1), x ~ N(θ, 0.3²), x_o = 0.95: a normal truncated to [0, 1]."""

    def model(x=None):
        theta = numpyro.sample("theta", dist.Uniform(0.0, 1.0))
        numpyro.sample("x", dist.Normal(theta, 0.3), obs=x)

    result = sk.mcmc.reference_posterior(
        jax.random.key(1),
        model,
        jnp.array([0.95]),
        4000,
        observed="x",
        num_chains=8,
        num_warmup=300,
        thinning=1,
    )
    samples = np.asarray(result.samples[:, 0])
    assert samples.min() >= 0.0 and samples.max() <= 1.0
    grid = (np.arange(20_000) + 0.5) / 20_000
    weights = np.exp(-0.5 * ((grid - 0.95) / 0.3) ** 2)
    mean = np.sum(grid * weights) / weights.sum()
    sd = np.sqrt(np.sum((grid - mean) ** 2 * weights) / weights.sum())
    _check_mean_and_sd(result, mean, sd)


def test_ensemble_slice_sampler_matches_a_gaussian():
    prior = dist.Normal(jnp.zeros(2), 3.0).to_event(1)
    target = dist.MultivariateNormal(jnp.array([1.0, -1.0]), jnp.array([[1.0, 0.5], [0.5, 1.0]]))
    result = sk.mcmc.sample(
        jax.random.key(2),
        target.log_prob,
        prior,
        4000,
        sampler=sk.mcmc.EnsembleSlice(),
        num_chains=8,
        num_warmup=300,
    )
    assert result.num_divergent == 0 and result.max_r_hat < 1.05
    # The chains of an ensemble move together, so their ESS overstates the information:
    # a fixed tolerance of 0.15 sd instead of standard errors from the ESS.
    samples = np.asarray(result.samples)
    np.testing.assert_allclose(samples.mean(0), [1.0, -1.0], atol=0.15)
    np.testing.assert_allclose(samples.std(0), 1.0, rtol=0.15)
    assert abs(np.corrcoef(np.asarray(result.samples).T)[0, 1] - 0.5) < 0.1


def _two_modes(theta):
    """Two well-separated modes at ±5: chains started in different modes never meet."""
    return jnp.logaddexp(
        dist.Normal(-5.0, 0.2).log_prob(theta).sum(), dist.Normal(5.0, 0.2).log_prob(theta).sum()
    )


def test_unmixed_chains_are_refused_or_warned_about():
    prior = dist.Normal(jnp.zeros(1), 10.0).to_event(1)
    init = jnp.array([[-5.0], [-5.1], [5.0], [5.1]])
    kwargs = dict(num_chains=4, num_warmup=100, init=init)
    with pytest.raises(RuntimeError, match="did not mix: split-R̂"):
        sk.mcmc.sample(jax.random.key(3), _two_modes, prior, 400, **kwargs)
    with pytest.warns(RuntimeWarning, match="did not mix"):
        result = sk.mcmc.sample(
            jax.random.key(3), _two_modes, prior, 400, raise_on_poor_mixing=False, **kwargs
        )
    assert result.max_r_hat > 2.0


class _CountingGaussian(eqx.Module):
    """N(mean, 1) in θ; counts how often JAX traces it (i.e. how often it is compiled)."""

    mean: jax.Array
    traces: list = eqx.field(static=True)

    def __call__(self, theta):
        self.traces.append(1)
        return dist.Normal(self.mean, 1.0).log_prob(theta).sum()


def test_a_second_run_with_another_density_of_the_same_code_does_not_recompile():
    """Warm-up and sampling are one compiled program, cached on the density's code: the
    learned-likelihood posteriors rely on this to draw for a new observation without a
    recompilation."""
    prior = dist.Normal(jnp.zeros(2), 5.0).to_event(1)
    traces: list = []
    kwargs = dict(num_chains=4, num_warmup=100, max_r_hat=None)
    first = sk.mcmc.sample(
        jax.random.key(0), _CountingGaussian(jnp.zeros(2), traces), prior, 400, **kwargs
    )
    compiled = len(traces)
    second = sk.mcmc.sample(
        jax.random.key(0), _CountingGaussian(jnp.array([2.0, -1.0]), traces), prior, 400, **kwargs
    )
    assert compiled > 0 and len(traces) == compiled
    # the new arrays were used, not the ones baked in at the first compilation
    np.testing.assert_allclose(np.mean(first.samples, 0), [0.0, 0.0], atol=0.25)
    np.testing.assert_allclose(np.mean(second.samples, 0), [2.0, -1.0], atol=0.25)
