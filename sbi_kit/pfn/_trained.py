"""A trained PFN: posterior predictives (and parameter posteriors) in one forward pass."""

from __future__ import annotations

import json
import warnings
from typing import TYPE_CHECKING

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from .._checks import as_float_array, check_finite, is_concrete
from ._bar import BarDistribution
from ._transformer import PFNTransformer

if TYPE_CHECKING:
    from ._pfn import PFN


@eqx.filter_jit
def _logits(net: PFNTransformer, x_context, y_context, mask, x_query):
    return net(x_context, y_context, mask, x_query)


@eqx.filter_jit
def _batched_logits(net: PFNTransformer, x_context, y_context, mask, x_query):
    return jax.vmap(lambda a, b, c, d: net(a, b, c, d)[0])(x_context, y_context, mask, x_query)


class TrainedPFN(eqx.Module):
    """A PFN trained on a prior over datasets (returned by ``sk.PFN(...).fit`` and
    ``sk.PFN.pretrained``).

    :meth:`predict` gives, for each query input, the posterior predictive of its ``y`` given a
    context dataset under the prior the network was trained on, as a
    :class:`~sbi_kit.pfn.BarDistribution`; :meth:`parameter_posterior` (for a network trained
    on a prior with latent parameters) their posterior marginals. One forward pass each.

    Attributes:
        net: the :class:`PFNTransformer`.
        borders: ``(num_buckets + 1,)`` bucket borders of the predictive.
        parameter_borders: ``(num_parameters, num_parameter_buckets + 1)`` or ``None``.
        config: the :class:`~sbi_kit.PFN` settings it was trained with.
        parameter_names: names of the parameter head's outputs (empty without one).
        steps: steps planned; ``steps_done``: steps taken.
        history: ``(step, mean training loss over the last steps_per_call steps, seconds of
            training so far)`` triples (the seconds add up over resumed runs).
        prior: description of the training prior.
    """

    net: PFNTransformer
    borders: Array
    parameter_borders: Array | None
    config: PFN = eqx.field(static=True)
    parameter_names: tuple[str, ...] = eqx.field(static=True)
    steps: int = eqx.field(static=True)
    steps_done: int = eqx.field(static=True)
    history: tuple[tuple[int, float, float], ...] = eqx.field(static=True)
    prior: str = eqx.field(static=True)
    metadata_json: str = eqx.field(static=True)

    def __init__(
        self,
        *,
        net,
        borders,
        parameter_borders,
        config,
        parameter_names,
        steps,
        steps_done,
        history,
        prior,
        metadata,
    ):
        self.net = net
        self.borders = borders
        self.parameter_borders = parameter_borders
        self.config = config
        self.parameter_names = tuple(parameter_names)
        self.steps = int(steps)
        self.steps_done = int(steps_done)
        self.history = tuple(history)
        self.prior = str(prior)
        self.metadata_json = json.dumps(metadata, sort_keys=True)

    def advanced(self, net: PFNTransformer, steps_done: int, history) -> TrainedPFN:
        """This model with a newer network, step count and history (all else kept): what each
        chunk of :meth:`sbi_kit.PFN.fit` returns."""
        return TrainedPFN(
            net=net,
            borders=self.borders,
            parameter_borders=self.parameter_borders,
            config=self.config,
            parameter_names=self.parameter_names,
            steps=self.steps,
            steps_done=steps_done,
            history=history,
            prior=self.prior,
            metadata=self.metadata,
        )

    @property
    def metadata(self) -> dict:
        """Free-form notes stored with the model (e.g. the training script and seed)."""
        return json.loads(self.metadata_json)

    @property
    def complete(self) -> bool:
        """Whether all planned training steps ran."""
        return self.steps_done >= self.steps

    @property
    def input_dim(self) -> int:
        """Dimension ``d`` of the inputs ``x``."""
        return self.net.input_dim

    @property
    def max_context(self) -> int:
        """The largest context the network was trained for."""
        return self.config.max_context

    def _inputs(self, x, name: str, fn: str, *, batched: bool = False, check: bool = True) -> Array:
        """Inputs ``(n, d)`` (``(n,)`` when d = 1), or ``(B, n, d)`` / ``(B, n)`` if ``batched``."""
        lead = int(batched)
        shape = ("(B, n, " if batched else "(n, ") + f"{self.input_dim})"
        arr = as_float_array(x, name, fn, (1 + lead, 2 + lead))
        if arr.ndim == 1 + lead:
            if self.input_dim != 1:
                raise ValueError(f"{fn}: `{name}` must have shape {shape}, got {arr.shape}.")
            arr = arr[..., None]
        if arr.shape[-1] != self.input_dim:
            raise ValueError(
                f"{fn}: `{name}` has {arr.shape[-1]} input dimension(s); this PFN was trained on "
                f"inputs of dimension {self.input_dim} (shape {shape})."
            )
        arr = arr.astype(jnp.float32)
        return check_finite(arr, name, fn) if check else arr

    def _context(self, x_context, y_context, context_mask, fn: str, *, batched: bool = False):
        """Checked context ``(x, y, mask)``: one dataset, or ``B`` of them if ``batched``.

        Padding (``mask`` false) is zeroed before the finiteness checks; context values of y
        outside the training range give one warning with their count."""
        x = self._inputs(x_context, "x_context", fn, batched=batched, check=False)
        y = as_float_array(y_context, "y_context", fn, 1 + int(batched)).astype(jnp.float32)
        if y.shape != x.shape[:-1]:
            got = f"{x.shape[0]} and {y.shape[0]}" if not batched else f"{x.shape} and {y.shape}"
            raise ValueError(
                f"{fn}: `x_context` and `y_context` must hold the same number of points"
                + (" for every dataset" if batched else "")
                + f", got {got}."
            )
        if context_mask is None:
            mask = jnp.ones(y.shape, bool)
        else:
            mask = jnp.asarray(context_mask)
            if mask.shape != y.shape or mask.dtype != jnp.bool_:
                raise ValueError(
                    f"{fn}: `context_mask` must be booleans of shape {y.shape}, got "
                    f"{mask.dtype} {mask.shape}."
                )
        if is_concrete(mask):
            count = int(np.max(np.asarray(mask).sum(axis=-1), initial=0))
            if count > self.max_context:
                raise ValueError(
                    f"{fn}: {'a' if batched else 'the'} context has {count} points; this PFN "
                    f"was trained on at most {self.max_context} (max_context). Predictions for "
                    "longer contexts are not defined: pass a subset, or train a PFN with a "
                    "larger max_context."
                )
        x = check_finite(jnp.where(mask[..., None], x, 0.0), "x_context", fn)
        y = check_finite(jnp.where(mask, y, 0.0), "y_context", fn)
        if is_concrete(y):
            lo, hi = float(self.borders[0]), float(self.borders[-1])
            values = np.asarray(y)
            outside = int(np.sum(np.asarray(mask) & ((values < lo) | (values > hi))))
            if outside:
                warnings.warn(
                    f"{fn}: {outside} context value(s) of y lie outside [{lo:.4g}, {hi:.4g}], "
                    "the range of y this PFN saw in training; its predictions there extrapolate.",
                    stacklevel=3,
                )
        return x, y, mask

    def predict(self, x_context, y_context, x_query, *, context_mask=None) -> BarDistribution:
        """The posterior predictive of ``y`` at each query input given a context dataset.

        Args:
            x_context: ``(n, d)`` context inputs (``(n,)`` when ``d = 1``); ``n = 0`` gives the
                prior predictive.
            y_context: ``(n,)`` context targets.
            x_query: ``(m, d)`` query inputs (``(m,)`` when ``d = 1``).
            context_mask: optional ``(n,)`` booleans: which context points are real (the others
                are padding and ignored).

        Returns:
            A :class:`~sbi_kit.pfn.BarDistribution` with batch shape ``(m,)``.

        Raises:
            ValueError: on inputs of another dimension than in training, non-finite context or
                query values (with their count), or more than ``max_context`` context points.
                Context values of ``y`` outside the range seen in training give a warning;
                query predictions outside the borders use the half-normal tails.

        Examples:
            >>> import sbi_kit as sk
            >>> pfn = sk.PFN.pretrained("gp")
            >>> d = pfn.predict([0.1, 0.4, 0.8], [0.5, 1.0, -0.3], [0.5, 0.9])
            >>> d.batch_shape, bool(abs(float(d.mean[0]) - 1.0) < 0.5)
            ((2,), True)
        """
        fn = "TrainedPFN.predict"
        x, y, mask = self._context(x_context, y_context, context_mask, fn)
        xq = self._inputs(x_query, "x_query", fn)
        logits, _ = _logits(self.net, x, y, mask, xq)
        return BarDistribution(logits, self.borders)

    def predict_batched(
        self, x_context, y_context, x_query, *, context_mask=None
    ) -> BarDistribution:
        """:meth:`predict` for a batch of ``B`` datasets in one compiled call.

        Args:
            x_context: ``(B, n, d)`` context inputs (``(B, n)`` when ``d = 1``).
            y_context: ``(B, n)`` context targets.
            x_query: ``(B, m, d)`` query inputs (``(B, m)`` when ``d = 1``).
            context_mask: optional ``(B, n)`` booleans, true for real points: datasets with
                fewer than ``n`` points are padded (the padding may hold anything finite or not).

        Returns:
            A :class:`~sbi_kit.pfn.BarDistribution` with batch shape ``(B, m)``.

        Raises:
            ValueError: as :meth:`predict`, for any dataset of the batch (and a context
                value of y outside the training range warns as there).

        Examples:
            >>> import numpy as np, sbi_kit as sk
            >>> pfn = sk.PFN.pretrained("gp")
            >>> x = np.random.default_rng(0).random((100, 8, 1))      # 100 datasets of 8 points
            >>> y = np.sin(6 * x[..., 0])
            >>> pfn.predict_batched(x, y, x[:, :2]).batch_shape
            (100, 2)
        """
        fn = "TrainedPFN.predict_batched"
        x, y, mask = self._context(x_context, y_context, context_mask, fn, batched=True)
        xq = self._inputs(x_query, "x_query", fn, batched=True)
        if xq.shape[0] != x.shape[0]:
            raise ValueError(
                f"{fn}: `x_query` must hold one set of queries per dataset: {x.shape[0]} "
                f"datasets in the context, {xq.shape[0]} in `x_query`."
            )
        logits = _batched_logits(self.net, x, y, mask, xq)
        return BarDistribution(logits, self.borders)

    def parameter_posterior(self, x_context, y_context, *, context_mask=None) -> BarDistribution:
        """Posterior marginals of the prior's latent parameters given a dataset (parameter head).

        Args:
            x_context: ``(n, d)`` inputs (``(n,)`` when ``d = 1``).
            y_context: ``(n,)`` targets.
            context_mask: optional ``(n,)`` booleans marking real points.

        Returns:
            A :class:`~sbi_kit.pfn.BarDistribution` with batch shape ``(num_parameters,)``, in
            the order of :attr:`parameter_names`.
        """
        fn = "TrainedPFN.parameter_posterior"
        if self.parameter_borders is None:
            raise ValueError(
                f"{fn}: this PFN has no parameter head (its prior returned no parameters; "
                "train on a prior with parameter_names, e.g. sk.pfn.NumpyroPrior)."
            )
        x, y, mask = self._context(x_context, y_context, context_mask, fn)
        _, logits = _logits(self.net, x, y, mask, x[:0])
        return BarDistribution(logits, self.parameter_borders)
