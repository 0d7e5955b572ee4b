"""``sk.PFN``: the settings of a prior-data fitted network and its training on a dataset prior."""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import time
from importlib import resources
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from .._checks import check_key, check_setting_positive_int
from .._types import Key
from ..training import data_sharding
from ._bar import BarDistribution, bucket_borders
from ._file import load_pfn_file, save_pfn_file
from ._prior import AbstractDatasetPrior, Dataset
from ._trained import TrainedPFN
from ._transformer import PFNTransformer

_INIT_STREAM = 0xFFFFFFFF
"""``fold_in(key, _INIT_STREAM)`` initialises the network and draws the border sample; training
step ``s`` uses ``fold_in(key, s)`` (``s`` < 2³² − 1)."""


@dataclasses.dataclass(frozen=True)
class PFN:
    """A prior-data fitted network (Müller et al., ICLR 2022): its architecture and training.

    ``PFN(...).fit(key, prior, steps=...)`` trains a :class:`PFNTransformer` on datasets drawn
    from ``prior`` (an :class:`AbstractDatasetPrior`) *inside* the jitted training step, so no
    data are stored. Each step draws ``batch_size`` datasets of ``num_points`` points and one
    context size ``n`` for the whole batch (weight ∝ 1/(num_points − n) for n in
    [min_context, max_context], as in the paper); the first ``n`` points of each dataset are
    the context and the network is trained to predict the ``y`` of the others: the loss is
    their mean negative log-likelihood under the predicted bar distribution, which is the
    expected KL divergence to the prior's posterior predictive up to a constant. With a prior
    that returns its latent parameters, a parameter head learns their posterior marginals too
    (the two losses are added).

    Args:
        width: token width (the paper's ``emsize``).
        depth: number of transformer layers.
        num_heads: attention heads.
        hidden: feed-forward width of each layer and of the heads.
        num_buckets: buckets of the predictive bar distribution (borders with equal mass under
            ``border_samples`` prior draws of ``y``).
        num_parameter_buckets: buckets of each parameter's bar distribution (parameter head).
        max_context: the largest context the network is trained for (and accepts).
        min_context: the smallest context size drawn in training.
        num_points: points per training dataset (context + queries); ``None``:
            ``max_context + 10``.
        batch_size: datasets per step.
        learning_rate: peak Adam step size (linear warm-up, then cosine decay to zero).
        warmup_fraction: fraction of the steps spent warming up.
        clip_norm: gradient clipping by global norm.
        steps_per_call: steps per jitted call (one ``lax.scan``); the progress bar, the time
            limit and checkpoints act between calls.
        border_samples: number of prior draws of ``y`` that fix the bucket borders.
        matmul_dtype: ``"float32"`` or ``"bfloat16"`` (for GPUs: matrix products in bfloat16,
            the rest in float32).

    Examples:
        >>> import jax
        >>> import sbi_kit as sk
        >>> prior = sk.pfn.GPPrior(sk.pfn.RBF(lengthscale=0.2), noise_std=0.1)
        >>> pfn = sk.PFN(width=16, depth=1, num_heads=2, hidden=32, num_buckets=20,
        ...              max_context=8, batch_size=8, steps_per_call=10)
        >>> trained = pfn.fit(jax.random.key(0), prior, steps=20, progress=False)
        >>> trained.predict([[0.1], [0.5]], [0.3, -0.2], [[0.2]]).batch_shape
        (1,)
    """

    width: int = 128
    depth: int = 4
    num_heads: int = 4
    hidden: int = 256
    num_buckets: int = 1000
    num_parameter_buckets: int = 100
    max_context: int = 50
    min_context: int = 0
    num_points: int | None = None
    batch_size: int = 64
    learning_rate: float = 1e-3
    warmup_fraction: float = 0.05
    clip_norm: float = 1.0
    steps_per_call: int = 100
    border_samples: int = 100_000
    matmul_dtype: str = "float32"

    def __post_init__(self):
        for name in (
            "width",
            "depth",
            "num_heads",
            "hidden",
            "max_context",
            "batch_size",
            "steps_per_call",
            "border_samples",
        ):
            check_setting_positive_int("PFN", name, getattr(self, name))
        for name in ("num_buckets", "num_parameter_buckets"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise ValueError(f"PFN: {name} must be an integer >= 2, got {value!r}.")
        if self.width % self.num_heads:
            raise ValueError(
                f"PFN: num_heads must divide width, got width={self.width}, "
                f"num_heads={self.num_heads}."
            )
        m = self.min_context
        if isinstance(m, bool) or not isinstance(m, int) or not 0 <= m <= self.max_context:
            raise ValueError(
                f"PFN: min_context must be an integer in [0, max_context={self.max_context}], "
                f"got {m!r}."
            )
        if self.num_points is not None:
            check_setting_positive_int("PFN", "num_points", self.num_points)
            if self.num_points <= self.max_context:
                raise ValueError(
                    f"PFN: num_points must exceed max_context (each training dataset needs at "
                    f"least one query), got num_points={self.num_points}, "
                    f"max_context={self.max_context}."
                )
        for name in ("learning_rate", "clip_norm"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"PFN: {name} must be a number > 0, got {value!r}.")
        w = self.warmup_fraction
        if isinstance(w, bool) or not isinstance(w, int | float) or not 0 <= w < 1:
            raise ValueError(f"PFN: warmup_fraction must be a number in [0, 1), got {w!r}.")
        if self.matmul_dtype not in ("float32", "bfloat16"):
            raise ValueError(
                f"PFN: matmul_dtype must be 'float32' or 'bfloat16', got {self.matmul_dtype!r}."
            )

    @staticmethod
    def pretrained(name: str) -> TrainedPFN:
        """A PFN shipped inside the package, loaded offline.

        Args:
            name: ``"gp"`` (1-d GP regression: x in [0, 1], RBF kernel with length-scale 0.2,
                output-scale 1, noise standard deviation 0.1, up to 50 context points) or
                ``"lc"`` (learning curves of 100 epochs, the LC-PFN prior; use it through
                :func:`sbi_kit.pfn.extrapolate`). :func:`pretrained_names` lists them.

        Returns:
            The :class:`TrainedPFN`; its ``metadata`` records the script, seed and settings
            that produced it, and ``history`` the training loss.

        Examples:
            >>> import sbi_kit as sk
            >>> sk.PFN.pretrained("gp").input_dim
            1
        """
        names = pretrained_names()
        if name not in names:
            raise ValueError(f"PFN.pretrained: `name` must be one of {list(names)}, got {name!r}.")
        with resources.as_file(_DATA / f"{name}.pfn") as path:
            return load_pfn_file(path).trained

    @property
    def dataset_size(self) -> int:
        """Points per training dataset (``num_points``, or ``max_context + 10``)."""
        return self.num_points if self.num_points is not None else self.max_context + 10

    def init(
        self, key: Key, input_dim: int, num_parameters: int = 0, *, standardization=None
    ) -> PFNTransformer:
        """An untrained network for inputs of dimension ``input_dim`` (``standardization``:
        ``(x_loc, x_scale, y_loc, y_scale)``, by default none)."""
        x_loc, x_scale, y_loc, y_scale = standardization or (None, None, 0.0, 1.0)
        return PFNTransformer(
            key,
            input_dim=input_dim,
            num_buckets=self.num_buckets,
            width=self.width,
            depth=self.depth,
            num_heads=self.num_heads,
            hidden=self.hidden,
            num_parameters=num_parameters,
            num_parameter_buckets=self.num_parameter_buckets,
            x_loc=x_loc,
            x_scale=x_scale,
            y_loc=y_loc,
            y_scale=y_scale,
            matmul_dtype=self.matmul_dtype,
        )

    def optimizer(self, steps: int) -> optax.GradientTransformation:
        """Adam with linear warm-up and cosine decay over ``steps``, after clipping."""
        warmup = int(self.warmup_fraction * steps)
        schedule = optax.warmup_cosine_decay_schedule(
            0.0, self.learning_rate, max(warmup, 1), max(steps, warmup + 1), end_value=0.0
        )
        return optax.chain(optax.clip_by_global_norm(self.clip_norm), optax.adam(schedule))

    def context_size_weights(self) -> np.ndarray:
        """Probabilities of the context sizes ``0 .. max_context`` in training (∝ 1/(N − n) on
        ``[min_context, max_context]``, zero below)."""
        n = np.arange(self.max_context + 1)
        w = np.where(n >= self.min_context, 1.0 / (self.dataset_size - n), 0.0)
        return w / w.sum()

    def fit(
        self,
        key: Key,
        prior: AbstractDatasetPrior,
        *,
        steps: int,
        checkpoint: str | Path | None = None,
        checkpoint_every: int | None = None,
        resume_from: str | Path | None = None,
        stop_after: int | None = None,
        time_limit: float | None = None,
        metadata: dict | None = None,
        progress: bool = True,
    ) -> TrainedPFN:
        """Train on datasets drawn from ``prior``.

        Args:
            key: PRNG key; step ``s`` uses ``fold_in(key, s)``, so a resumed run draws what an
                uninterrupted one would have.
            prior: the prior over datasets.
            steps: total number of gradient steps (the learning-rate schedule spans them).
            checkpoint: file to write the state to (network, optimiser, step) every
                ``checkpoint_every`` steps (default: every ``steps_per_call`` × 10) and at the
                end of this call.
            checkpoint_every: steps between checkpoints (a multiple of ``steps_per_call``).
            resume_from: a checkpoint to continue from; settings, ``steps``, ``key`` and the
                prior's description must be those it was written with. The result is bit for
                bit the uninterrupted run's.
            stop_after: stop this call after this many steps (the rest can be resumed).
            time_limit: stop this call at the first ``steps_per_call`` boundary after this
                many seconds.
            metadata: JSON-able notes stored with the model (e.g. the script and seed).
            progress: show a progress bar.

        Returns:
            A :class:`TrainedPFN` (``.complete`` is false if it stopped before ``steps``).
        """
        fn = "PFN.fit"
        key = check_key(key, fn)
        if not isinstance(prior, AbstractDatasetPrior):
            raise TypeError(
                f"{fn}: `prior` must be an sk.pfn.AbstractDatasetPrior (e.g. sk.pfn.GPPrior), "
                f"got {type(prior).__name__}."
            )
        check_setting_positive_int(fn, "steps", steps)
        every = 10 * self.steps_per_call if checkpoint_every is None else checkpoint_every
        check_setting_positive_int(fn, "checkpoint_every", every)
        if every % self.steps_per_call:
            raise ValueError(
                f"{fn}: checkpoint_every must be a multiple of steps_per_call="
                f"{self.steps_per_call}, got {every}."
            )
        if stop_after is not None:
            check_setting_positive_int(fn, "stop_after", stop_after)
        description = _describe(prior)
        optimizer = _optimizer(self, steps)
        if resume_from is not None:
            state = load_pfn_file(resume_from, with_optimizer=optimizer)
            _check_resume(fn, state, self, steps, key, description)
            trained, opt_state, start = state.trained, state.opt_state, state.trained.steps_done
            history = list(trained.history)
            elapsed = history[-1][2] if history else 0.0
            net = trained.net
        else:
            k_init, k_borders = jax.random.split(jax.random.fold_in(key, _INIT_STREAM))
            trained = _untrained(self, k_init, k_borders, prior, steps, description, metadata)
            net, history, start, elapsed = trained.net, [], 0, 0.0
            opt_state = optimizer.init(eqx.filter(net, eqx.is_inexact_array))
        end = steps if stop_after is None else min(steps, start + stop_after)
        began = time.perf_counter()
        bar = tqdm(total=steps, initial=start, desc="PFN", disable=not progress, leave=False)
        step = start
        try:
            while step < end:
                num = min(self.steps_per_call - step % self.steps_per_call, end - step)
                net, opt_state, losses = _run_chunk(
                    net,
                    opt_state,
                    key,
                    jnp.asarray(step),
                    trained.borders,
                    trained.parameter_borders,
                    prior,
                    optimizer,
                    self,
                    num,
                )
                losses = np.asarray(losses)
                step += num
                seconds = elapsed + time.perf_counter() - began
                history.append((step, float(losses.mean()), round(seconds, 3)))
                bar.update(num)
                bar.set_postfix(loss=f"{history[-1][1]:.4f}")
                if not np.isfinite(losses).all():
                    raise FloatingPointError(
                        f"{fn}: the training loss became non-finite at step ~{step}; lower "
                        "learning_rate or check that the prior's datasets are finite."
                    )
                stop = time_limit is not None and time.perf_counter() - began >= time_limit
                trained = trained.advanced(net, step, history)
                if checkpoint is not None and (step % every == 0 or step >= end or stop):
                    save_pfn_file(checkpoint, trained, opt_state=opt_state, key=key)
                if stop:
                    break
        finally:
            bar.close()
        return trained


_DATA = resources.files("sbi_kit.pfn") / "data"


def pretrained_names() -> tuple[str, ...]:
    """Names of the PFNs shipped with the package (for :meth:`PFN.pretrained`)."""
    return tuple(sorted(p.name[: -len(".pfn")] for p in _DATA.iterdir() if p.name.endswith(".pfn")))


def _describe(prior: AbstractDatasetPrior) -> str:
    """What identifies a prior in a checkpoint: its class and its fields' repr (arrays
    abbreviated by equinox, memory addresses of functions removed), so that resuming on another
    prior is refused."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(prior))


def _check_resume(fn, state, config: PFN, steps: int, key, description: str) -> None:
    trained = state.trained
    if trained.config != config:
        raise ValueError(
            f"{fn}: `resume_from` was written with other settings ({trained.config}); resume "
            f"with the same PFN(...) (got {config})."
        )
    if trained.steps != steps:
        raise ValueError(
            f"{fn}: `resume_from` was written for steps={trained.steps}, got steps={steps} (the "
            "learning-rate schedule spans all steps)."
        )
    if not np.array_equal(np.asarray(jax.random.key_data(key)), state.key_data):
        raise ValueError(f"{fn}: `key` differs from the key the checkpoint was trained with.")
    if trained.prior != description:
        raise ValueError(
            f"{fn}: `prior` differs from the checkpoint's ({trained.prior!r}), got {description!r}."
        )


@eqx.filter_jit
def _sample_datasets(prior: AbstractDatasetPrior, keys, num_points: int) -> Dataset:
    """One dataset per key (compiled once per prior and sizes)."""
    return jax.vmap(lambda k: prior.sample(k, num_points))(keys)


def _untrained(config, k_init, k_borders, prior, steps, description, metadata) -> TrainedPFN:
    """A network with borders and standardisation from a large prior sample."""
    n = config.dataset_size
    num = max(1, math.ceil(config.border_samples / n))
    data = _sample_datasets(prior, jax.random.split(k_borders, num), n)
    x = np.asarray(data.x, np.float64).reshape(-1, prior.input_dim)
    y = np.asarray(data.y, np.float64).reshape(-1)
    borders = bucket_borders(y, config.num_buckets)
    names = prior.parameter_names
    parameter_borders = None
    if names:
        if data.parameters is None or data.parameters.shape[-1] != len(names):
            raise ValueError(
                f"PFN.fit: `prior` names {len(names)} parameters but its datasets carry "
                f"{None if data.parameters is None else data.parameters.shape[-1]}."
            )
        parameter_borders = bucket_borders(
            np.asarray(data.parameters), config.num_parameter_buckets, axis=0
        )
    standardization = (x.mean(0), x.std(0) + 1e-6, float(y.mean()), float(y.std() + 1e-6))
    net = config.init(k_init, prior.input_dim, len(names), standardization=standardization)
    return TrainedPFN(
        net=net,
        borders=jnp.asarray(borders, jnp.float32),
        parameter_borders=None
        if parameter_borders is None
        else jnp.asarray(parameter_borders, jnp.float32),
        config=config,
        parameter_names=names,
        steps=steps,
        steps_done=0,
        history=(),
        prior=description,
        metadata=dict(metadata or {}),
    )


def dataset_loss(net: PFNTransformer, data: Dataset, n, borders, parameter_borders) -> jax.Array:
    """Mean negative log-likelihood of the queries (points ``n ..``) of ONE dataset given its
    first ``n`` points, plus the parameter head's mean negative log-likelihood if there is one."""
    idx = jnp.arange(data.y.shape[0])
    context = idx < n
    logits, parameter_logits = net(data.x, data.y, context, data.x)
    nll = -BarDistribution(logits, borders).log_prob(data.y)
    query = (~context).astype(nll.dtype)
    loss = jnp.sum(nll * query) / jnp.maximum(query.sum(), 1.0)
    if parameter_logits is not None and data.parameters is not None:
        loss = (
            loss
            - BarDistribution(parameter_logits, parameter_borders).log_prob(data.parameters).mean()
        )
    return loss


@functools.lru_cache(maxsize=32)
def _optimizer(config: PFN, steps: int) -> optax.GradientTransformation:
    """One optimiser object per (settings, steps), so that the compiled chunk is reused."""
    return config.optimizer(steps)


@eqx.filter_jit
def _run_chunk(
    net, opt_state, key, start, borders, parameter_borders, prior, optimizer, config, num
):
    """``num`` training steps from step ``start`` in one ``lax.scan``: ``(net, opt_state,
    losses)``. Compiled once per (network structure, prior, settings, ``num``)."""
    n_points = config.dataset_size
    log_weights = jnp.log(jnp.asarray(config.context_size_weights(), jnp.float32))
    sharding = data_sharding()
    if sharding is not None and config.batch_size % len(jax.devices()):
        sharding = None
    params, static = eqx.partition(net, eqx.is_inexact_array)

    def batch_loss(params, data, n):
        model = eqx.combine(params, static)
        losses = jax.vmap(dataset_loss, in_axes=(None, 0, None, None, None))(
            model, data, n, borders, parameter_borders
        )
        return losses.mean()

    def step(carry, s):
        params, opt_state = carry
        k_size, k_data = jax.random.split(jax.random.fold_in(key, s))
        n = jax.random.categorical(k_size, log_weights)
        keys = jax.random.split(k_data, config.batch_size)
        data = jax.vmap(lambda k: prior.sample(k, n_points))(keys)
        if sharding is not None:
            data = jax.lax.with_sharding_constraint(data, sharding)
        loss, grads = jax.value_and_grad(batch_loss)(params, data, n)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), start + jnp.arange(num))
    return eqx.combine(params, static), opt_state, losses
