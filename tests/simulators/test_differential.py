"""ODE/SDE simulators with diffrax: accuracy, failures as NaN rows, gradients, numpyro models."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

import sbi_kit as sk

TS = jnp.linspace(0.0, 2.0, 6)


def _logistic(t, y, theta):
    """Logistic growth with rate θ0 and capacity θ1: closed-form solution below."""
    return theta[0] * y * (1 - y / theta[1])


def _logistic_exact(theta, y0=0.1):
    r, k = theta
    return k / (1 + (k / y0 - 1) * jnp.exp(-r * TS))


def test_ode_solution_matches_the_closed_form():
    ode = sk.simulators.ODE(_logistic, y0=jnp.array([0.1]), ts=TS, rtol=1e-8, atol=1e-8)
    theta = jnp.array([1.5, 2.0])
    np.testing.assert_allclose(ode.solve(theta)[:, 0], _logistic_exact(theta), rtol=1e-5)
    # any diffrax solver may be chosen; a lower-order one agrees to its accuracy
    heun = sk.simulators.ODE(_logistic, y0=jnp.array([0.1]), ts=TS, solver=diffrax.Heun())
    np.testing.assert_allclose(heun.solve(theta)[:, 0], _logistic_exact(theta), rtol=1e-4)


@pytest.mark.slow
def test_ode_gradient_matches_finite_differences():
    ode = sk.simulators.ODE(_logistic, y0=jnp.array([0.1]), ts=TS, rtol=1e-8, atol=1e-8)
    f = lambda th: jnp.sum(ode.solve(th) ** 2)
    theta = jnp.array([1.5, 2.0])
    grad = jax.grad(f)(theta)
    eps = 1e-3
    for i in range(2):
        e = jnp.zeros(2).at[i].set(eps)
        fd = (f(theta + e) - f(theta - e)) / (2 * eps)
        np.testing.assert_allclose(grad[i], fd, rtol=2e-3)


def test_a_failed_solve_is_a_nan_row_that_simulate_drops_and_counts():
    """θ0 > 0 makes dy/dt = θ0 y² blow up before t = 2 (at t = 1 / θ0 for y0 = 1)."""
    ode = sk.simulators.ODE(lambda t, y, th: th[0] * y**2, y0=jnp.ones(1), ts=TS, max_steps=256)
    prior = dist.Uniform(jnp.array([-1.0]), jnp.array([1.0])).to_event(1)
    sim = sk.simulators.ode_simulator(
        prior, ode, lambda y, th: dist.Normal(y[:, 0], 0.01).to_event(1)
    )
    assert bool(jnp.all(jnp.isnan(ode.solve(jnp.array([0.9])))))
    with pytest.warns(RuntimeWarning, match="dropped"):
        sims = sk.simulate(jax.random.key(0), sim, 400)
    theta, x = sims
    # a quarter of the prior (θ0 > 0.5) fails: 100 ± 3 binomial sds
    assert abs(sims.num_dropped - 100) < 3 * np.sqrt(400 * 0.25 * 0.75)
    assert sims.num_valid + sims.num_dropped == 400
    assert bool(jnp.all(jnp.isfinite(x)))
    assert float(theta.max()) < 0.5 + 1e-6  # blow-up before t = 2 exactly when θ0 > 0.5
    good = jnp.array([-0.5])
    np.testing.assert_allclose(ode.solve(good)[:, 0], 1 / (1 + 0.5 * TS), rtol=1e-4)
    assert float(sim.log_likelihood(jnp.array([0.9]), x[0])) == -np.inf


def test_ode_inside_a_numpyro_model_and_from_numpyro():
    ode = sk.simulators.ODE(_logistic, y0=jnp.array([0.1]), ts=TS)

    def model(x=None):
        r = numpyro.sample("r", dist.LogNormal(0.0, 0.3))
        k = numpyro.sample("k", dist.LogNormal(jnp.log(2.0), 0.2))
        y = ode.solve(jnp.stack([r, k]))[:, 0]
        numpyro.sample("x", dist.Normal(y, 0.05).to_event(1), obs=x)

    sim = sk.from_numpyro(model, observed="x")
    theta, x = sk.simulate(jax.random.key(1), sim, 50)
    assert x.shape == (50, 6) and bool(jnp.all(jnp.isfinite(x)))
    lp = sim.log_likelihood(theta[0], x[0])
    manual = dist.Normal(_logistic_exact(theta[0]), 0.05).log_prob(x[0]).sum()
    np.testing.assert_allclose(lp, manual, rtol=1e-3)


@pytest.mark.slow
def test_sde_ornstein_uhlenbeck_moments_match_the_exact_transition():
    """dy = −κ y dt + σ dW from y0 = 1: mean e^{−κt}, variance σ²(1 − e^{−2κt}) / (2κ)."""
    kappa, sigma = 1.0, 0.5
    sde = sk.simulators.SDE(
        lambda t, y, th: -th[0] * y,
        lambda t, y, th: th[1] * jnp.ones((1, 1)),
        y0=jnp.ones(1),
        ts=jnp.array([0.5, 1.0]),
        t0=0.0,
        dt=0.01,
    )
    keys = jax.random.split(jax.random.key(2), 4000)
    paths = jax.vmap(lambda k: sde.solve(k, jnp.array([kappa, sigma])))(keys)[:, :, 0]
    t = np.array([0.5, 1.0])
    mean = np.exp(-kappa * t)
    var = sigma**2 * (1 - np.exp(-2 * kappa * t)) / (2 * kappa)
    np.testing.assert_allclose(
        paths.mean(0), mean, atol=4 * float(np.sqrt(var.max() / 4000)) + 0.01
    )
    np.testing.assert_allclose(paths.var(0), var, rtol=0.1)
    # the same key gives the same path; the path is differentiable in θ
    np.testing.assert_array_equal(
        sde.solve(keys[0], jnp.array([kappa, sigma])), sde.solve(keys[0], jnp.array([kappa, sigma]))
    )
    g = jax.grad(lambda th: sde.solve(keys[0], th)[-1, 0])(jnp.array([kappa, sigma]))
    assert bool(jnp.all(jnp.isfinite(g)))
    sim = sk.simulators.sde_simulator(
        dist.LogNormal(jnp.zeros(2), 0.3).to_event(1),
        sde,
        lambda y, th: dist.Normal(y[:, 0], 0.1).to_event(1),
    )
    assert sk.simulate(jax.random.key(3), sim, 20).x.shape == (20, 2)
