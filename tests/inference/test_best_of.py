"""sk.estimators.BestOf: fit trains every candidate flow and keeps the lowest validation loss."""

import dataclasses
import re
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from flowjax.bijections import Affine
from flowjax.distributions import Transformed

import sbi_kit as sk

PRIOR = dist.Normal(jnp.zeros(2), 1.0).to_event(1)
TINY_MAF = sk.estimators.MAF(layers=1, width=8, depth=1)
TINY_NSF = sk.estimators.NSF(layers=1, width=8, depth=1, knots=4)
TRAINING = sk.Training(max_epochs=4, batch_size=50)


SIM = sk.Simulator(PRIOR, lambda k, th: th + 0.3 * jax.random.normal(k, (2,)))  # x ~ N(θ, 0.3²)


@pytest.fixture(scope="module")
def data():
    """400 pairs from SIM."""
    return sk.simulate(jax.random.key(0), SIM, 400, progress=False)


def _same_arrays(a, b) -> bool:
    leaves_a = jax.tree.leaves(eqx.filter(a, eqx.is_array))
    leaves_b = jax.tree.leaves(eqx.filter(b, eqx.is_array))
    if len(leaves_a) != len(leaves_b):
        return False
    pairs = zip(leaves_a, leaves_b, strict=True)
    return all(np.array_equal(np.asarray(u), np.asarray(v)) for u, v in pairs)


@pytest.mark.parametrize("method_type", [sk.NLE, sk.NPE])
def test_fit_keeps_the_candidate_with_the_lowest_validation_loss_bit_for_bit(method_type, data):
    key = jax.random.key(1)
    choice = sk.estimators.BestOf((TINY_NSF, TINY_MAF))
    method = method_type(flow=choice, training=TRAINING)
    chosen = method.fit(key, data.theta, data.x, prior=PRIOR, progress=False)
    alone = {
        flow: dataclasses.replace(method, flow=flow).fit(
            key, data.theta, data.x, prior=PRIOR, progress=False
        )
        for flow in choice.candidates
    }
    lowest = {flow: min(p.history.validation_loss) for flow, p in alone.items()}
    best = min(lowest, key=lambda f: lowest[f])
    assert chosen.method == dataclasses.replace(method, flow=best)  # a plain flow, saveable
    assert _same_arrays(chosen, alone[best])  # the same network as the candidate alone
    assert chosen.history.choice == tuple((repr(f), lowest[f]) for f in choice.candidates)
    assert chosen.history.validation_loss == alone[best].history.validation_loss


def test_a_warm_start_continues_the_flow_of_init(data):
    method = sk.NLE(flow=sk.estimators.BestOf((TINY_NSF, TINY_MAF)), training=TRAINING)
    previous = dataclasses.replace(method, flow=TINY_MAF).fit(
        jax.random.key(2), data.theta, data.x, prior=PRIOR, progress=False
    )
    key = jax.random.key(3)
    continued = method.fit(key, data.theta, data.x, prior=PRIOR, progress=False, init=previous)
    plain = previous.method.fit(key, data.theta, data.x, prior=PRIOR, progress=False, init=previous)
    assert continued.method.flow == TINY_MAF and continued.history.choice == ()
    assert _same_arrays(continued, plain)
    other = dataclasses.replace(method, flow=dataclasses.replace(TINY_NSF, knots=5))
    stranger = other.fit(jax.random.key(2), data.theta, data.x, prior=PRIOR, progress=False)
    with pytest.raises(ValueError, match="which is not one of this method's candidates"):
        method.fit(key, data.theta, data.x, prior=PRIOR, progress=False, init=stranger)


def test_the_choice_survives_save_and_load(data, tmp_path):
    method = sk.NPE(flow=sk.estimators.BestOf((TINY_MAF, TINY_NSF)), training=TRAINING)
    posterior = method.fit(jax.random.key(4), data.theta, data.x, prior=PRIOR, progress=False)
    path = tmp_path / "chosen.sbik"
    sk.save(path, posterior)
    loaded = sk.load(path)
    assert loaded.method == posterior.method and loaded.history.choice == posterior.history.choice
    key, x_o = jax.random.key(5), jnp.array([0.2, -0.1])
    assert np.array_equal(posterior.sample(key, x_o, 50), loaded.sample(key, x_o, 50))


