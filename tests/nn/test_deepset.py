import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sbi_kit.nn import DeepSetEmbedding


def test_embedding_is_invariant_to_the_order_of_draws():
    spec = DeepSetEmbedding(element_dim=3, out_dim=5, width=16, features=8)
    flat = spec.build(jax.random.key(0), (12,))
    x = jax.random.normal(jax.random.key(1), (4, 3))
    order = jnp.array([2, 0, 3, 1])
    np.testing.assert_allclose(flat(x.ravel()), flat(x[order].ravel()), rtol=1e-5, atol=1e-6)
    assert flat(x.ravel()).shape == (5,)
    # a (n, element_dim) observation gives the same as its flat form
    stacked = spec.build(jax.random.key(0), (4, 3))
    np.testing.assert_allclose(stacked(x), flat(x.ravel()), rtol=1e-6)
    # changing one draw changes the embedding
    assert float(jnp.abs(flat(x.ravel()) - flat(x.at[0, 0].add(1.0).ravel())).max()) > 1e-4


def test_observations_must_split_into_draws():
    with pytest.raises(ValueError, match="do not split into draws of element_dim=3"):
        DeepSetEmbedding(element_dim=3).build(jax.random.key(0), (8,))
