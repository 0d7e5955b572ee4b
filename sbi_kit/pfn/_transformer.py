"""The PFN transformer: context tokens attend to the context, each query to the context and itself.

Müller et al. (ICLR 2022) encode a dataset as a set: a context token is ``Lin(x) + Lin(y)``, a
query token is ``Lin(x)``, and there are no positional encodings. Context tokens attend to the
(valid) context tokens; each query token attends to the context and to itself only, and nothing
attends to a query. So a query's prediction depends on the context and on its own ``x`` alone:
it is invariant to the order of the context and to the other queries in the call, and any number
of queries can be predicted at once at a cost linear in their number.

Instead of one attention over ``n + m`` tokens with a mask, each layer computes the context's
self-attention (``n × n``) and the queries' attention over ``[context, self]`` (``m × (n + 1)``),
which is what the mask of the paper leaves, without the ``m × m`` block of zeros. A boolean
``context_mask`` marks which context tokens are real, so one batch can mix context sizes (the
padding is ignored as keys; its own outputs are finite and unused); an all-false mask is the
empty context, and the queries then give the prior predictive.

Optionally, ``num_parameters`` learned *parameter tokens* are queries too: each attends to the
context and itself and is read out by its own head (the parameter head of a PFN trained on a
numpyro model).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from .._types import Key

_NEG = -1e30
"""The attention score of a masked key (finite, so a row with no valid key is uniform, not NaN)."""


def _dense(layer: eqx.nn.Linear, h: Array, dtype) -> Array:
    """``layer`` applied to the rows of ``h`` with the matmul in ``dtype`` (result float32)."""
    w = layer.weight.astype(dtype)
    out = jnp.matmul(h.astype(dtype), w.T, preferred_element_type=jnp.float32)
    if layer.bias is not None:
        out = out + layer.bias
    return out


def _layer_norm(norm: eqx.nn.LayerNorm, h: Array) -> Array:
    return jax.vmap(norm)(h)


class _Block(eqx.Module):
    """A pre-norm transformer layer with the PFN attention pattern."""

    norm_attention: eqx.nn.LayerNorm
    qkv: eqx.nn.Linear
    out: eqx.nn.Linear
    norm_mlp: eqx.nn.LayerNorm
    hidden: eqx.nn.Linear
    back: eqx.nn.Linear
    num_heads: int = eqx.field(static=True)

    def __init__(self, key: Key, width: int, hidden: int, num_heads: int):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        self.norm_attention = eqx.nn.LayerNorm(width)
        self.qkv = eqx.nn.Linear(width, 3 * width, key=k1)
        self.out = eqx.nn.Linear(width, width, key=k2)
        self.norm_mlp = eqx.nn.LayerNorm(width)
        self.hidden = eqx.nn.Linear(width, hidden, key=k3)
        self.back = eqx.nn.Linear(hidden, width, key=k4)
        self.num_heads = num_heads

    def _heads(self, h: Array, dtype) -> tuple[Array, Array, Array]:
        qkv = _dense(self.qkv, h, dtype)
        q, k, v = jnp.split(qkv, 3, axis=-1)
        shape = (h.shape[0], self.num_heads, h.shape[1] // self.num_heads)
        return q.reshape(shape), k.reshape(shape), v.reshape(shape)

    def __call__(self, context: Array, mask: Array, queries: Array, dtype) -> tuple[Array, Array]:
        qc, kc, vc = self._heads(_layer_norm(self.norm_attention, context), dtype)
        qq, kq, vq = self._heads(_layer_norm(self.norm_attention, queries), dtype)
        scale = 1.0 / math.sqrt(qc.shape[-1])
        keep = mask[None, None, :]
        # Context over context: (heads, n, n).
        s_cc = jnp.einsum("ihd,jhd->hij", qc, kc, preferred_element_type=jnp.float32) * scale
        w_cc = jax.nn.softmax(jnp.where(keep, s_cc, _NEG), axis=-1)
        a_c = jnp.einsum("hij,jhd->ihd", w_cc.astype(dtype), vc, preferred_element_type=jnp.float32)
        # Queries over [context, self]: (heads, m, n) and (heads, m).
        s_qc = jnp.einsum("ihd,jhd->hij", qq, kc, preferred_element_type=jnp.float32) * scale
        s_qq = jnp.einsum("ihd,ihd->hi", qq, kq, preferred_element_type=jnp.float32) * scale
        scores = jnp.concatenate([jnp.where(keep, s_qc, _NEG), s_qq[..., None]], axis=-1)
        w = jax.nn.softmax(scores, axis=-1)
        a_q = jnp.einsum(
            "hij,jhd->ihd", w[..., :-1].astype(dtype), vc, preferred_element_type=jnp.float32
        ) + jnp.transpose(w[..., -1])[..., None] * vq.astype(jnp.float32)
        context = context + _dense(self.out, a_c.reshape(context.shape), dtype)
        queries = queries + _dense(self.out, a_q.reshape(queries.shape), dtype)
        return self._mlp(context, dtype), self._mlp(queries, dtype)

    def _mlp(self, h: Array, dtype) -> Array:
        z = jax.nn.gelu(_dense(self.hidden, _layer_norm(self.norm_mlp, h), dtype))
        return h + _dense(self.back, z, dtype)


class _Head(eqx.Module):
    """Two linear layers with a GELU between: token features to bucket logits."""

    hidden: eqx.nn.Linear
    logits: eqx.nn.Linear

    def __init__(self, key: Key, width: int, hidden: int, num_buckets: int):
        k1, k2 = jax.random.split(key)
        self.hidden = eqx.nn.Linear(width, hidden, key=k1)
        self.logits = eqx.nn.Linear(hidden, num_buckets, key=k2)

    def __call__(self, h: Array, dtype) -> Array:
        return _dense(self.logits, jax.nn.gelu(_dense(self.hidden, h, dtype)), dtype)


class PFNTransformer(eqx.Module):
    """The network of a PFN: a set encoder of ``(x, y)`` context pairs that predicts, for each
    query ``x``, logits over the buckets of a bar distribution of its ``y``.

    Args:
        key: PRNG key for the initialisation.
        input_dim: dimension ``d`` of ``x``.
        num_buckets: number of bar-distribution buckets of the predictive head.
        width: token width (the paper's ``emsize``).
        depth: number of transformer layers.
        num_heads: attention heads (must divide ``width``).
        hidden: width of each layer's feed-forward block and of the heads.
        num_parameters: number of parameter tokens (0: no parameter head).
        num_parameter_buckets: buckets of each parameter's bar distribution.
        x_loc, x_scale: ``(d,)`` standardisation of ``x`` (fixed, not trained).
        y_loc, y_scale: standardisation of the context ``y`` (fixed, not trained).
        matmul_dtype: ``"float32"`` or ``"bfloat16"``: the dtype of the matrix products (the
            residual stream, layer norms and softmaxes stay float32).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from sbi_kit.pfn import PFNTransformer
        >>> net = PFNTransformer(jax.random.key(0), input_dim=1, num_buckets=10, width=16,
        ...                      depth=1, num_heads=2, hidden=32)
        >>> x, y = jnp.linspace(0, 1, 5)[:, None], jnp.zeros(5)
        >>> logits, _ = net(x, y, jnp.ones(5, bool), jnp.ones((3, 1)))
        >>> logits.shape
        (3, 10)
    """

    embed_x: eqx.nn.Linear
    embed_y: eqx.nn.Linear
    blocks: tuple[_Block, ...]
    norm: eqx.nn.LayerNorm
    head: _Head
    parameter_tokens: Array | None
    parameter_head: _Head | None
    x_loc: Array
    x_scale: Array
    y_loc: Array
    y_scale: Array
    matmul_dtype: str = eqx.field(static=True)

    def __init__(
        self,
        key: Key,
        *,
        input_dim: int,
        num_buckets: int,
        width: int = 128,
        depth: int = 4,
        num_heads: int = 4,
        hidden: int = 256,
        num_parameters: int = 0,
        num_parameter_buckets: int = 100,
        x_loc=None,
        x_scale=None,
        y_loc=0.0,
        y_scale=1.0,
        matmul_dtype: str = "float32",
    ):
        if width % num_heads:
            raise ValueError(
                f"PFNTransformer: num_heads must divide width, got width={width}, "
                f"num_heads={num_heads}."
            )
        if matmul_dtype not in ("float32", "bfloat16"):
            raise ValueError(
                f"PFNTransformer: matmul_dtype must be 'float32' or 'bfloat16', got "
                f"{matmul_dtype!r}."
            )
        keys = jax.random.split(key, depth + 5)
        self.embed_x = eqx.nn.Linear(input_dim, width, key=keys[0])
        self.embed_y = eqx.nn.Linear("scalar", width, key=keys[1])
        self.blocks = tuple(_Block(k, width, hidden, num_heads) for k in keys[5:])
        self.norm = eqx.nn.LayerNorm(width)
        self.head = _Head(keys[2], width, hidden, num_buckets)
        if num_parameters:
            self.parameter_tokens = 0.02 * jax.random.normal(keys[3], (num_parameters, width))
            self.parameter_head = _Head(keys[4], width, hidden, num_parameter_buckets)
        else:
            self.parameter_tokens = None
            self.parameter_head = None
        self.x_loc = jnp.zeros(input_dim) if x_loc is None else jnp.asarray(x_loc, jnp.float32)
        self.x_scale = jnp.ones(input_dim) if x_scale is None else jnp.asarray(x_scale, jnp.float32)
        self.y_loc = jnp.asarray(y_loc, jnp.float32)
        self.y_scale = jnp.asarray(y_scale, jnp.float32)
        self.matmul_dtype = matmul_dtype

    @property
    def input_dim(self) -> int:
        """Dimension ``d`` of ``x``."""
        return self.embed_x.in_features  # pyright: ignore[reportReturnType]

    @property
    def num_parameters(self) -> int:
        """Number of parameter tokens (0 without a parameter head)."""
        return 0 if self.parameter_tokens is None else self.parameter_tokens.shape[0]

    def __call__(
        self, x_context: Array, y_context: Array, context_mask: Array, x_query: Array
    ) -> tuple[Array, Array | None]:
        """Bucket logits for ONE dataset.

        Args:
            x_context: ``(n, d)`` context inputs (entries where the mask is false are ignored;
                they should be finite).
            y_context: ``(n,)`` context targets.
            context_mask: ``(n,)`` booleans, true for real context points.
            x_query: ``(m, d)`` query inputs.

        Returns:
            ``(logits, parameter_logits)``: ``(m, num_buckets)`` and, with a parameter head,
            ``(num_parameters, num_parameter_buckets)`` (else ``None``).
        """
        dtype = jnp.bfloat16 if self.matmul_dtype == "bfloat16" else jnp.float32
        x_loc, x_scale = jax.lax.stop_gradient((self.x_loc, self.x_scale))
        y_loc, y_scale = jax.lax.stop_gradient((self.y_loc, self.y_scale))
        # Padding may hold anything (NaN included): it is zeroed before it meets a weight.
        x_context = jnp.where(context_mask[:, None], x_context, 0.0)
        y_context = jnp.where(context_mask, y_context, 0.0)
        embed_x = eqx.filter_vmap(lambda x: self.embed_x((x - x_loc) / x_scale))
        embed_y = eqx.filter_vmap(lambda y: self.embed_y((y - y_loc) / y_scale))
        context = embed_x(x_context) + embed_y(y_context)
        queries = embed_x(x_query)
        m = x_query.shape[0]
        if self.parameter_tokens is not None:
            queries = jnp.concatenate([queries, self.parameter_tokens], axis=0)
        for block in self.blocks:
            context, queries = block(context, context_mask, queries, dtype)
        queries = _layer_norm(self.norm, queries)
        logits = self.head(queries[:m], dtype)
        if self.parameter_head is None:
            return logits, None
        return logits, self.parameter_head(queries[m:], dtype)
