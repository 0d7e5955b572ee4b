"""Black-box simulators run through concurrent.futures executors: a process pool and Dask.

Worker processes are not forked from the test process: JAX is multithreaded, and forking a
process that runs it can deadlock (JAX warns on os.fork()). They start from a fork server
that has imported sbi_kit (and distributed) but run no JAX code, so that each new worker
does not pay the few seconds of importing them again (see the `processes` fixture).
"""

import concurrent.futures as cf
import multiprocessing
import multiprocessing.forkserver
import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest

import sbi_kit as sk

PRIOR = dist.Normal(jnp.zeros(2), 1.0).to_event(1)


# The simulate functions are defined at module level, so that a process pool can pickle them.
def noisy(seed, theta):
    """x = θ + N(0, I) noise from the seed; raises for θ₀ < -1, returns NaN for θ₁ > 1.2."""
    if theta[0] < -1.0:
        raise ValueError("theta[0] below -1")
    if theta[1] > 1.2:
        return np.array([np.nan, 0.0])
    return theta + np.random.default_rng(seed).normal(size=2)


def dies_at_99(seed, theta):
    """Kills its worker process (no exception, no cleanup) where θ₀ = 99."""
    if theta[0] == 99.0:
        os._exit(3)
    return theta + np.random.default_rng(seed).normal(size=2)


def seed_as_output(seed, theta):
    """Returns the seed it got in three 21-bit pieces (exact in float32, which x is stored as)."""
    return np.array([seed >> 42, (seed >> 21) & 0x1FFFFF, seed & 0x1FFFFF], dtype=np.float64)


def _theta(num, seed=0):
    return np.random.default_rng(seed).normal(size=(num, 2)).astype(np.float32)


def _expected_drops(theta):
    raised = theta[:, 0] < -1.0
    nan = ~raised & (theta[:, 1] > 1.2)
    return raised, nan


def _run(executor=None, **kwargs):
    """``noisy`` at 40 fixed θ, with the drop warning caught and returned."""
    sim = sk.simulators.BlackBoxSimulator(PRIOR, noisy)
    with pytest.warns(RuntimeWarning, match="dropped") as record:
        result = sk.simulate(
            jax.random.key(0), sim, 40, theta=_theta(40), executor=executor, **kwargs
        )
    assert len(record) == 1
    return result, str(record[0].message)


@pytest.fixture(scope="module")
def serial():
    return _run(batch_size=3, progress=False)


def test_serial_run_drops_only_the_failed_rows_and_reports_them_once(serial):
    result, message = serial
    theta = _theta(40)
    raised, nan = _expected_drops(theta)
    assert raised.sum() > 0 and nan.sum() > 0  # the fixed θ exercise both kinds
    keep = ~raised & ~nan
    assert result.num_dropped == int(raised.sum() + nan.sum())
    assert result.num_valid == int(keep.sum())
    np.testing.assert_array_equal(result.theta, theta[keep])
    assert np.isfinite(np.asarray(result.x)).all()
    assert message.startswith(f"sk.simulate dropped {result.num_dropped} of 40 simulations: ")
    assert f"{raised.sum()} raised (ValueError ×{raised.sum()}; first at simulation " in message
    assert "theta[0] below -1" in message
    assert f"{nan.sum()} returned NaN or inf" in message
    # x − θ is the seed's N(0, 1) noise: 24 values, mean within 4 standard errors
    noise = np.asarray(result.x - result.theta)
    assert abs(noise.mean()) < 4 / np.sqrt(noise.size)


def test_seeds_come_from_the_key_one_per_row_whatever_the_chunking():
    sim = sk.simulators.BlackBoxSimulator(PRIOR, seed_as_output)
    a = sk.simulate(jax.random.key(5), sim, 30, batch_size=1, progress=False)
    b = sk.simulate(jax.random.key(5), sim, 30, batch_size=7, progress=False)
    c = sk.simulate(jax.random.key(6), sim, 30, batch_size=7, progress=False)
    np.testing.assert_array_equal(a.theta, b.theta)
    np.testing.assert_array_equal(a.x, b.x)
    seeds = [int(p0) << 42 | int(p1) << 21 | int(p2) for p0, p1, p2 in np.asarray(a.x)]
    assert len(set(seeds)) == 30 and all(0 <= s < 2**63 for s in seeds)
    assert max(seeds) > 2**62  # 63 random bits: the top one is set in about half of them
    other = {int(p0) << 42 | int(p1) << 21 | int(p2) for p0, p1, p2 in np.asarray(c.x)}
    assert not other & set(seeds)


@pytest.fixture(scope="module")
def processes():
    """The "forkserver" start method, with sbi_kit and distributed imported by the server.

    The preload list is global to multiprocessing; it is restored afterwards (a server that
    is already running keeps its modules either way, which only changes start-up times).
    """
    context = multiprocessing.get_context("forkserver")
    preload = getattr(multiprocessing.forkserver._forkserver, "_preload_modules", ["__main__"])
    context.set_forkserver_preload(["sbi_kit", "distributed"])
    yield context
    context.set_forkserver_preload(preload)


