import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sbi_kit.nn import ResidualNet


def test_blocks_start_near_identity_and_context_gates_them():
    net = ResidualNet(jax.random.key(0), in_size=5, out_size=3, width=16, blocks=2, context_dim=2)
    x = jax.random.normal(jax.random.key(1), (5,))
    out = net(x)
    assert out.shape == (3,)
    # at initialisation every block adds at most ~1e-3 per unit: the net is last ∘ first
    np.testing.assert_allclose(out, net.last(net.first(x)), atol=1e-2)
    # after moving the blocks away from zero, the context (last two entries) changes the gating
    blocks = jax.tree.map(lambda a: a * 1000.0 if a.ndim == 2 else a, net.blocks)
    moved = eqx.tree_at(lambda n: n.blocks, net, blocks)
    gated = moved(x)
    other = moved(x.at[3:].set(-x[3:]))
    assert float(jnp.abs(gated - other).max()) > 1e-3


def test_context_dim_is_checked():
    with pytest.raises(ValueError, match="context_dim must lie in"):
        ResidualNet(jax.random.key(0), in_size=3, out_size=1, context_dim=4)
