"""Rejection sampling from a proposal restricted to the prior's box, used by uniform-prior tasks."""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

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
    accepted: list[np.ndarray] = []
    count = 0
    for _ in range(max_batches):
        key, sub = jax.random.split(key)
        draws = np.asarray(propose(sub, batch_size))
        keep = np.all((draws > low) & (draws < high), axis=1)
        accepted.append(draws[keep])
        count += int(keep.sum())
        if count >= num_samples:
            return jnp.asarray(np.concatenate(accepted)[:num_samples])
    raise RuntimeError(
        f"rejection sampling accepted only {count} of {num_samples} requested samples after "
        f"{max_batches * batch_size} proposals."
    )
