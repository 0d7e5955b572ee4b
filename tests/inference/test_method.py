"""A new method plugs into the interface with only its network, its loss and its posterior.

``GaussianNPE`` below is a complete method written against the public interface alone (no
private names): a network maps x to the mean and log-sd of a diagonal Gaussian over the
standardised parameters. ``fit``, ensembles, z-scoring, bounded priors, ``sample``, ``log_prob``
and ``sk.save`` / ``sk.load`` all come from the interface.
"""

import dataclasses
import types

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

import sbi_kit as sk
from sbi_kit.inference import AbstractDensityPosterior, AbstractMethod, AbstractSupport, Bijection
from tests.conftest import gaussian_posterior

# --- the toy method: 41 lines, public names only ----------------------------------------


class GaussianNet(eqx.Module):
    mlp: eqx.nn.MLP

    def __call__(self, x):
        mean, log_sd = jnp.split(self.mlp(jnp.ravel(x)), 2)
        return mean, log_sd


class GaussianPosterior(AbstractDensityPosterior):
    net: GaussianNet
    prior: dist.Distribution
    theta_standardizer: sk.estimators.Standardizer
    x_standardizer: sk.estimators.Standardizer
    method: "GaussianNPE" = eqx.field(static=True)

    def net_log_prob(self, net, theta_std, x_std):
        mean, log_sd = net(x_std)
        return dist.Normal(mean, jnp.exp(log_sd)).log_prob(theta_std).sum()

    def net_sample(self, net, key, x_std, num_samples):
        mean, log_sd = net(x_std)
        return mean + jnp.exp(log_sd) * jax.random.normal(key, (num_samples, mean.shape[0]))


class GaussianNPE(AbstractMethod):
    width: int = 32
    training: sk.Training = sk.Training()
    ensemble_size: int = 1
    support: AbstractSupport = Bijection()

    def build_net(self, key, dim_theta, x_shape):
        size = int(np.prod(x_shape))
        return GaussianNet(eqx.nn.MLP(size, 2 * dim_theta, self.width, 2, key=key))

    def loss(self, net, theta, x, key):
        mean, log_sd = jax.vmap(net)(x)
        return -dist.Normal(mean, jnp.exp(log_sd)).log_prob(theta).sum(-1)

    def posterior(self, net, prior, theta_standardizer, x_standardizer):
        return GaussianPosterior(net, prior, theta_standardizer, x_standardizer, self)


# --- the proof that it plugs in ----------------------------------------------------------------


def test_a_toy_method_trains_samples_saves_and_loads(gaussian_simulator, tmp_path):
    """Analytic posterior of the Gaussian-linear problem: mean within 0.15 sd, sd within 15 %."""
    theta, x = sk.simulate(jax.random.key(0), gaussian_simulator, 2000)
    method = GaussianNPE(training=sk.Training(max_epochs=40, learning_rate=3e-3), ensemble_size=2)
    post = method.fit(jax.random.key(1), theta, x, prior=gaussian_simulator.prior, progress=False)
    assert post.ensemble_size == 2 and post.history.stop_reason in sk.StopReason

    x_o = jnp.array([0.5, -0.3])
    mean, sd = gaussian_posterior(x_o)
    samples = post.sample(jax.random.key(2), x_o, 20_000)
    np.testing.assert_allclose(samples.mean(0), mean, atol=0.15 * sd)
    np.testing.assert_allclose(samples.std(0), sd, rtol=0.15)
    exact = dist.Normal(mean, sd).log_prob(samples[:100]).sum(-1)
    assert np.corrcoef(exact, post.log_prob(samples[:100], x_o))[0, 1] > 0.98

    sk.save(tmp_path / "toy.sbi", post)
    loaded = sk.load(tmp_path / "toy.sbi")
    assert isinstance(loaded, GaussianPosterior) and loaded.method == method
    assert loaded.history == post.history
    np.testing.assert_array_equal(loaded.sample(jax.random.key(2), x_o, 100), samples[:100])


def test_posteriors_of_one_specification_compile_their_sampler_once(tmp_path):
    # flowjax builds a new closure per flow; shared by content, two trainings of the same
    # specification have equal static parts, so jitted sampling is found again, not recompiled
    task = sk.tasks.get("two_moons")
    npe = sk.NPE(
        flow=sk.estimators.MAF(layers=1, width=8, depth=1), training=sk.Training(max_epochs=1)
    )
    posteriors = []
    for seed in (0, 1):
        theta, x = sk.simulate(jax.random.key(seed), task, 100, progress=False)
        posteriors.append(npe.fit(jax.random.key(seed), theta, x, prior=task.prior, progress=False))
    static = [eqx.filter(p, eqx.is_array, inverse=True) for p in posteriors]
    assert eqx.tree_equal(*static)
    leaves = [jax.tree_util.tree_leaves(s) for s in static]
    assert all(a is b for a, b in zip(*leaves, strict=True) if callable(a))
    sk.save(tmp_path / "p.sbi", posteriors[0])
    loaded = sk.load(tmp_path / "p.sbi", prior=task.prior)
    assert eqx.tree_equal(static[0], eqx.filter(loaded, eqx.is_array, inverse=True))


