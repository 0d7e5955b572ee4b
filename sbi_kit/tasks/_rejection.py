"""Rejection sampling from a proposal restricted to the prior's box, used by uniform-prior tasks."""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from .._acceptance import accept_in_batches
from .._types import Key


def sample_in_box(
    key: Key,
    propose: Callable[[Key, int], Array],
    low: float,
    high: float,
    num_samples: int,
    *,
    batch_size: int = 100_000,
    max_batches: int = 10_000,
) -> Array:
    """Draws from ``propose`` and keeps the draws inside ``[low, high]^d``, in order.

    Keeping the first ``num_samples`` accepted draws of an i.i.d. stream gives exact samples of
    the proposal truncated to the box.

    Args:
        key: a JAX PRNG key.
        propose: ``propose(key, n) -> (n, d)`` i.i.d. draws.
        low: lower bound of every component.
        high: upper bound of every component.
        num_samples: number of samples to return.
        batch_size: proposals per round.
        max_batches: give up after this many rounds.

    Returns:
        samples, shape ``(num_samples, d)``.

    Raises:
        RuntimeError: when fewer than ``num_samples`` draws were accepted in ``max_batches`` rounds.
    """
    chain = [key]

    def draw(i: int) -> np.ndarray:
        del i  # the keys form a chain: each batch splits the one before it
        chain[0], sub = jax.random.split(chain[0])
        return np.asarray(propose(sub, batch_size))

    def inside(draws: np.ndarray) -> np.ndarray:
        return np.all((draws > low) & (draws < high), axis=1)

    rows, count = accept_in_batches(draw, inside, num_samples, max_batches)
    if rows is None:
        raise RuntimeError(
            f"rejection sampling accepted only {count} of {num_samples} requested samples after "
            f"{max_batches * batch_size} proposals."
        )
    return jnp.asarray(rows)
