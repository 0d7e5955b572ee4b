"""FMPE: the ODE machinery on an exact velocity field, and a trained posterior on the analytic
Gaussian problem (prior N(0, I), x ~ N(θ, 0.5² I) in two dimensions)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest

import sbi_kit as sk
from sbi_kit.inference import DPMSolver, FlowField, ProbabilityFlowODE, ReverseSDE
from tests.conftest import gaussian_posterior

X_O = jnp.array([0.5, -0.3])


class _Linear(eqx.Module):
    """v(y, t) = a ⊙ y + b: carries N(0, I) at t = 0 to N(b (e^a − 1)/a, e^{2a}) at t = 1."""

    a: jnp.ndarray
    b: jnp.ndarray

    def __call__(self, y, t, context):
        return self.a * y + self.b


def test_ode_sampling_and_exact_log_prob_of_a_linear_field():
    """Measured: mean error 0.01 sd, sd ratio within 1.3 %, log-density error 3e-6 nats."""
    a, b = jnp.array([-0.8, 0.3]), jnp.array([0.5, -1.0])
    field = FlowField(_Linear(a, b), jnp.zeros(0))
    mean, sd = b * jnp.expm1(a) / a, jnp.exp(a)
    ode = ProbabilityFlowODE()
    samples = jax.jit(lambda k: ode.sample(k, field, 2000, 2))(jax.random.key(0))
    np.testing.assert_array_less(jnp.abs(samples.mean(0) - mean) / sd, 0.06)
    np.testing.assert_allclose(samples.std(0), sd, rtol=0.06)
    points = mean + sd * jnp.array([[0.0, 0.0], [1.0, -1.0], [-2.0, 1.5]])
    learned = jax.jit(jax.vmap(lambda y: ode.log_prob(field, y)))(points)
    np.testing.assert_allclose(learned, dist.Normal(mean, sd).log_prob(points).sum(-1), atol=1e-4)


@pytest.fixture(scope="module")
def fmpe(gaussian_simulator):
    theta, x = sk.simulate(jax.random.key(0), gaussian_simulator, 3000)
    method = sk.FMPE(
        network=sk.estimators.ResidualVectorField(width=64, blocks=2),
        sampler=ProbabilityFlowODE(rtol=1e-4, atol=1e-4),  # log_prob keeps 1e-5
        training=sk.Training(max_epochs=60, patience=60, batch_size=100, learning_rate=2e-3),
    )
    return method.fit(jax.random.key(1), theta, x, prior=gaussian_simulator.prior, progress=False)


@pytest.fixture(scope="module")
def fmpe_samples(fmpe):
    return fmpe.sample(jax.random.key(2), X_O, 2000)


def test_fmpe_recovers_the_analytic_posterior(fmpe, fmpe_samples):
    """Measured mean errors (0.062, 0.017) sd, sd ratios (0.94, 1.005)."""
    mean, sd = gaussian_posterior(X_O)
    assert fmpe_samples.shape == (2000, 2)
    np.testing.assert_allclose(fmpe_samples.mean(0), mean, atol=0.15 * sd)
    np.testing.assert_allclose(fmpe_samples.std(0), sd, rtol=0.15)


def test_fmpe_log_prob_matches_the_analytic_density(fmpe):
    """Within 1.4 sd of the mean: measured errors (0.073, 0.054, −0.155, 0.14) nats."""
    mean, sd = gaussian_posterior(X_O)
    theta = mean + sd * jnp.array([[0.0, 0.0], [1.0, -1.0], [-1.0, 0.5], [0.5, 1.0]])
    learned = fmpe.log_prob(theta, X_O)
    exact = dist.Normal(mean, sd).log_prob(theta).sum(-1)
    assert learned.shape == (4,)
    np.testing.assert_allclose(learned, exact, atol=0.2)


def test_fmpe_sampling_is_deterministic_and_saves_bit_identically(fmpe, fmpe_samples, tmp_path):
    np.testing.assert_array_equal(fmpe.sample(jax.random.key(2), X_O, 2000), fmpe_samples)
    assert not np.array_equal(fmpe.sample(jax.random.key(3), X_O, 2000), fmpe_samples)
    sk.save(tmp_path / "fmpe.sbi", fmpe)
    loaded = sk.load(tmp_path / "fmpe.sbi")
    assert isinstance(loaded, sk.FMPEPosterior) and loaded.method == fmpe.method
    np.testing.assert_array_equal(loaded.sample(jax.random.key(2), X_O, 2000), fmpe_samples)


def test_fmpe_refuses_bad_options_and_inputs(fmpe):
    with pytest.raises(TypeError, match="`sampler` must be sk.inference.ProbabilityFlowODE"):
        sk.FMPE(sampler=ReverseSDE())
    with pytest.raises(TypeError, match="`sampler` must be sk.inference.ProbabilityFlowODE"):
        sk.FMPE(sampler=DPMSolver())
    with pytest.raises(TypeError, match="`network` must be a vector-field spec"):
        sk.FMPE(network="mlp")
    with pytest.raises(ValueError, match=r"`sigma_min` must lie in \[0, 1\)"):
        sk.FMPE(sigma_min=1.5)
    with pytest.raises(ValueError, match="`time_prior_exponent` must be ≥ 0"):
        sk.FMPE(time_prior_exponent=-1.0)
    with pytest.raises(TypeError, match="`solver` must be a diffrax ODE solver"):
        ProbabilityFlowODE(solver="tsit5")
    with pytest.raises(ValueError, match=r"`x_o` must have shape \(2,\), got shape \(3,\)"):
        fmpe.sample(jax.random.key(0), jnp.zeros(3), 10)
    with pytest.raises(ValueError, match=r"`x_o` must have shape \(2,\)"):
        fmpe.log_prob(jnp.zeros(2), jnp.zeros(5))
