"""Shared fixtures: small problems with analytic answers."""

import sys

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
import pytest

import sbi_kit as sk

PRIOR_SD = 1.0
NOISE_SD = 0.5


@pytest.fixture(autouse=True)
def _close_figures():
    """Closes the figures a test left open: matplotlib warns (an error here) past 20 of them."""
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture
def restore_compilation_cache():
    """Puts back the persistent-cache folder in use before the test (sbi_kit sets one on
    import; a test that moves it or switches it off must not change it for later tests)."""
    before = jax.config.jax_compilation_cache_dir
    yield
    sk.set_compilation_cache(before)


def gaussian_posterior(x_o):
    """Analytic posterior of θ ~ N(0, PRIOR_SD² I), x ~ N(θ, NOISE_SD² I): mean and sd."""
    w = PRIOR_SD**2 / (PRIOR_SD**2 + NOISE_SD**2)
    return w * jnp.asarray(x_o), jnp.sqrt(w) * NOISE_SD


@pytest.fixture(scope="session")
def gaussian_simulator():
    """A 2-d Gaussian-linear problem with a conjugate, analytic posterior."""
    prior = dist.Normal(jnp.zeros(2), PRIOR_SD).to_event(1)
    return sk.Simulator(prior, lambda key, th: th + NOISE_SD * jax.random.normal(key, (2,)))


@pytest.fixture(scope="session")
def gaussian_npe(gaussian_simulator):
    """NPE trained once on the Gaussian problem (shared by several tests)."""
    theta, x = sk.simulate(jax.random.key(0), gaussian_simulator, 3000)
    npe = sk.NPE(
        flow=sk.estimators.NSF(layers=2, width=32, depth=1, knots=6),
        training=sk.Training(max_epochs=60, patience=10, batch_size=100, learning_rate=2e-3),
    )
    return npe.fit(jax.random.key(1), theta, x, prior=gaussian_simulator.prior, progress=False)