def test_nle_chooses_between_a_spline_and_an_affine_flow_by_default():
    assert sk.NLE().flow == sk.estimators.BestOf((sk.estimators.NSF(), sk.estimators.MAF()))
    assert isinstance(sk.NPE().flow, sk.estimators.NSF)  # NPE: one flow


@pytest.mark.parametrize("method_type", [sk.NLE, sk.NPE])
def test_sequential_rounds_carry_every_candidate_and_choose_by_held_out_loss(method_type):
    """Every round continues each candidate's own networks (for NPE through APT, which needs
    the previous posterior of the same flow). Round 1 keeps the lowest validation loss; round r
    the candidate whose round r − 1 networks predicted round r's new simulations best
    (``held_out_loss``: pairs no candidate trained or stopped on), that round's alone. The
    candidate chosen in round 1 trains on exactly the data of a run with it alone."""
    tiny_mcmc = sk.mcmc.MCMCConfig(num_chains=2, num_warmup=20)
    extra = {"mcmc": tiny_mcmc} if method_type is sk.NLE else {}
    choice = sk.estimators.BestOf((TINY_NSF, TINY_MAF))
    method = method_type(flow=choice, training=TRAINING, **extra)
    x_o = jnp.array([0.3, -0.2])
    key = jax.random.key(6)
    result = sk.sequential(
        key, method, SIM, x_o, rounds=3, simulations_per_round=200, progress=False
    )
    labels = [repr(f) for f in choice.candidates]
    assert [[label for label, _ in h.choice] for h in result.histories] == [labels] * 3
    for h, kept in zip(result.histories, result.posteriors, strict=True):
        assert repr(kept.method.flow) == min(h.choice, key=lambda c: c[1])[0]

    def new_pairs(r):
        return result.theta[result.round_index == r], result.x[result.round_index == r]

    def score(posterior, r):
        return sk.inference.held_out_loss(posterior, jax.random.key(0), *new_pairs(r))

    # round 2: each candidate's round-1 posterior (as trained alone) on round 2's pairs
    for flow in choice.candidates:
        kept_1 = flow == result.posteriors[0].method.flow  # proposes round 2: the same data
        alone = sk.sequential(
            key,
            dataclasses.replace(method, flow=flow),
            SIM,
            x_o,
            rounds=2 if kept_1 else 1,
            simulations_per_round=200,
            progress=False,
        )
        if kept_1:
            np.testing.assert_array_equal(result.theta[:400], alone.theta)
        expected = score(alone.posteriors[0], 1)
        assert dict(result.histories[1].choice)[repr(flow)] == pytest.approx(expected, rel=1e-6)
    # round 3: the round-2 networks of the candidate kept in round 2, on round 3's pairs only
    kept_2 = result.posteriors[1]
    expected = score(kept_2, 2)
    assert dict(result.histories[2].choice)[repr(kept_2.method.flow)] == pytest.approx(
        expected, rel=1e-6
    )


def test_held_out_loss_of_nle_is_the_mean_negative_log_likelihood(data):
    """For NLE, the held-out loss is −mean log q(x | θ) of its learned likelihood (the numpyro
    distribution users sample with), shifted by the x z-scoring's log-Jacobian."""
    method = sk.NLE(flow=TINY_MAF, training=TRAINING)
    posterior = method.fit(jax.random.key(8), data.theta, data.x, prior=PRIOR, progress=False)
    test = sk.simulate(jax.random.key(9), SIM, 50, progress=False)
    log_q = posterior.likelihood(test.theta).log_prob(test.x)
    log_jacobian = jnp.sum(jnp.log(posterior.x_standardizer.scale))
    expected = float(-jnp.mean(log_q) - log_jacobian)
    held_out = sk.inference.held_out_loss(posterior, jax.random.key(0), test.theta, test.x)
    assert held_out == pytest.approx(expected, abs=1e-4)


