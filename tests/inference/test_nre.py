"""NRE: the ratio losses' optima (no training), and a trained posterior against a conjugate one."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest

import sbi_kit as sk
from sbi_kit.inference import NRE_A, NRE_B, NRE_C, BalancedNRE

NOISE = 0.5
PRIOR = dist.Normal(jnp.zeros(1), 1.0).to_event(1)


def _pairs(n=4000):
    key_t, key_x = jax.random.split(jax.random.key(0))
    theta = jax.random.normal(key_t, (n, 1))
    return theta, theta + NOISE * jax.random.normal(key_x, (n, 1))


def _evaluate(loss, logit, theta, x, key):
    """``loss(logit, theta, x, key)``, jitted (eager evaluation of the vmaps is slow)."""
    return jax.jit(lambda t, xx, k: loss(logit, t, xx, k))(theta, x, key)


def _log_ratio(theta, x):
    """The exact log p(x | θ) / p(x) of θ ~ N(0, 1), x ~ N(θ, 0.5²)."""
    return (
        dist.Normal(theta, NOISE).log_prob(x) - dist.Normal(0.0, (1 + NOISE**2) ** 0.5).log_prob(x)
    ).sum()


@pytest.mark.parametrize("loss", [NRE_A(), NRE_C(num_classes=1), NRE_C(num_classes=5, gamma=2.0)])
def test_normalised_losses_are_smallest_at_the_true_log_ratio(loss):
    """Expected losses over 4,000 pairs: the exact log-ratio beats shifted and scaled ones."""
    theta, x = _pairs()
    mean_loss = lambda d: float(jnp.mean(_evaluate(loss, d, theta, x, jax.random.key(1))))
    best = mean_loss(_log_ratio)
    for wrong in (
        lambda t, xx: _log_ratio(t, xx) + 0.3,
        lambda t, xx: _log_ratio(t, xx) - 0.3,
        lambda t, xx: 1.3 * _log_ratio(t, xx),
        lambda t, xx: 0.7 * _log_ratio(t, xx),
    ):
        assert mean_loss(wrong) > best + 1e-3


def test_nre_c_with_one_class_is_half_of_nre_a():
    theta, x = _pairs(200)
    a = _evaluate(NRE_A(), _log_ratio, theta, x, jax.random.key(2))
    c = _evaluate(NRE_C(num_classes=1, gamma=1.0), _log_ratio, theta, x, jax.random.key(2))
    np.testing.assert_allclose(c, a / 2, rtol=1e-5)


def test_nre_b_identifies_the_ratio_up_to_a_function_of_x():
    theta, x = _pairs(500)
    loss = NRE_B(num_atoms=5)
    base = _evaluate(loss, _log_ratio, theta, x, jax.random.key(3))
    plus_x = lambda t, xx: _log_ratio(t, xx) + jnp.sum(xx**2)
    shifted = _evaluate(loss, plus_x, theta, x, jax.random.key(3))
    np.testing.assert_allclose(base, shifted, rtol=1e-4, atol=1e-4)
    scaled = _evaluate(loss, lambda t, xx: 1.5 * _log_ratio(t, xx), theta, x, jax.random.key(3))
    assert float(jnp.mean(scaled)) > float(jnp.mean(base))


def test_balanced_loss_adds_the_balance_penalty():
    theta, x = _pairs(300)
    plain = _evaluate(NRE_A(), _log_ratio, theta, x, jax.random.key(4))
    balanced = _evaluate(BalancedNRE(regularization=100.0), _log_ratio, theta, x, jax.random.key(4))
    penalty = balanced - plain
    assert float(jnp.std(penalty)) < 1e-5 and float(penalty[0]) >= 0.0
    too_confident = lambda t, xx: 3.0 * _log_ratio(t, xx)
    worse = _evaluate(BalancedNRE(regularization=100.0), too_confident, theta, x, jax.random.key(4))
    assert float(
        (worse - _evaluate(NRE_A(), too_confident, theta, x, jax.random.key(4)))[0]
    ) > float(penalty[0])


@pytest.fixture(scope="module")
def nre_posterior():
    """NRE-C (K = 5) on θ ~ N(0, 1), x ~ N(θ, 0.5²); 3,000 simulations."""
    sim = sk.Simulator(PRIOR, lambda key, th: th + NOISE * jax.random.normal(key, (1,)))
    theta, x = sk.simulate(jax.random.key(0), sim, 3000)
    nre = sk.NRE(
        width=32,
        depth=2,  # smaller than the default classifier (100 x 4): a 1-d problem, test time
        activation="gelu",
        training=sk.Training(max_epochs=100, patience=20, batch_size=100, learning_rate=2e-3),
        mcmc=sk.mcmc.MCMCConfig(num_chains=4, num_warmup=150),
    )
    return nre.fit(jax.random.key(1), theta, x, prior=PRIOR, progress=False)


def _conjugate(x_o):
    precision = 1.0 + len(x_o) / NOISE**2
    return float(np.sum(x_o) / NOISE**2 / precision), precision**-0.5


def test_trained_nre_posterior_matches_the_conjugate_posterior(nre_posterior):
    """Three i.i.d. observations: mean within 0.3 sd, sd within 25 %."""
    x_o = jnp.array([[0.9], [0.4], [1.3]])
    samples, result = nre_posterior.sample(jax.random.key(2), x_o, 2000, return_diagnostics=True)
    mean, sd = _conjugate(np.asarray(x_o)[:, 0])
    assert result.importance_ess is not None and result.importance_ess > 2000  # of 10,000
    assert abs(float(samples.mean()) - mean) < 0.3 * sd
    np.testing.assert_allclose(float(samples.std()), sd, rtol=0.25)


def test_nre_posterior_of_ten_iid_observations(nre_posterior):
    """Ten i.i.d. observations (posterior sd 0.16), the log-ratios summed with the prior counted
    once: mean within 0.3 sd, sd within 25 %."""
    x_o = jnp.array([0.9, 0.4, 1.3, 0.2, 0.8, 1.1, 0.5, 0.6, 1.0, 0.7])[:, None]
    samples, result = nre_posterior.sample(jax.random.key(6), x_o, 2000, return_diagnostics=True)
    mean, sd = _conjugate(np.asarray(x_o)[:, 0])
    assert result.importance_ess is not None and result.importance_ess > 2000  # of 10,000
    assert abs(float(samples.mean()) - mean) < 0.3 * sd, (float(samples.mean()), mean, sd)
    np.testing.assert_allclose(float(samples.std()), sd, rtol=0.25)


def test_nre_saves_and_loads_bit_identically(nre_posterior, tmp_path):
    sk.save(tmp_path / "nre.sbi", nre_posterior)
    loaded = sk.load(tmp_path / "nre.sbi")
    assert loaded.method == nre_posterior.method and loaded.history == nre_posterior.history
    key, x_o = jax.random.key(7), jnp.array([[0.9], [0.4], [1.3]])  # shapes compiled above
    np.testing.assert_array_equal(
        loaded.sample(key, x_o, 2000), nre_posterior.sample(key, x_o, 2000)
    )


def test_nre_input_checks():
    with pytest.raises(TypeError, match="`loss_fn` must be a ratio loss"):
        sk.NRE(loss_fn="nre-c")
    with pytest.raises(ValueError, match=r"batch_size \(4\) must exceed the 5 contrasting"):
        sk.NRE(training=sk.Training(batch_size=4))
    with pytest.raises(ValueError, match="num_classes must be ≥ 1"):
        NRE_C(num_classes=0)
    with pytest.raises(ValueError, match="gamma must be > 0"):
        NRE_C(gamma=-1.0)
    with pytest.raises(ValueError, match="num_atoms must be ≥ 2"):
        NRE_B(num_atoms=1)
    with pytest.raises(ValueError, match="unknown activation"):
        sk.NRE(activation="swish!")


def test_nre_factor_in_a_hierarchical_numpyro_model(nre_posterior):
    """The learned log-ratio as ``numpyro.factor`` per group inside a plate: μ ~ N(0, 1),
    θ_j ~ N(μ, 0.5²), five groups; p(μ | x) is Gaussian with x_j | μ ~ N(μ, 0.5² + 0.5²).
    Mean within 0.3 sd, sd within 25 %."""
    import numpyro

    tau, x_o = 0.5, jnp.array([[0.9], [0.4], [1.3], [-0.2], [0.6]])

    def model(x=None):
        mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
        with numpyro.plate("groups", 5):
            theta = numpyro.sample("theta", dist.Normal(mu, tau))
            nre_posterior.factor("x", theta[:, None], x)

    mcmc = numpyro.infer.MCMC(
        numpyro.infer.NUTS(model), num_warmup=300, num_samples=2000, progress_bar=False
    )
    mcmc.run(jax.random.key(8), x=x_o)
    mu = np.asarray(mcmc.get_samples()["mu"])
    var = tau**2 + NOISE**2
    precision = 1.0 + 5 / var
    mean, sd = float(np.sum(x_o) / var / precision), precision**-0.5
    assert abs(float(mu.mean()) - mean) < 0.3 * sd, (float(mu.mean()), mean, sd)
    np.testing.assert_allclose(float(mu.std()), sd, rtol=0.25)
    with pytest.raises(ValueError, match=r"`theta` must have shape \(..., 1\)"):
        nre_posterior.log_ratio(jnp.zeros((3, 2)), x_o[:3])
