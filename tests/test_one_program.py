"""``one_program``: a pytree built by one jitted program, bit-identical to building it eagerly."""

import types

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import sbi_kit as sk
from sbi_kit._one_program import _BUILT, _EAGER, one_program


class Holder(eqx.Module):
    weight: jax.Array
    fn: types.FunctionType


def _closure(captured):
    def fn(v):
        return v + captured

    return fn


def _nested_closure(captured):
    inner = _closure(captured)

    def fn(v):
        return inner(v)

    return fn


def _build(key):  # a weight from the key, and a function closing over a constant array
    return Holder(jax.random.normal(key, (3, 2)), _closure(jnp.arange(2.0) * 0.5))


def _build_nested(key):  # the constant hidden one closure deeper
    return Holder(jax.random.normal(key, (3, 2)), _nested_closure(jnp.arange(2.0) * 0.5))


def test_one_program_equals_the_eager_build_and_fills_in_captured_arrays():
    calls = []

    def counted(key):
        calls.append(1)
        return _build(key)

    name = ("holder", object())  # a cache key of this test's own
    for seed in (0, 1):
        key = jax.random.key(seed)
        built, eager = one_program(name, counted, key), _build(key)
        np.testing.assert_array_equal(built.weight, eager.weight)
        captured = built.fn.__closure__[0].cell_contents
        assert not isinstance(captured, jax.core.Tracer)
        np.testing.assert_array_equal(built.fn(jnp.ones(2)), eager.fn(jnp.ones(2)))
    assert len(calls) == 1  # traced once for the key and shapes, then only run


def test_one_program_calls_a_build_that_hides_a_traced_value_as_it_is():
    name = ("nested", object())
    for _ in range(2):  # the second call finds the decision in the cache
        key = jax.random.key(2)
        built, eager = one_program(name, _build_nested, key), _build_nested(key)
        np.testing.assert_array_equal(built.weight, eager.weight)
        np.testing.assert_array_equal(built.fn(jnp.ones(2)), eager.fn(jnp.ones(2)))
        assert [v for k, v in _BUILT.items() if k[0] == name] == [_EAGER]


def test_a_flowjax_flow_is_built_in_one_program():
    # flowjax's layers capture their transformer's ravelled parameters in a closure cell:
    # filled in, not a reason to fall back to the eager build
    flow = sk.estimators.NSF(layers=2, width=8, depth=1, knots=4)
    built = one_program(("flow", flow), lambda k: flow.build(k, 2, 1), jax.random.key(0))
    eager = flow.build(jax.random.key(0), 2, 1)
    entries = [v for k, v in _BUILT.items() if k[0] == ("flow", flow)]
    assert len(entries) == 1 and entries[0] != _EAGER
    for u, v in zip(
        jax.tree_util.tree_leaves(eqx.filter(built, eqx.is_array)),
        jax.tree_util.tree_leaves(eqx.filter(eager, eqx.is_array)),
        strict=True,
    ):
        np.testing.assert_array_equal(u, v)
    x, c = jnp.array([0.3, -0.2]), jnp.array([0.5])
    np.testing.assert_array_equal(built.log_prob(x, c), eager.log_prob(x, c))