def test_held_out_loss_of_npe_is_the_mean_negative_log_density(data):
    """For NPE learning θ in its own coordinates (``Rejection()``), the held-out loss is
    −mean log q(θ | x) shifted by the z-scoring's log-Jacobian."""
    method = sk.NPE(flow=TINY_MAF, training=TRAINING, support=sk.inference.Rejection())
    posterior = method.fit(jax.random.key(8), data.theta, data.x, prior=PRIOR, progress=False)
    test = sk.simulate(jax.random.key(9), SIM, 50, progress=False)
    log_q = jnp.stack([posterior.log_prob(t, x) for t, x in zip(test.theta, test.x, strict=True)])
    log_jacobian = jnp.sum(jnp.log(posterior.theta_standardizer.scale))
    expected = float(-jnp.mean(log_q) - log_jacobian)
    held_out = sk.inference.held_out_loss(posterior, jax.random.key(0), test.theta, test.x)
    assert held_out == pytest.approx(expected, abs=1e-4)


class _NaNFlow(sk.estimators.AbstractFlow):
    """A flow spec whose density is NaN everywhere: its training never reaches a finite
    validation loss (as a candidate did in a later SNLE round on lotka_volterra)."""

    width: int = 8

    def build(self, key, dim, cond_dim):
        flow = dataclasses.replace(TINY_MAF, width=self.width).build(key, dim, cond_dim)
        return Transformed(flow, Affine(loc=jnp.full(dim, jnp.nan)))


@pytest.mark.filterwarnings("ignore:.*the loss became NaN:RuntimeWarning")
def test_a_candidate_without_a_finite_validation_loss_is_left_out_with_a_warning(data):
    key = jax.random.key(7)
    method = sk.NLE(flow=sk.estimators.BestOf((_NaNFlow(), TINY_MAF)), training=TRAINING)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chosen = method.fit(key, data.theta, data.x, prior=PRIOR, progress=False)
    messages = [str(w.message) for w in caught]
    assert any("loss became NaN" in m for m in messages)  # from the candidate's training
    assert sum(re.search(r"_NaNFlow\(.*\) was left out", m) is not None for m in messages) == 1
    alone = dataclasses.replace(method, flow=TINY_MAF)
    assert _same_arrays(chosen, alone.fit(key, data.theta, data.x, prior=PRIOR, progress=False))
    assert chosen.method.flow == TINY_MAF and chosen.history.choice == ()
    failing = sk.NLE(flow=sk.estimators.BestOf((_NaNFlow(), _NaNFlow(width=9))), training=TRAINING)
    with pytest.raises(FloatingPointError, match="validation loss was never finite"):
        failing.fit(key, data.theta, data.x, prior=PRIOR, progress=False)


@pytest.mark.filterwarnings("ignore:.*the loss became NaN:RuntimeWarning")
def test_sequential_rounds_leave_a_failed_candidate_out_of_the_later_rounds():
    tiny_mcmc = sk.mcmc.MCMCConfig(num_chains=2, num_warmup=20)
    flow = sk.estimators.BestOf((_NaNFlow(), TINY_MAF))
    method = sk.NLE(flow=flow, training=TRAINING, mcmc=tiny_mcmc)
    args = dict(rounds=2, simulations_per_round=200, progress=False)
    key, x_o = jax.random.key(8), jnp.array([0.3, -0.2])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = sk.sequential(key, method, SIM, x_o, **args)
    left_out = [str(w.message) for w in caught if "was left out" in str(w.message)]
    assert len(left_out) == 1 and "(round 1)" in left_out[0]  # round 2 did not retry it
    alone = sk.sequential(key, dataclasses.replace(method, flow=TINY_MAF), SIM, x_o, **args)
    np.testing.assert_array_equal(result.theta, alone.theta)
    assert _same_arrays(result.posterior.net, alone.posterior.net)
