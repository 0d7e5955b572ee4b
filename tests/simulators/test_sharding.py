"""sk.simulate shards each chunk over the devices, with the results of one device bit for bit.

The devices are 4 CPU devices made by XLA_FLAGS=--xla_force_host_platform_device_count=4,
which must be set before JAX starts, so the sharded run happens in a subprocess.
"""

import contextlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

import sbi_kit as sk

REPO = Path(__file__).resolve().parents[2]

# Runs each case in a 4-device process and records over how many devices each chunk's output
# was spread.
SCRIPT = textwrap.dedent(
    """
    import sys
    import jax, numpy as np
    import tests.simulators.test_sharding as cases

    assert len(jax.devices()) == 4, jax.devices()
    arrays = {}
    for name, run in cases.CASES.items():
        with cases.recording_spread() as spread:
            theta, x, dropped = run()
        arrays[name + "/theta"], arrays[name + "/x"] = theta, x
        arrays[name + "/dropped"] = np.array(dropped)
        arrays[name + "/spread"] = np.array(spread)
    np.savez(sys.argv[1], **arrays)
    """
)


@contextlib.contextmanager
def recording_spread():
    """Records, for each chunk sk.simulate runs, over how many devices its output lies."""
    from sbi_kit.simulators import _simulate

    chunk = _simulate._simulate_chunk
    spread = []

    def recording(*args):
        out = chunk(*args)
        spread.append(len(out.sharding.device_set))
        return out

    _simulate._simulate_chunk = recording
    try:
        yield spread
    finally:
        _simulate._simulate_chunk = chunk


def _sim_with_failures():
    import jax.numpy as jnp
    import numpyro.distributions as dist

    def simulate(key, theta):
        x = jnp.stack([jnp.sin(theta[0]) * jnp.exp(theta[1]), jnp.log1p(theta[0] ** 2)])
        x = x + 0.1 * jax.random.normal(key, (2,))
        return jnp.where(theta[0] < -1.0, jnp.nan, x)  # about 16 % dropped

    return sk.Simulator(dist.Normal(jnp.zeros(2), 1.0).to_event(1), simulate)


def _run(key, sim, num, batch_size):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the drop warning; counts compared
        result = sk.simulate(jax.random.key(key), sim, num, batch_size=batch_size, progress=False)
    return np.asarray(result.theta), np.asarray(result.x), result.num_dropped


# chunk sizes that are and are not multiples of 4, a last chunk shorter than the others, and a
# run shorter than the device count
CASES = {
    "failures_50_by_15": lambda: _run(0, _sim_with_failures(), 50, 15),
    "two_moons_30_by_12": lambda: _run(1, sk.tasks.get("two_moons"), 30, 12),
    "two_moons_3": lambda: _run(2, sk.tasks.get("two_moons"), 3, None),
}


def test_sharded_simulation_is_bit_identical_to_one_device(tmp_path):
    if len(jax.local_devices()) != 1:
        pytest.skip("the reference run needs a one-device process (XLA_FLAGS is set here)")
    out = tmp_path / "sharded.npz"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = (
        env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    ).strip()
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = np.load(out)
    for name, run in CASES.items():
        spread = got[name + "/spread"]
        assert len(spread) > 0 and (spread == 4).all(), (name, spread)
        with recording_spread() as spread_here:
            theta, x, dropped = run()
        assert len(spread_here) == len(spread) and set(spread_here) == {1}, name
        np.testing.assert_array_equal(got[name + "/theta"], theta)
        np.testing.assert_array_equal(got[name + "/x"], x)
        assert int(got[name + "/dropped"]) == dropped
    assert int(got["failures_50_by_15/dropped"]) > 0