@pytest.fixture(scope="module")
def pool2(processes):
    with cf.ProcessPoolExecutor(2, mp_context=processes) as pool:
        yield pool


def test_process_pools_with_one_and_two_workers_match_the_serial_run(serial, processes, pool2):
    reference, message = serial
    with cf.ProcessPoolExecutor(1, mp_context=processes) as pool1:
        one, message1 = _run(pool1, batch_size=7, max_in_flight=2, progress=False)
    two, message2 = _run(pool2, batch_size=4, progress=False)
    for result, msg in ((one, message1), (two, message2)):
        np.testing.assert_array_equal(result.theta, reference.theta)
        np.testing.assert_array_equal(result.x, reference.x)
        assert result.num_dropped == reference.num_dropped
        assert msg == message


def test_a_lambda_cannot_go_to_a_process_pool_and_says_why(pool2):
    sim = sk.simulators.BlackBoxSimulator(PRIOR, lambda seed, theta: theta)
    with pytest.raises(RuntimeError, match="all 6 simulations .* failed.*picklable"):
        sk.simulate(jax.random.key(0), sim, 6, executor=pool2, batch_size=3, progress=False)


def test_a_dying_process_pool_worker_stops_the_run_with_the_counts(processes):
    theta = _theta(12)
    theta[5, 0] = 99.0  # chunk 2 (rows 4 and 5) kills its worker
    sim = sk.simulators.BlackBoxSimulator(PRIOR, dies_at_99)
    with (
        cf.ProcessPoolExecutor(1, mp_context=processes) as pool,
        pytest.raises(RuntimeError) as info,
    ):
        # one chunk in flight at a time: the two chunks before it have finished
        sk.simulate(
            jax.random.key(0),
            sim,
            12,
            theta=theta,
            executor=pool,
            batch_size=2,
            max_in_flight=1,
            progress=False,
        )
    message = str(info.value)
    assert "BrokenProcessPool" in message and "`tests.simulators.test_black_box" in message
    assert (
        "4 of 12 simulations had finished, 2 were running or queued and are lost, 6 were not "
        in (message)
    )
    assert "fresh executor" in message and "Dask" in message
    assert isinstance(info.value.__cause__, cf.BrokenExecutor)


@pytest.fixture(scope="module")
def dask_executor(processes):
    """A 2-worker Dask cluster of processes (started from the fork server). A task whose
    worker dies fails at once (allowed-failures 0, instead of 3 retries on other workers, each
    of which it would kill)."""
    dask = pytest.importorskip("dask")
    distributed = pytest.importorskip("distributed")
    config = {
        "distributed.scheduler.allowed-failures": 0,
        "distributed.worker.multiprocessing-method": "forkserver",
    }
    with dask.config.set(config):
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = distributed.Client(cluster)
    try:
        yield client.get_executor()
    finally:
        client.close()
        cluster.close()


def test_dask_matches_the_serial_run(serial, dask_executor):
    reference, message = serial
    result, message_dask = _run(dask_executor, batch_size=5, progress=False)
    np.testing.assert_array_equal(result.theta, reference.theta)
    np.testing.assert_array_equal(result.x, reference.x)
    assert message_dask == message


def test_a_dying_dask_worker_loses_only_its_chunk(dask_executor):
    theta = _theta(12)
    theta[5, 0] = 99.0  # chunk 2 (rows 4 and 5) kills the worker that runs it
    sim = sk.simulators.BlackBoxSimulator(PRIOR, dies_at_99)
    # one chunk in flight, so that no other chunk is queued on the dying worker (with
    # allowed-failures 0 the scheduler would fail it too)
    with pytest.warns(RuntimeWarning) as record:
        result = sk.simulate(
            jax.random.key(0),
            sim,
            12,
            theta=theta,
            executor=dask_executor,
            batch_size=2,
            max_in_flight=1,
            progress=False,
        )
    assert len(record) == 1
    message = str(record[0].message)
    assert message.startswith("sk.simulate dropped 2 of 12 simulations: 2 were lost with 1 chunk")
    assert "KilledWorker ×1" in message
    keep = np.ones(12, bool)
    keep[4:6] = False
    assert result.num_dropped == 2
    np.testing.assert_array_equal(result.theta, theta[keep])
    # the other rows are exactly those of a serial run (the seeds depend on the row, not θ)
    safe = theta.copy()
    safe[5, 0] = 0.0
    reference = sk.simulate(jax.random.key(0), sim, 12, theta=safe, progress=False)
    np.testing.assert_array_equal(result.x, np.asarray(reference.x)[keep])


class _CountingExecutor(cf.ThreadPoolExecutor):
    """A thread pool that records how many of its futures were unfinished at each submit."""

    def __init__(self):
        super().__init__(2)
        self.futures: list[cf.Future] = []
        self.unfinished_at_submit: list[int] = []

    def submit(self, fn, /, *args, **kwargs):
        self.unfinished_at_submit.append(sum(not f.done() for f in self.futures))
        future = super().submit(fn, *args, **kwargs)
        self.futures.append(future)
        return future


