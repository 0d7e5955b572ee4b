"""Base-space simulators and minimum-MMD estimation."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import sbi_kit as sk
from sbi_kit.simulators import (
    BaseSpaceSimulator,
    GaussianBase,
    UniformBase,
    bivariate_beta,
    g_and_k,
    gamma_quantile,
    ma2,
    two_moons_base_space,
)

D = sk.diagnostics


def test_g_and_k_quantiles():
    # x(u) is the quantile function: at u = Φ(z), x = A + B(1 + 0.8 tanh(gz/2)) z (1 + z²)^k
    theta = jnp.array([3.0, 1.0, 0.5, 0.2])
    z = np.array([-1.0, 0.0, 2.0])
    u = jnp.asarray(stats.norm.cdf(z))[:, None]
    x = np.asarray(g_and_k().generate(theta, u))[:, 0]
    ref = 3 + (1 + 0.8 * np.tanh(0.5 * z / 2)) * z * (1 + z**2) ** 0.2
    np.testing.assert_allclose(x, ref, rtol=1e-5, atol=1e-5)


def test_two_moons_matches_the_task_simulator():
    theta = jnp.array([0.3, -0.4])
    _, x = two_moons_base_space().sample(jax.random.key(0), theta, 4000)
    task = sk.tasks.get("two_moons")
    ref = jax.vmap(task.simulator.simulate, in_axes=(0, None))(
        jax.random.split(jax.random.key(1), 4000), theta
    )
    se = np.sqrt(np.asarray(x).var(0) / 4000 + np.asarray(ref).var(0) / 4000)
    assert np.all(np.abs(np.asarray(x).mean(0) - np.asarray(ref).mean(0)) < 4 * se)
    np.testing.assert_allclose(np.asarray(x).std(0), np.asarray(ref).std(0), rtol=0.06)


def test_ma2_autocovariance():
    theta = jnp.array([0.6, 0.2])
    _, x = ma2(10).sample(jax.random.key(0), theta, 20000)
    x = np.asarray(x)
    # Var = 1 + θ1² + θ2², lag-1 cov = θ1 + θ1θ2, lag-2 cov = θ2
    np.testing.assert_allclose(x[:, 5].var(), 1 + 0.36 + 0.04, rtol=0.05)
    np.testing.assert_allclose(np.mean(x[:, 5] * x[:, 6]), 0.6 + 0.12, atol=0.04)
    np.testing.assert_allclose(np.mean(x[:, 5] * x[:, 7]), 0.2, atol=0.04)


def test_gamma_quantile_and_bivariate_beta():
    u = jnp.array([1e-4, 0.1, 0.5, 0.9, 1 - 1e-4])
    shapes = jnp.array([0.3, 1.0, 4.0])
    q = np.asarray(jax.jit(jax.vmap(gamma_quantile, in_axes=(None, 0)))(u, shapes))
    ref = stats.gamma.ppf(np.asarray(u, np.float64)[None], np.asarray(shapes)[:, None])
    np.testing.assert_allclose(q, ref, rtol=2e-5)
    g = jax.jit(jax.grad(lambda a: gamma_quantile(jnp.array(0.3), a)))(2.5)
    fd = (stats.gamma.ppf(0.3, 2.5 + 1e-5) - stats.gamma.ppf(0.3, 2.5 - 1e-5)) / 2e-5
    np.testing.assert_allclose(float(g), fd, rtol=1e-3)
    # marginals of the bivariate beta: x1 ~ Beta(θ1 + θ3, θ4 + θ5)
    theta = jnp.array([1.0, 2.0, 0.5, 1.5, 3.0])
    _, x = eqx.filter_jit(bivariate_beta().sample)(jax.random.key(0), theta, 10000)
    # Beta(1.5, 4.5) and Beta(3.5, 3.5) have sd ≈ 0.16 and 0.18: 4 standard errors ≈ 0.007
    np.testing.assert_allclose(float(jnp.mean(x[:, 0])), 1.5 / 6.0, atol=0.008)
    np.testing.assert_allclose(float(jnp.mean(x[:, 1])), 3.5 / 7.0, atol=0.008)


def test_base_measures():
    uniform, gaussian = UniformBase(), GaussianBase()
    u = uniform.sample(jax.random.key(0), (2000, 3))
    assert u.shape == (2000, 3) and bool(uniform.contains(u))
    assert not bool(uniform.contains(u.at[0, 1].set(1.5)))
    g = gaussian.sample(jax.random.key(0), (2000, 3))
    assert bool(gaussian.contains(g)) and float(g.min()) < 0
    np.testing.assert_allclose(np.asarray(g.std(0)), 1.0, atol=0.06)
    sim = BaseSpaceSimulator(lambda t, u: t + u, base=gaussian, base_dim=3)
    np.testing.assert_array_equal(
        np.asarray(sim.sample_base(jax.random.key(0), 2000)), np.asarray(g)
    )


def test_base_space_simulator_checks():
    for old in ("uniform", "gaussian"):
        with pytest.raises(TypeError, match=rf"`base`.*UniformBase\(\).*got str '{old}'"):
            BaseSpaceSimulator(lambda t, u: u, base=old, base_dim=1)
    with pytest.raises(ValueError, match="base_dim"):
        BaseSpaceSimulator(lambda t, u: u, base=UniformBase(), base_dim=0)
    sim = BaseSpaceSimulator(lambda t, u: t + u, base=GaussianBase(), base_dim=2)
    with pytest.raises(ValueError, match=r"\(num, 2\)"):
        sim.generate(jnp.zeros(2), jnp.zeros((3, 1)))
    with pytest.raises(TypeError, match="BaseSpaceSimulator"):
        D.minimum_mmd_estimate(
            jax.random.key(0), sk.tasks.get("two_moons").simulator, jnp.zeros((5, 2)), jnp.zeros(2)
        )


def test_minimum_mmd_estimate_recovers_g_and_k_location_and_scale():
    sim = g_and_k()
    truth = jnp.array([3.0, 1.0, 0.1, 0.1])
    _, y = sim.sample(jax.random.key(0), truth, 500)
    res = D.minimum_mmd_estimate(
        jax.random.key(1),
        sim,
        y,
        jnp.array([4.0, 2.0, 0.5, 0.5]),
        num_simulations=64,
        num_steps=200,
        learning_rate=0.05,
    )
    assert res.losses.shape == (200,)
    assert float(res.losses[-1]) < 0.1 * float(res.losses[0])
    # A and B are well identified from 500 points; tolerance ~3 standard errors
    assert abs(float(res.theta[0]) - 3.0) < 0.2 and abs(float(res.theta[1]) - 1.0) < 0.3
    assert bool(jnp.all(sim.prior.support(res.theta)))


def test_mmd_abc_keeps_the_closest():
    sim = two_moons_base_space()
    truth = jnp.array([0.4, -0.3])
    _, y = sim.sample(jax.random.key(0), truth, 300)
    res = D.mmd_abc(
        jax.random.key(1), sim, y, num_proposals=2048, num_accepted=30, num_simulations=64
    )
    assert res.theta.shape == (30, 2) and bool(jnp.all(jnp.diff(res.distances) >= 0))
    # two moons is symmetric under (θ1, θ2) → (−θ2, −θ1); θ2 − θ1 is identified
    np.testing.assert_allclose(float(jnp.median(res.theta[:, 1] - res.theta[:, 0])), -0.7, atol=0.1)
