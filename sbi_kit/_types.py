"""Array aliases used in signatures across sbi_kit (shapes are written out in docstrings)."""

from jaxtyping import Array, Float, PRNGKeyArray

Key = PRNGKeyArray
"""A JAX PRNG key (``jax.random.key(0)``)."""

Theta = Float[Array, "dim_theta"]
"""One parameter vector."""

Thetas = Float[Array, "n dim_theta"]
"""A batch of parameter vectors."""

Obs = Float[Array, "..."]
"""One observation (usually of shape ``(dim_x,)``)."""

Observations = Float[Array, "n ..."]
"""A batch of observations."""

__all__ = ["Key", "Theta", "Thetas", "Obs", "Observations"]