def _identity(seed, theta):
    return theta


def test_chunks_bound_the_number_of_futures_and_those_in_flight():
    sim = sk.simulators.BlackBoxSimulator(PRIOR, _identity)
    with _CountingExecutor() as executor:
        result = sk.simulate(jax.random.key(0), sim, 1_100, executor=executor, progress=False)
    # default: ⌈1,100 / (4 · 256)⌉ = 2 rows a chunk, 550 futures, at most 256 in flight
    assert len(executor.futures) == 550
    assert max(executor.unfinished_at_submit) <= 255
    np.testing.assert_array_equal(result.x, result.theta)
    with _CountingExecutor() as executor:
        sk.simulate(
            jax.random.key(0),
            sim,
            50,
            executor=executor,
            batch_size=5,
            max_in_flight=3,
            progress=False,
        )
    assert len(executor.futures) == 10 and max(executor.unfinished_at_submit) <= 2


def test_progress_bar_is_shown_when_there_is_more_than_one_chunk(capsys):
    sim = sk.simulators.BlackBoxSimulator(PRIOR, _identity)
    sk.simulate(jax.random.key(0), sim, 6, batch_size=2)  # 3 chunks: shown, over simulations
    assert "simulate:" in capsys.readouterr().err
    sk.simulate(jax.random.key(0), sim, 6, batch_size=6)  # one chunk: hidden
    sk.simulate(jax.random.key(0), sim, 6, batch_size=2, progress=False)
    assert capsys.readouterr().err == ""
    sk.simulate(jax.random.key(0), sim, 6, batch_size=6, progress=True)
    assert "0/6 [" in capsys.readouterr().err


# ---- bad input and broken contracts -------------------------------------------------------


def _returns(value):
    return lambda seed, theta: value(theta) if callable(value) else value


@pytest.mark.parametrize(
    ("output", "error", "match"),
    [
        (None, TypeError, r"simulate `.*<lambda>` returned None \(simulation 0\)"),
        ("abc", TypeError, r"returned a str of dtype <U3, not real numbers"),
        ([[1.0], [1.0, 2.0]], TypeError, r"returned a list that is not one array"),
        (1.5, ValueError, r"returned a scalar .*np.atleast_1d"),
        (np.array([1 + 2j]), TypeError, r"dtype complex128"),
    ],
)
def test_outputs_that_are_not_one_real_array_are_refused(output, error, match):
    sim = sk.simulators.BlackBoxSimulator(PRIOR, _returns(output))
    with pytest.raises(error, match=match):
        sk.simulate(jax.random.key(0), sim, 3, progress=False)


def _shape_follows_theta(seed, theta):
    return np.zeros(3) if theta[0] > 0 else np.zeros(2)


@pytest.mark.parametrize("batch_size", [1, 10])  # across chunks, and within one chunk
def test_outputs_of_different_shapes_are_refused(batch_size):
    sim = sk.simulators.BlackBoxSimulator(PRIOR, _shape_follows_theta)
    with pytest.raises(ValueError, match=r"_shape_follows_theta` returned shape \((2|3),\) at "):
        sk.simulate(jax.random.key(0), sim, 10, batch_size=batch_size, progress=False)


def _always_raises(seed, theta):
    raise KeyError("no such parameter file")


def test_all_simulations_failing_is_an_error_not_an_empty_result():
    sim = sk.simulators.BlackBoxSimulator(PRIOR, _always_raises)
    with pytest.raises(RuntimeError, match=r"all 4 simulations .* failed: 4 raised \(KeyError ×4"):
        sk.simulate(jax.random.key(0), sim, 4, progress=False)


def test_black_box_simulator_names_its_parameters():
    """(Its refusals of bad fields are rows of tests/test_bad_input.py.)"""
    sim = sk.simulators.BlackBoxSimulator(PRIOR, _identity, theta_names=("a", "b"))
    assert sim.labels() == ("a", "b") and sim.dim_theta == 2
    assert isinstance(sim, sk.simulators.AbstractSimulator)
    assert not isinstance(sim, sk.Simulator)


def test_a_black_box_with_an_executor_warns_nothing_when_all_rows_succeed():
    sim = sk.simulators.BlackBoxSimulator(PRIOR, _identity)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with cf.ThreadPoolExecutor(2) as pool:
            result = sk.simulate(jax.random.key(0), sim, 9, executor=pool, progress=False)
    assert result.num_dropped == 0 and result.num_valid == 9


def test_importing_sbi_kit_runs_no_jax_code():
    """The fork server above imports sbi_kit and then forks workers: that is safe only while the
    import starts no JAX backend (and its threads). A module-level `jnp` computation in the
    package would make the pool tests deadlock at random; this catches it directly."""
    import subprocess
    import sys

    code = "import sbi_kit\nfrom jax._src import xla_bridge\nprint(bool(xla_bridge._backends))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr
