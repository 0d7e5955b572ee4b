import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest

import sbi_kit as sk


def _sim(fail_below=None):
    prior = dist.Normal(jnp.zeros(2), 1.0).to_event(1)

    def simulate(key, theta):
        x = theta + 0.1 * jax.random.normal(key, (2,))
        if fail_below is None:
            return x
        return jnp.where(theta[0] < fail_below, jnp.nan, x)

    return sk.Simulator(prior, simulate)


def test_simulate_shapes_and_moments():
    theta, x = sk.simulate(jax.random.key(0), _sim(), 4000, batch_size=1500)
    assert theta.shape == (4000, 2) and x.shape == (4000, 2)
    # x - θ is N(0, 0.1²): mean within 4 standard errors, sd within 5 %
    resid = np.asarray(x - theta)
    assert np.all(np.abs(resid.mean(0)) < 4 * 0.1 / np.sqrt(4000))
    np.testing.assert_allclose(resid.std(0), 0.1, rtol=0.05)
    np.testing.assert_allclose(theta.std(0), 1.0, rtol=0.05)


def test_simulate_is_deterministic_given_key():
    a = sk.simulate(jax.random.key(3), _sim(), 300, batch_size=128)
    b = sk.simulate(jax.random.key(3), _sim(), 300, batch_size=128)
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, sk.simulate(jax.random.key(4), _sim(), 300).x)


def test_blocks_of_a_chunk_give_the_rows_of_one_vmap(monkeypatch):
    # On CPU a chunk of 1,300 rows runs as 3 vmapped blocks of 512 (padded to 1,536); the
    # padding is discarded and every row is what one vmap over the chunk gives.
    from sbi_kit.simulators import _simulate

    sim = _sim(fail_below=-1.5)
    with pytest.warns(RuntimeWarning, match="dropped"):
        blocked = sk.simulate(jax.random.key(7), sim, 1300)
    monkeypatch.setattr(_simulate, "CPU_BLOCK_ROWS", 10**9)
    with pytest.warns(RuntimeWarning, match="dropped"):
        whole = sk.simulate(jax.random.key(7), sim, 1300)
    assert blocked.num_dropped == whole.num_dropped > 0
    assert blocked.num_valid + blocked.num_dropped == 1300
    np.testing.assert_array_equal(blocked.theta, whole.theta)
    np.testing.assert_allclose(blocked.x, whole.x, rtol=1e-6, atol=1e-7)


def test_simulate_drops_non_finite_rows_and_warns_once_with_count():
    with pytest.warns(RuntimeWarning, match=r"dropped (\d+) of 2000") as record:
        result = sk.simulate(jax.random.key(0), _sim(fail_below=-1.0), 2000, batch_size=512)
    assert len(record) == 1
    theta, x = result
    assert result.num_dropped + result.num_valid == 2000
    assert result.num_valid == theta.shape[0] == x.shape[0]
    assert np.isfinite(np.asarray(x)).all()
    assert np.all(np.asarray(theta[:, 0]) >= -1.0)
    # about Φ(−1) ≈ 15.9 % are dropped (binomial sd ≈ 0.8 %)
    assert abs(result.num_dropped / 2000 - 0.1587) < 4 * 0.0082


def test_simulate_accepts_tasks_and_given_theta():
    task = sk.tasks.get("two_moons")
    theta = jnp.zeros((10, 2))
    _, x = sk.simulate(jax.random.key(0), task, 10, theta=theta)
    # at θ = 0 the two-moons x lies on a circle of radius r ~ N(0.1, 0.01²) about (0.25, 0)
    radius = np.linalg.norm(np.asarray(x) - np.array([0.25, 0.0]), axis=1)
    assert np.all(np.abs(radius - 0.1) < 0.05)


def test_simulate_rejects_bad_input():
    with pytest.raises(TypeError, match="sk.Simulator or a task"):
        sk.simulate(jax.random.key(0), lambda k, t: t, 10)
    with pytest.raises(ValueError, match="positive integer"):
        sk.simulate(jax.random.key(0), _sim(), 0)
    with pytest.raises(ValueError, match=r"`theta` must have shape \(5, 2\)"):
        sk.simulate(jax.random.key(0), _sim(), 5, theta=jnp.zeros((5, 3)))


def test_simulator_checks_its_prior():
    with pytest.raises(ValueError, match=r"event shape \(dim_theta,\)"):
        sk.Simulator(dist.Normal(0.0, 1.0), lambda k, t: t)
    with pytest.raises(ValueError, match="batch shape"):
        sk.Simulator(dist.Normal(jnp.zeros((3, 2)), 1.0).to_event(1), lambda k, t: t)
    with pytest.raises(TypeError, match="numpyro Distribution"):
        sk.Simulator("normal", lambda k, t: t)