def test_spline_flows_of_one_specification_share_their_functions():
    # each autoregressive layer captures a closure made afresh (flowjax's ravelled-parameter
    # constructor of its spline, tempered or not): shared all the same
    task = sk.tasks.get("two_moons")
    nle = sk.NLE(flow=sk.estimators.NSF(layers=1, width=8, depth=1, knots=4, knot_temperature=2.0))
    static = [
        eqx.filter(nle.init(jax.random.key(seed), 2, (2,), task.prior), eqx.is_array, inverse=True)
        for seed in (0, 1)
    ]
    assert eqx.tree_equal(*static)
    leaves = [jax.tree_util.tree_leaves(s) for s in static]
    assert all(a is b for a, b in zip(*leaves, strict=True) if callable(a))


def test_init_builds_the_same_networks_as_building_them_one_operation_at_a_time():
    # `init` computes an ensemble's networks in one compiled program; the arrays (those its
    # flowjax layers capture in closures included) equal an eager build bit for bit
    task = sk.tasks.get("two_moons")
    small = {"layers": 2, "width": 8, "depth": 1}
    methods = (
        sk.NPE(flow=sk.estimators.NSF(**small, knots=4), ensemble_size=2),
        sk.NLE(flow=sk.estimators.MAF(**small)),
    )
    for method in methods:
        key = jax.random.key(3)
        post = method.init(key, 2, (2,), task.prior)
        built = post.net
        keys = jax.random.split(key, method.ensemble_size)
        eager = eqx.filter_vmap(lambda k, m=method: m.build_net(k, 2, (2,)))(keys)
        a, b = (jax.tree_util.tree_leaves(eqx.filter(n, eqx.is_array)) for n in (built, eager))
        assert len(a) == len(b) > 0
        for u, v in zip(a, b, strict=True):
            assert u.dtype == v.dtype and u.weak_type == v.weak_type
            np.testing.assert_array_equal(u, v)
        captured = [
            [c.cell_contents for c in f.__closure__ or ()]
            for f in jax.tree_util.tree_leaves(eqx.filter(built, eqx.is_array, inverse=True))
            if isinstance(f, types.FunctionType)
        ]
        arrays = [x for cells in captured for x in jax.tree_util.tree_leaves(cells)]
        assert any(eqx.is_array(x) for x in arrays)  # the constructors' captured arrays
        assert not any(isinstance(x, jax.core.Tracer) for x in arrays)
        theta = jnp.zeros((3, 2))
        assert np.isfinite(np.asarray(post.log_prob(theta, jnp.zeros(2)))).all()


def test_fit_with_init_starts_from_that_posterior(gaussian_simulator):
    """A warm start (``fit(init=...)``, what ``sk.sequential`` does between rounds) begins at
    ``init``'s arrays and keeps its z-scoring. With a learning rate of 1e-9 every Adam step is
    about 1e-9, so the warm fit ends where ``init`` was; a fresh fit starts elsewhere. (One
    setting and one data size for all three fits: one compilation.)"""
    prior = gaussian_simulator.prior
    first_data = sk.simulate(jax.random.key(0), gaussian_simulator, 300)
    theta, x = sk.simulate(jax.random.key(5), gaussian_simulator, 300)
    frozen = GaussianNPE(width=8, training=sk.Training(max_epochs=1, learning_rate=1e-9))
    first = frozen.fit(jax.random.key(1), *first_data, prior=prior, progress=False)
    warm = frozen.fit(jax.random.key(2), theta, x, prior=prior, progress=False, init=first)
    cold = frozen.fit(jax.random.key(2), theta, x, prior=prior, progress=False)
    assert eqx.tree_equal(warm.theta_standardizer, first.theta_standardizer)
    assert eqx.tree_equal(warm.x_standardizer, first.x_standardizer)
    assert not eqx.tree_equal(cold.x_standardizer, first.x_standardizer)
    warm_w, cold_w, first_w = (
        jax.tree_util.tree_leaves(eqx.filter(p.net, eqx.is_array)) for p in (warm, cold, first)
    )
    for w, f in zip(warm_w, first_w, strict=True):
        np.testing.assert_allclose(w, f, atol=1e-6)
    assert max(float(jnp.abs(c - f).max()) for c, f in zip(cold_w, first_w, strict=True)) > 0.1


def test_default_training_of_the_density_and_ratio_methods():
    # NLE and NRE share one default (docs/training.md), which differs from sk.Training()'s
    # sbi-like defaults only in batch size and patience; NPE's adds the plateau schedule.
    expected = sk.Training(batch_size=50, patience=100)
    for method in (sk.NLE(), sk.NRE()):
        assert method.training == expected, type(method).__name__
    assert sk.NPE().training == dataclasses.replace(expected, lr_plateau_steps=2700)
    assert (sk.Training().batch_size, sk.Training().patience) == (200, 20)
    assert sk.Training().lr_plateau_steps is None
