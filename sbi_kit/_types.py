"""Type aliases used in signatures across sbi_kit (shapes are written out in docstrings)."""

from jaxtyping import PRNGKeyArray

Key = PRNGKeyArray
"""A JAX PRNG key (``jax.random.key(0)``)."""

__all__ = ["Key"]
