"""NPSE: the SDEs, the samplers on an exact score, and a trained posterior on the analytic
Gaussian problem (prior N(0, I), x ~ N(θ, 0.5² I) in two dimensions)."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest

import sbi_kit as sk
from sbi_kit.inference import (
    VESDE,
    VPSDE,
    DPMSolver,
    ExactDivergence,
    HutchinsonDivergence,
    ProbabilityFlowODE,
    ReverseSDE,
    ScoreField,
    SubVPSDE,
)
from tests.conftest import gaussian_posterior

X_O = jnp.array([0.5, -0.3])

# --- the SDEs ------------------------------------------------------------------------------


@pytest.mark.parametrize("sde", [VPSDE(), SubVPSDE(), VESDE()])
def test_sde_kernel_agrees_with_drift_and_diffusion(sde):
    """For y_t = m y_0 + σ ε to solve dy = f y dt + g dw: f = d log m/dt and
    g² = dσ²/dt − 2 f σ² (checked with autodiff at five times, to 1e-4 relative)."""
    for t in (0.01, 0.2, 0.5, 0.8, 1.0):
        t = jnp.asarray(t)
        f = sde.drift(jnp.ones(1), t)[0]
        dlogm = jax.grad(lambda s: jnp.log(sde.mean_coeff(s)))(t)
        dvar = jax.grad(lambda s: sde.std(s) ** 2)(t)
        np.testing.assert_allclose(f, dlogm, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(sde.diffusion(t) ** 2, dvar - 2 * f * sde.std(t) ** 2, rtol=1e-4)


def test_sde_closed_forms():
    vp = VPSDE()
    # Song et al.'s values: m(1) = exp(−¼·19.9 − ½·0.1), σ = √(1 − m²); VE at t = ½: √(σ_min σ_max)
    np.testing.assert_allclose(vp.mean_coeff(1.0), np.exp(-0.25 * 19.9 - 0.05), rtol=1e-6)
    np.testing.assert_allclose(vp.std(0.3), np.sqrt(1 - vp.mean_coeff(0.3) ** 2), rtol=1e-6)
    np.testing.assert_allclose(SubVPSDE().std(0.3), 1 - vp.mean_coeff(0.3) ** 2, rtol=1e-6)
    np.testing.assert_allclose(VESDE().std(0.5), np.sqrt(0.01 * 15.0), rtol=1e-6)
    np.testing.assert_allclose(VESDE().prior_std(), np.sqrt(1 + 15.0**2), rtol=1e-6)
    t = jnp.linspace(1e-3, 1.0, 7)
    lam = vp.log_mean_coeff(t) - jnp.log(vp.std(t))
    np.testing.assert_allclose(vp.time_of_log_snr(lam), t, rtol=1e-4)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: VPSDE(beta_min=1.0, beta_max=0.5), "beta_max must exceed beta_min"),
        (lambda: VPSDE(t_min=0.0), r"t_min must lie in \(0, 0.5\)"),
        (lambda: VESDE(sigma_min=-1.0), "sigma_min must be > 0"),
        (lambda: ProbabilityFlowODE(rtol=0.0), "rtol must be > 0"),
        (lambda: ReverseSDE(num_steps=0), "num_steps must be a positive integer"),
        (lambda: DPMSolver(order=3), "order must be 1 or 2"),
        (lambda: HutchinsonDivergence(num_probes=0), "num_probes must be a positive integer"),
        (lambda: HutchinsonDivergence(seed=-1), "seed must be a non-negative integer"),
    ],
)
def test_bad_sde_and_sampler_settings(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# --- the samplers and log_prob on the exact score of a Gaussian ----------------------------

MU, VAR = jnp.array([0.7, -0.4]), jnp.array([0.25, 0.09])


class _ExactNoise(eqx.Module):
    """The exact noise prediction ε̂ = −σ s for data N(MU, diag VAR), in ScoreField's input
    convention (θ scaled by 1/√(m² + σ²))."""

    sde: object = eqx.field(static=True)

    def __call__(self, u, t, context):
        m, s = self.sde.mean_coeff(t), self.sde.std(t)
        y = u * jnp.sqrt(m**2 + s**2)
        return s * (y - m * MU) / (m**2 * VAR + s**2)


def _exact_field(sde):
    return ScoreField(_ExactNoise(sde), jnp.zeros(0), sde)


def _model(sde):
    """Mean and sd of what the samplers and log_prob target exactly: the probability-flow ODE
    of the exact score is linear, so it maps the noise N(0, prior_std²) at t_max to a Gaussian
    at t_min (the data noised to t_min, up to the start's mismatch with the true marginal at
    t_max: ≈ 0.005 in the mean for VP, ≈ 0.03 for VE with σ_max = 15)."""
    t0, t1 = jnp.asarray(sde.t_min), jnp.asarray(sde.t_max)
    mean0, sd0 = sde.mean_coeff(t0) * MU, jnp.sqrt(sde.mean_coeff(t0) ** 2 * VAR + sde.std(t0) ** 2)
    mean1, sd1 = sde.mean_coeff(t1) * MU, jnp.sqrt(sde.mean_coeff(t1) ** 2 * VAR + sde.std(t1) ** 2)
    scale = sd0 / sd1
    return mean0 - scale * mean1, scale * sde.prior_std()


@pytest.mark.parametrize(
    "sde, sampler, n, tol",
    [
        # measured max |mean error| / sd, max |sd ratio − 1| over the two dimensions (key 0):
        (VPSDE(), ProbabilityFlowODE(rtol=1e-4, atol=1e-4), 4000, 0.06),  # 0.008, 0.023
        (VPSDE(), DPMSolver(num_steps=10), 4000, 0.06),  # 0.008, 0.021
        # DDIM converges at first order: its sd is 22 % short at 10 steps, 6-7 % at 50
        (VPSDE(), DPMSolver(num_steps=50, order=1), 4000, 0.1),  # 0.008, 0.068
        (SubVPSDE(), ReverseSDE(num_steps=50), 1000, 0.12),  # 0.019, 0.011
    ],
)
def test_samplers_on_the_exact_score(sde, sampler, n, tol):
    mean, sd = _model(sde)
    samples = jax.jit(lambda k: sampler.sample(k, _exact_field(sde), n, 2))(jax.random.key(0))
    np.testing.assert_array_less(jnp.abs(samples.mean(0) - mean) / sd, tol)
    np.testing.assert_array_less(jnp.abs(samples.std(0) / sd - 1), tol)


@pytest.mark.parametrize("sde", [VPSDE(), VESDE()])
def test_log_prob_of_the_exact_score_is_exact(sde):
    """The ODE with the exact divergence recovers the model's Gaussian log-density to
    < 5e-4 nats (measured: VP 4e-5, VE 2e-5)."""
    mean, sd = _model(sde)
    points = mean + sd * jnp.array([[0.0, 0.0], [1.0, -1.0], [-2.0, 1.5]])
    field = _exact_field(sde)
    learned = jax.jit(jax.vmap(lambda y: ProbabilityFlowODE().log_prob(field, y)))(points)
    exact = dist.Normal(mean, sd).log_prob(points).sum(-1)
    np.testing.assert_allclose(learned, exact, atol=5e-4)


# a correlated 4-d Gaussian, for the divergence estimators (its Jacobian has off-diagonal terms,
# where Hutchinson's estimate is noisy; on the diagonal ones above Rademacher probes are exact)
D4 = 4
_A4 = jax.random.normal(jax.random.key(0), (D4, D4))
SIGMA4, MU4 = _A4 @ _A4.T / D4 + 0.2 * jnp.eye(D4), 0.3 * jnp.arange(D4)


class _ExactNoise4(eqx.Module):
    sde: object = eqx.field(static=True)

    def __call__(self, u, t, context):
        m, s = self.sde.mean_coeff(t), self.sde.std(t)
        y = u * jnp.sqrt(m**2 + s**2)
        return s * jnp.linalg.solve(m**2 * SIGMA4 + s**2 * jnp.eye(D4), y - m * MU4)


def test_hutchinson_divergence_is_unbiased_and_its_log_prob_close():
    """Hutchinson's estimate of ∇·v at one state: its mean over 20,000 Rademacher probes is the
    exact trace (measured single-probe sd 1.14 here, so the mean's se is 0.008). Through the
    ODE, log_prob with 64 probes is within 0.2 nats of the exact density (measured spread
    over 24 seeds: 0.35 nats with one probe, 0.11 with 16), and the same for the same
    settings."""
    sde = VPSDE()
    field = ScoreField(_ExactNoise4(sde), jnp.zeros(0), sde)
    y, t = MU4 + jnp.array([0.5, -0.2, 0.1, 0.3]), jnp.asarray(0.3)
    _, exact = ExactDivergence().velocity_and_divergence(field, y, t)
    velocity, estimate = HutchinsonDivergence(num_probes=20_000).velocity_and_divergence(
        field, y, t
    )
    np.testing.assert_allclose(velocity, field.velocity(y, t), rtol=1e-6)
    assert abs(float(estimate - exact)) < 0.05, (float(estimate), float(exact))

    points = MU4 + jax.random.normal(jax.random.key(1), (3, D4)) @ jnp.linalg.cholesky(SIGMA4).T
    hutchinson = ProbabilityFlowODE(divergence=HutchinsonDivergence(num_probes=64))
    estimated = _log_probs(hutchinson, field, points)
    t_min = jnp.asarray(sde.t_min)  # the density of the data noised to t_min
    m, s = sde.mean_coeff(t_min), sde.std(t_min)
    noised = dist.MultivariateNormal(m * MU4, m**2 * SIGMA4 + s**2 * jnp.eye(D4))
    # the exact divergence's log_prob is 0.017 from this at most (the noise at t_max is not
    # exactly the marginal there)
    np.testing.assert_array_less(jnp.abs(estimated - noised.log_prob(points)), 0.2)
    np.testing.assert_array_equal(_log_probs(hutchinson, field, points), estimated)


@eqx.filter_jit
def _log_probs(ode, field, points):
    return jax.vmap(lambda p: ode.log_prob(field, p))(points)


# --- a trained posterior ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def npse(gaussian_simulator):
    theta, x = sk.simulate(jax.random.key(0), gaussian_simulator, 3000)
    method = sk.NPSE(
        network=sk.estimators.ResidualVectorField(width=64, blocks=2),
        sampler=ProbabilityFlowODE(rtol=1e-4, atol=1e-4),  # log_prob keeps 1e-5
        training=sk.Training(max_epochs=150, patience=150, batch_size=100, learning_rate=1e-3),
    )
    return method.fit(jax.random.key(1), theta, x, prior=gaussian_simulator.prior, progress=False)


@pytest.fixture(scope="module")
def npse_samples(npse):
    return npse.sample(jax.random.key(2), X_O, 2000)


def _with_sampler(posterior, sampler):
    method = dataclasses.replace(posterior.method, sampler=sampler)
    return method.posterior(
        posterior.net, posterior.prior, posterior.theta_standardizer, posterior.x_standardizer
    )


def test_npse_recovers_the_analytic_posterior(npse, npse_samples):
    """Probability-flow ODE: measured mean errors (−0.015, 0.058) sd, sd ratios (1.16, 1.02)
    (3,000 simulations: the score is learned less sharply than NPE's flow on the same data)."""
    mean, sd = gaussian_posterior(X_O)
    assert npse_samples.shape == (2000, 2)
    np.testing.assert_allclose(npse_samples.mean(0), mean, atol=0.15 * sd)
    np.testing.assert_allclose(npse_samples.std(0), sd, rtol=0.2)


def test_npse_dpm_solver_matches_the_posterior(npse):
    """DPM-Solver++(2M), 20 steps: measured mean errors (0.018, 0.032) sd, sd ratios (1.17,
    1.04): the same network as the ODE's, in 20 evaluations."""
    mean, sd = gaussian_posterior(X_O)
    samples = _with_sampler(npse, DPMSolver(num_steps=20)).sample(jax.random.key(2), X_O, 2000)
    np.testing.assert_allclose(samples.mean(0), mean, atol=0.15 * sd)
    np.testing.assert_allclose(samples.std(0), sd, rtol=0.2)


def test_npse_log_prob_matches_the_analytic_density(npse):
    """Within 1.5 sd of the mean: measured errors (−0.145, −0.139, 0.135, −0.026) nats."""
    mean, sd = gaussian_posterior(X_O)
    theta = mean + sd * jnp.array([[0.0, 0.0], [1.0, -1.0], [-1.5, 0.5], [0.5, 1.0]])
    learned = npse.log_prob(theta, X_O)
    exact = dist.Normal(mean, sd).log_prob(theta).sum(-1)
    assert learned.shape == (4,)
    np.testing.assert_allclose(learned, exact, atol=0.2)


def test_npse_sampling_is_deterministic_and_saves_bit_identically(npse, npse_samples, tmp_path):
    np.testing.assert_array_equal(npse.sample(jax.random.key(2), X_O, 2000), npse_samples)
    assert not np.array_equal(npse.sample(jax.random.key(3), X_O, 2000), npse_samples)
    sk.save(tmp_path / "npse.sbi", npse)
    loaded = sk.load(tmp_path / "npse.sbi")
    assert isinstance(loaded, sk.NPSEPosterior) and loaded.method == npse.method
    np.testing.assert_array_equal(loaded.sample(jax.random.key(2), X_O, 2000), npse_samples)


def test_npse_refuses_bad_options_and_inputs(npse):
    with pytest.raises(TypeError, match="`sde` must be an SDE"):
        sk.NPSE(sde="vp")
    with pytest.raises(TypeError, match="`sampler` must be"):
        sk.NPSE(sampler="ode")
    with pytest.raises(TypeError, match=r"DPMSolver\(\) needs sde=VPSDE\(\)"):
        sk.NPSE(sde=VESDE(), sampler=DPMSolver())
    with pytest.raises(TypeError, match="`network` must be a vector-field spec"):
        sk.NPSE(network=sk.estimators.NSF())
    with pytest.raises(
        ValueError, match=r"`x_o` must have shape \(2,\) or \(n_obs, 2\), got shape \(3,\)"
    ):
        npse.sample(jax.random.key(0), jnp.zeros(3), 10)
    with pytest.raises(ValueError, match=r"`x_o` must have shape \(2,\)"):
        npse.log_prob(jnp.zeros(2), jnp.zeros((2, 3)))
