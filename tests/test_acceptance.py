"""The shared accept-in-batches loop, and the two samplers built on it when too little is kept."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest

import sbi_kit as sk
from sbi_kit._acceptance import accept_in_batches
from sbi_kit.tasks._rejection import sample_in_box


def test_keeps_accepted_rows_in_stream_order_across_batches():
    calls = []

    def draw(i):
        calls.append(i)
        return np.arange(6.0).reshape(3, 2) + 6 * i  # rows (0,1), (2,3), (4,5), (6,7), ...

    rows, accepted = accept_in_batches(draw, lambda b: b[:, 0] % 4 == 0, 3, 10)
    np.testing.assert_array_equal(rows, [[0.0, 1.0], [4.0, 5.0], [8.0, 9.0]])
    assert accepted == 3 and calls == [0, 1]  # stops as soon as enough are kept


def test_reports_a_shortfall_instead_of_returning_fewer_rows():
    rows, accepted = accept_in_batches(
        lambda i: np.full((4, 1), float(i)), lambda b: b[:, 0] == 1.0, 5, 3
    )
    assert rows is None and accepted == 4


def test_box_rejection_raises_when_the_box_holds_no_mass():
    def propose(key, n):
        return 5.0 + jax.random.uniform(key, (n, 2))  # always outside [-1, 1]^2

    with pytest.raises(RuntimeError, match="accepted only 0 of 10"):
        sample_in_box(jax.random.key(0), propose, -1.0, 1.0, 10, batch_size=50, max_batches=3)


class _NarrowPosterior:
    """A posterior concentrated at 0 (sd 0.001) under a U(-1, 1)^2 prior: its HPD region holds
    about 1e-5 of the prior's mass. Only what truncated_prior_sample uses."""

    prior = dist.Uniform(-jnp.ones(2), jnp.ones(2)).to_event(1)

    def sample(self, key, x_o, num_samples):
        return 0.001 * jax.random.normal(key, (num_samples, 2))

    def log_prob(self, theta, x_o):
        return -jnp.sum(theta**2, axis=-1) / (2 * 0.001**2)


def test_truncated_prior_sample_raises_with_the_acceptance_when_the_region_is_tiny():
    with pytest.raises(RuntimeError, match="3 batches of 50 prior draws gave only 0 inside"):
        sk.inference.truncated_prior_sample(
            jax.random.key(2), _NarrowPosterior(), jnp.zeros(2), 50, max_batches=3
        )
