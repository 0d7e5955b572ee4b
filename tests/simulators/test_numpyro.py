import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.infer.util import log_density

import sbi_kit as sk


def model(x=None):
    mu = numpyro.sample("mu", dist.Normal(0.0, 2.0).expand([2]).to_event(1))
    sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
    w = numpyro.sample("w", dist.Uniform(-1.0, 1.0))
    numpyro.sample("x", dist.Normal(mu * w, sigma).expand([3, 2]).to_event(2), obs=x)


@pytest.fixture(scope="module")
def sim():
    return sk.from_numpyro(model, observed="x")


def test_sites_are_flattened_in_model_order(sim):
    assert sim.prior.site_names == ("mu", "sigma", "w")
    assert sim.dim_theta == 4
    assert sim.theta_names == ("mu[0]", "mu[1]", "sigma", "w")
    theta = jnp.array([[0.1, 0.2, 0.3, 0.4]])
    sites = sim.prior.unflatten(theta)
    assert sites["mu"].shape == (1, 2) and sites["sigma"].shape == (1,)
    np.testing.assert_array_equal(sim.prior.flatten(sites), theta)


def test_prior_and_likelihood_log_densities_equal_the_models(sim):
    theta = sim.prior.sample(jax.random.key(0), (5,))
    x = jax.vmap(sim.simulate)(jax.random.split(jax.random.key(1), 5), theta)
    assert x.shape == (5, 3, 2)
    for th, xi in zip(theta, x, strict=True):
        params = {k: v for k, v in sim.prior.unflatten(th).items()}
        joint, _ = log_density(model, (), {"x": xi}, params)
        prior_lp = sim.prior.log_prob(th)
        lik = sim.log_likelihood(th, xi)
        np.testing.assert_allclose(prior_lp + lik, joint, rtol=1e-5, atol=1e-5)
        exact_prior = (
            dist.Normal(0.0, 2.0).log_prob(params["mu"]).sum()
            + dist.HalfNormal(1.0).log_prob(params["sigma"])
            + dist.Uniform(-1.0, 1.0).log_prob(params["w"])
        )
        np.testing.assert_allclose(prior_lp, exact_prior, rtol=1e-5, atol=1e-5)
    assert sim.prior.log_prob(theta).shape == (5,)


def test_prior_samples_follow_the_model_and_respect_supports(sim):
    theta = np.asarray(sim.prior.sample(jax.random.key(0), (20_000,)))
    assert theta.shape == (20_000, 4)
    np.testing.assert_allclose(theta[:, :2].std(0), 2.0, rtol=0.03)
    np.testing.assert_allclose(theta[:, 2].mean(), np.sqrt(2 / np.pi), rtol=0.03)
    assert theta[:, 2].min() > 0 and np.abs(theta[:, 3]).max() <= 1
    assert bool(jnp.all(sim.prior.support(jnp.asarray(theta))))
    assert not bool(sim.prior.support(jnp.array([0.0, 0.0, -1.0, 0.0])))


def test_unconstraining_transform_round_trips(sim):
    t = sk.simulators.unconstraining_transform(sim.prior)
    z = jax.random.normal(jax.random.key(0), (4,)) * 3
    theta = t(z)
    assert bool(sim.prior.support(theta))
    np.testing.assert_allclose(t.inv(theta), z, rtol=1e-4, atol=1e-4)
    # the log-Jacobian equals autodiff's log|det dθ/dz|
    jac = jax.jacfwd(t)(z)
    np.testing.assert_allclose(
        t.log_abs_det_jacobian(z, theta), jnp.linalg.slogdet(jac)[1], rtol=1e-4, atol=1e-4
    )


def test_simulate_runs_the_model_at_given_theta(sim):
    theta = jnp.tile(jnp.array([1.0, -1.0, 0.01, 0.5]), (500, 1))
    _, x = sk.simulate(jax.random.key(0), sim, 500, theta=theta)
    np.testing.assert_allclose(np.asarray(x).mean(0), [[0.5, -0.5]] * 3, atol=0.01)


def test_from_numpyro_errors():
    with pytest.raises(ValueError, match=r"no sample site 'y'; its sample sites are"):
        sk.from_numpyro(model, observed="y")
    with pytest.raises(ValueError, match="was given data"):
        sk.from_numpyro(model, observed="x", model_kwargs={"x": jnp.zeros((3, 2))})

    def simplex_model(x=None):
        p = numpyro.sample("p", dist.Dirichlet(jnp.ones(3)))
        numpyro.sample("x", dist.Normal(p, 1.0).to_event(1), obs=x)

    with pytest.raises(ValueError, match="unconstrained shape differs"):
        sk.from_numpyro(simplex_model, observed="x")


def test_npe_on_a_numpyro_model_keeps_supports():
    def m(x=None):
        s = numpyro.sample("s", dist.LogNormal(0.0, 0.5))
        numpyro.sample("x", dist.Normal(0.0, s).expand([10]).to_event(1), obs=x)

    sim = sk.from_numpyro(m, observed="x")
    theta, x = sk.simulate(jax.random.key(0), sim, 1000)
    npe = sk.NPE(
        flow=sk.estimators.MAF(layers=1, width=16, depth=1),
        training=sk.Training(max_epochs=3),
    )
    post = npe.fit(jax.random.key(1), theta, x, prior=sim.prior, progress=False)
    samples = post.sample(jax.random.key(2), x[0], 500)
    assert float(samples.min()) > 0.0  # the LogNormal site stays positive


def test_a_support_that_depends_on_another_latent_is_refused_by_name():
    """Before: accepted with the bound frozen at the traced value of `a`, so the prior rejected
    its own draws (b > that value)."""

    def dependent(x=None):
        a = numpyro.sample("a", dist.Uniform(1.0, 2.0))
        c = numpyro.sample("c", dist.Normal(0.0, 1.0))
        b = numpyro.sample("b", dist.Uniform(-1.0, a))
        numpyro.sample("x", dist.Normal(b + c, 0.1), obs=x)

    with pytest.raises(
        ValueError, match=r"support of site 'b' .* depends on the latent site\(s\) \['a'\]"
    ):
        sk.from_numpyro(dependent, observed="x")


def test_supports_from_model_arguments_and_constants_are_accepted():
    """Bounds that come from the model's arguments (even arrays) do not depend on θ."""

    def bounded(upper, x=None):
        a = numpyro.sample("a", dist.Uniform(0.0, upper))
        scale = numpyro.deterministic("scale", 2.0 * jnp.max(upper))
        b = numpyro.sample("b", dist.Uniform(-scale, scale))
        numpyro.sample("x", dist.Normal(a + b, 0.1).expand([2]).to_event(1), obs=x)

    sim = sk.from_numpyro(bounded, observed="x", model_args=(jnp.array(3.0),))
    theta = sim.prior.sample(jax.random.key(0), (2000,))
    assert bool(jnp.all(sim.prior.support(theta)))  # the prior keeps all of its draws
    assert float(theta[:, 0].max()) > 2.5 and float(theta[:, 1].min()) < -5.0


def test_discrete_latents_and_non_callable_models_get_our_messages():
    def discrete(x=None):
        k = numpyro.sample("k", dist.Poisson(3.0))
        numpyro.sample("x", dist.Normal(k, 1.0), obs=x)

    with pytest.raises(ValueError, match=r"site 'k' is discrete \(Poisson"):
        sk.from_numpyro(discrete, observed="x")
    with pytest.raises(TypeError, match=r"`model` must be a numpyro model .* got str"):
        sk.from_numpyro("model", observed="x")
