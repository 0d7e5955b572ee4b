"""The one training loop of sbi_kit.

Every estimator is trained by :func:`train`: Adam (optax) with gradient clipping, a validation
split, early stopping with patience, and a whole epoch jitted as one ``lax.scan``; only the loop
over epochs is Python (for the progress bar and early stopping). An ensemble of independent
networks is trained with ``jax.vmap`` over stacked parameters, and when several devices are
visible each batch is sharded over them (data parallel, ``jax.sharding``).
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import functools
import math
import time
import warnings
from collections.abc import Callable, Hashable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import paramax
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array
from tqdm.auto import tqdm

from ._checks import (
    check_setting_bool,
    check_setting_nonnegative_int,
    check_setting_positive_int,
)
from ._types import Key


@dataclasses.dataclass(frozen=True)
class Training:
    """Settings of the training loop (defaults follow the `sbi` package).

    Args:
        learning_rate: Adam step size.
        batch_size: examples per gradient step (rounded down to a multiple of the number of
            devices when training is sharded).
        max_epochs: upper bound on the number of epochs.
        patience: stop after this many epochs without a better validation loss.
        validation_fraction: fraction of the data held out for early stopping.
        clip_norm: gradient clipping by global norm (``None`` to switch off).
        validation_repeats: draws of the loss's own randomness averaged for each validation
            example (1: one draw). A loss that draws noise per example (NPSE, FMPE: a time and
            a noise vector) gives a noisy validation loss, and early stopping then keeps a lucky
            early epoch; averaging several fixed draws makes the comparison between epochs
            fairer. Each repeat costs one more forward pass over the validation set.
        ema_decay: keep an exponential moving average of the parameters, updated after every
            step with this decay (e.g. 0.999), and validate, keep and return the average
            instead of the raw parameters (``None``: off). The average is bias-corrected
            (``sum / (1 - decay**steps)``, as Adam's moments), so a short training keeps no
            weight on where it started. Averaging smooths the last steps' noise, which helps
            the score and flow-matching networks.
        weight_decay: decoupled weight decay (AdamW, Loshchilov & Hutter 2019): every step
            also shrinks each parameter by ``learning_rate * weight_decay`` times itself
            (``0``: plain Adam). It slows the overfitting of conditioners whose inputs map
            simply to the output (the NPE docs measure it on gaussian_linear, where it helps,
            and two_moons, where it hurts).
        lr_plateau_steps: reduce the learning rate on plateaus (``None``: never). After this
            many optimiser steps without a better validation loss (counted again from zero
            after each reduction; validation runs after every epoch, so it is rounded up to
            whole epochs), the learning rate is multiplied by ``lr_factor``; once it has been
            reduced ``lr_reductions`` times, the next such plateau ends training (stop reason
            ``"converged"``). ``patience`` still bounds the epochs without a better validation
            loss. Each ensemble member has its own schedule. Counted in steps rather than
            epochs so that one setting suits every budget: with batch 50, 2,700 steps (NPE's
            default) are 150 epochs of 1,000 simulations (it never fires before a
            ``patience`` of 100) and 15 epochs of 10,000. A slowly improving fit reaches its
            best loss in fewer epochs with smaller steps late in training, and stops sooner
            than a long ``patience`` at the full step size would let it (docs/training.md
            measures it).
        lr_factor: the multiplier of each reduction, in (0, 1).
        lr_reductions: reductions before a plateau ends training (≥ 0; 0: the first plateau
            stops training).
        lr_stop_without_gain: a plateau that follows a reduction after which the validation
            loss never improved also ends training, before ``lr_reductions`` is reached
            (``False``: keep reducing). A smaller step that finds nothing better in a whole
            plateau means the fit is past its best, usually overfitting; the parameters kept
            are the best epoch's either way. On 14 NPE fits (two_moons, gaussian_linear, slcp,
            bernoulli_glm, 10³ and 10⁴ simulations) it never stopped before an improvement that
            the full schedule would have found, and it cut gaussian_linear at 10⁴ (best epoch
            7) from 83 to 38 epochs (docs/training.md).
    """

    learning_rate: float = 5e-4
    batch_size: int = 200
    max_epochs: int = 1000
    patience: int = 20
    validation_fraction: float = 0.1
    clip_norm: float | None = 5.0
    validation_repeats: int = 1
    ema_decay: float | None = None
    weight_decay: float = 0.0
    lr_plateau_steps: int | None = None
    lr_factor: float = 0.5
    lr_reductions: int = 4
    lr_stop_without_gain: bool = True

    def __post_init__(self):
        for name in (
            "learning_rate",
            "validation_fraction",
            "clip_norm",
            "ema_decay",
            "weight_decay",
            "lr_factor",
        ):
            value = getattr(self, name)
            if value is None and name in ("clip_norm", "ema_decay"):
                continue
            if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
                raise TypeError(f"Training: {name} must be a number, got {value!r}.")
            if not math.isfinite(value):
                raise ValueError(f"Training: {name} must be finite, got {value!r}.")
        if not self.learning_rate > 0:
            raise ValueError(f"Training: learning_rate must be > 0, got {self.learning_rate}.")
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise ValueError(
                f"Training: clip_norm must be > 0 (or None to switch clipping off), got "
                f"{self.clip_norm}."
            )
        for name in ("batch_size", "max_epochs", "patience", "validation_repeats"):
            check_setting_positive_int("Training", name, getattr(self, name))
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ValueError(
                f"Training: ema_decay must lie in (0, 1) (or None to switch averaging off), got "
                f"{self.ema_decay}."
            )
        if self.lr_plateau_steps is not None:
            check_setting_positive_int("Training", "lr_plateau_steps", self.lr_plateau_steps)
        check_setting_nonnegative_int("Training", "lr_reductions", self.lr_reductions)
        check_setting_bool("Training", "lr_stop_without_gain", self.lr_stop_without_gain)
        if not 0.0 < self.lr_factor < 1.0:
            raise ValueError(f"Training: lr_factor must lie in (0, 1), got {self.lr_factor}.")
        if not self.weight_decay >= 0:
            raise ValueError(f"Training: weight_decay must be >= 0, got {self.weight_decay}.")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(
                f"Training: validation_fraction must lie in (0, 1), got {self.validation_fraction}."
            )

    def optimizer(self) -> optax.GradientTransformation:
        """The optax optimiser these settings describe (one object per distinct settings, so
        that compiled training steps can be reused)."""
        return _optimizer(self.learning_rate, self.clip_norm, float(self.weight_decay))


@functools.lru_cache(maxsize=64)
def _optimizer(
    learning_rate: float, clip_norm: float | None, weight_decay: float
) -> optax.GradientTransformation:
    if weight_decay > 0:
        adam = optax.adamw(learning_rate, weight_decay=weight_decay)
    else:
        adam = optax.adam(learning_rate)
    if clip_norm is None:
        return adam
    return optax.chain(optax.clip_by_global_norm(clip_norm), adam)


class StopReason(enum.StrEnum):
    """Why training stopped (a string enum: ``StopReason.CONVERGED == "converged"``)."""

    CONVERGED = "converged"
    """The validation loss did not improve for ``patience`` epochs."""
    MAX_EPOCHS = "max_epochs"
    """``max_epochs`` epochs ran."""
    NON_FINITE = "non-finite"
    """The loss became NaN or inf; the best parameters before that were kept."""
    UNKNOWN = ""
    """Not recorded (an empty history)."""


@dataclasses.dataclass(frozen=True)
class History:
    """What happened during training (travels with every trained posterior as ``.history``).

    Attributes:
        train_loss: mean training loss per epoch.
        validation_loss: mean validation loss per epoch.
        best_epoch: index of the epoch whose parameters were kept.
        stop_reason: a :class:`StopReason`.
        num_train: number of training examples; ``num_validation``: held out.
        seconds: wall-clock training time.
        learning_rate_reductions: the epochs after which the learning rate was reduced
            (``Training.lr_plateau_steps``; for an ensemble, those of any member).
        choice: when ``fit`` chose between configurations
            (:class:`sk.estimators.BestOf <sbi_kit.estimators.BestOf>` flows), each one's label
            and lowest validation loss, in the order tried (in ``sk.sequential``'s rounds after
            the first: the held-out loss of each one's previous-round networks on the round's
            new simulations); the other fields are the kept one's. Empty when there was no
            choice.
    """

    train_loss: tuple[float, ...] = ()
    validation_loss: tuple[float, ...] = ()
    best_epoch: int = -1
    stop_reason: StopReason = StopReason.UNKNOWN
    num_train: int = 0
    num_validation: int = 0
    seconds: float = 0.0
    learning_rate_reductions: tuple[int, ...] = ()
    choice: tuple[tuple[str, float], ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "stop_reason", StopReason(self.stop_reason))

    def to_dict(self) -> dict:
        """JSON-ready dict (the stop reason as its string)."""
        d = dataclasses.asdict(self)
        d["stop_reason"] = str(self.stop_reason)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> History:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["train_loss"] = tuple(d.get("train_loss", ()))
        d["validation_loss"] = tuple(d.get("validation_loss", ()))
        d["learning_rate_reductions"] = tuple(d.get("learning_rate_reductions", ()))
        d["choice"] = tuple((str(label), float(loss)) for label, loss in d.get("choice", ()))
        return cls(**d)


def _is_frozen(leaf) -> bool:
    return isinstance(leaf, paramax.NonTrainable)


def _partition(nets):
    """Splits stacked networks into (trainable arrays, frozen arrays, static rest)."""
    arrays, static = eqx.partition(nets, eqx.is_array)
    params, frozen = eqx.partition(arrays, eqx.is_inexact_array, is_leaf=_is_frozen)
    return params, frozen, static


def data_sharding() -> NamedSharding | None:
    """A sharding of a batch over all devices, or None on one device."""
    devices = jax.devices()
    if len(devices) < 2:
        return None
    mesh = Mesh(np.array(devices), ("data",))
    return NamedSharding(mesh, PartitionSpec("data"))


@dataclasses.dataclass(frozen=True)
class _Plan:
    """How the data are split and batched."""

    num_train: int
    num_val: int
    batch_size: int
    num_batches: int
    sharding: NamedSharding | None


def _plan(n: int, config: Training) -> _Plan:
    num_val = max(1, int(round(config.validation_fraction * n)))
    num_train = n - num_val
    if num_train < 2:
        raise ValueError(
            f"too little data to train: {n} examples leave {num_train} for training after the "
            f"validation split of {config.validation_fraction}."
        )
    sharding = data_sharding()
    num_devices = len(jax.devices()) if sharding is not None else 1
    batch_size = min(config.batch_size, num_train)
    batch_size = max(num_devices, batch_size - batch_size % num_devices)
    return _Plan(num_train, num_val, batch_size, max(1, num_train // batch_size), sharding)


def _epoch_fn(
    loss_fn: Callable,
    static,
    optimizer,
    plan: _Plan,
    ema_decay: float | None,
    scaled: bool,
) -> Callable:
    """A jitted epoch over all ensemble members: ``(params, frozen, opt_state, ema, scale, keys,
    data) -> (params, opt_state, ema, kept, mean train loss per member)``; one ``lax.scan`` over
    batches. With ``scaled``, every update is multiplied by the member's ``scale`` (its
    learning rate relative to the configured one; ignored otherwise, so a training without a
    schedule compiles the same program as before there was one). ``ema`` is ``(running sum,
    steps)`` of the moving average (carried unchanged without ``ema_decay``); ``kept`` is what
    validation and early stopping see: the bias-corrected average ``sum / (1 - decay**steps)``
    (a weighted mean of the parameters after every step so far, with no weight left on the
    zero it starts from), or the raw parameters without ``ema_decay``."""

    def shard(batch):
        if plan.sharding is None:
            return batch
        return tuple(jax.lax.with_sharding_constraint(b, plan.sharding) for b in batch)

    def mean_loss(p, fr, batch, key):
        return jnp.mean(loss_fn(eqx.combine(p, fr, static), batch, key))

    def average(ema, p):
        if ema_decay is None:
            return ema
        decay, (total, steps) = float(ema_decay), ema
        total = jax.tree_util.tree_map(lambda a, q: decay * a + (1.0 - decay) * q, total, p)
        return total, steps + 1

    def kept(ema, p):
        if ema_decay is None:
            return p
        total, steps = ema
        correction = 1.0 - float(ema_decay) ** steps
        return jax.tree_util.tree_map(lambda a: a / correction, total)

    def epoch_one(p, fr, state, ema, scale, key, train_data):
        key_perm, key_loss = jax.random.split(key)
        idx = jax.random.permutation(key_perm, plan.num_train)
        idx = idx[: plan.num_batches * plan.batch_size]
        idx = idx.reshape(plan.num_batches, plan.batch_size)

        def step(carry, inputs):
            p, state, ema = carry
            i, key = inputs
            batch = shard(tuple(a[i] for a in train_data))
            loss, grads = jax.value_and_grad(mean_loss)(p, fr, batch, key)
            updates, state = optimizer.update(grads, state, p)
            if scaled:
                updates = jax.tree_util.tree_map(lambda u: u * scale, updates)
            p = optax.apply_updates(p, updates)
            return (p, state, average(ema, p)), loss

        keys = jax.random.split(key_loss, plan.num_batches)
        (p, state, ema), losses = jax.lax.scan(step, (p, state, ema), (idx, keys))
        return p, state, ema, kept(ema, p), jnp.mean(losses)

    return jax.jit(jax.vmap(epoch_one, in_axes=(0, 0, 0, 0, 0, 0, None)))


def _validation_fn(loss_fn: Callable, static, plan: _Plan, repeats: int) -> Callable:
    """A jitted validation loss of every ensemble member: ``(params, frozen, key, data) -> (k,)``;
    chunks of at most four batches, so memory does not grow with the validation set; each
    example's loss averaged over ``repeats`` keys (the same keys in every epoch)."""
    num_val = plan.num_val
    chunk = min(num_val, 4 * plan.batch_size)
    num_chunks = math.ceil(num_val / chunk)
    pad = num_chunks * chunk - num_val

    def val_one(p, fr, key, val_data):
        padded = tuple(jnp.concatenate([a, jnp.repeat(a[:1], pad, axis=0)]) for a in val_data)
        chunks = tuple(a.reshape(num_chunks, chunk, *a.shape[1:]) for a in padded)
        mask = (jnp.arange(num_chunks * chunk) < num_val).reshape(num_chunks, chunk)
        net = eqx.combine(p, fr, static)

        def body(total, inputs):
            batch, m, chunk_key = inputs
            if repeats == 1:
                losses = loss_fn(net, batch, chunk_key)
            else:
                keys = jax.random.split(chunk_key, repeats)
                losses = jnp.mean(jax.vmap(lambda k: loss_fn(net, batch, k))(keys), axis=0)
            return total + jnp.sum(jnp.where(m, losses, 0.0)), None

        chunk_keys = (
            jax.random.split(key, num_chunks) if repeats > 1 else jnp.stack([key] * num_chunks)
        )
        total, _ = jax.lax.scan(body, jnp.zeros(()), (chunks, mask, chunk_keys))
        return total / num_val

    return jax.jit(jax.vmap(val_one, in_axes=(0, 0, None, None)))


_COMPILED: collections.OrderedDict[Hashable, tuple[Callable, Callable]] = collections.OrderedDict()
_COMPILED_MAX = 16


def _compiled(reuse: Hashable | None, loss_fn: Callable, static, config: Training, plan: _Plan):
    """The jitted epoch and validation functions; with a ``reuse`` key, the ones built by an
    earlier call with the same key, network structure, settings and plan (so JAX's cache hits
    and nothing is traced or compiled again). The structure (the tree definition of ``static``,
    the networks' non-array part, which holds their static fields) is part of the key, so that
    two networks of one method that differ in a static field (e.g. NLE's constant components of
    x, found in each fit's data) never share a program built for the other."""

    def build():
        return (
            _epoch_fn(
                loss_fn,
                static,
                config.optimizer(),
                plan,
                config.ema_decay,
                config.lr_plateau_steps is not None,
            ),
            _validation_fn(loss_fn, static, plan, config.validation_repeats),
        )

    if reuse is None:
        return build()
    cache_key = (reuse, jax.tree_util.tree_structure(static), config, plan)
    found = _COMPILED.get(cache_key)
    if found is None:
        found = _COMPILED[cache_key] = build()
        while len(_COMPILED) > _COMPILED_MAX:
            _COMPILED.popitem(last=False)
    else:
        _COMPILED.move_to_end(cache_key)
    return found


@jax.jit
def _keep_best(best, params, improved):
    """Per member, ``params`` where ``improved`` else ``best``."""

    def pick(b, q):
        shape = (improved.shape[0],) + (1,) * (q.ndim - 1)
        return jnp.where(improved.reshape(shape), q, b)

    return jax.tree_util.tree_map(pick, best, params)


class _EarlyStopping:
    """Best validation loss, best epoch and epochs without improvement, per ensemble member,
    and the learning-rate schedule on plateaus (``Training.lr_plateau_steps``, in epochs of
    ``steps_per_epoch`` steps)."""

    def __init__(self, k: int, config: Training, steps_per_epoch: int):
        self.patience = config.patience
        steps = config.lr_plateau_steps
        self.lr_patience = None if steps is None else math.ceil(steps / steps_per_epoch)
        self.lr_factor = config.lr_factor
        self.lr_reductions = config.lr_reductions
        self.lr_stop_without_gain = config.lr_stop_without_gain
        self.best_val = np.full(k, np.inf)
        self.best_epoch = np.zeros(k, dtype=int)
        self.stale = np.zeros(k, dtype=int)
        self.non_finite = False
        # the learning rate relative to the configured one; epochs since the last improvement
        # or reduction; reductions so far; epochs at which some member's rate was reduced
        self.scale = np.ones(k, dtype=np.float32)
        self.plateau = np.zeros(k, dtype=int)
        self.reductions = np.zeros(k, dtype=int)
        self.reduced_at: list[int] = []

    def update(self, epoch: int, train_loss: np.ndarray, val_loss: np.ndarray) -> np.ndarray:
        """Records one epoch; returns which members improved (their parameters are kept)."""
        finite = np.isfinite(val_loss) & np.isfinite(train_loss)
        improved = finite & (val_loss < self.best_val)
        self.best_val = np.where(improved, val_loss, self.best_val)
        self.best_epoch = np.where(improved, epoch, self.best_epoch)
        self.stale = np.where(improved, 0, self.stale + 1)
        self.stale = np.where(finite, self.stale, self.patience)  # a diverged member stops
        self.non_finite |= not finite.all()
        if self.lr_patience is not None:
            self._schedule(epoch, improved)
        return improved

    def _schedule(self, epoch: int, improved: np.ndarray) -> None:
        self.plateau = np.where(improved, 0, self.plateau + 1)
        plateau = (self.plateau >= self.lr_patience) & (self.stale < self.patience)
        finished = plateau & (self.reductions >= self.lr_reductions)
        if self.lr_stop_without_gain:
            # no better epoch since the last reduction: the epochs without improvement
            # (stale) outnumber those since the reduction (plateau, reset by improvements)
            finished |= plateau & (self.reductions > 0) & (self.stale > self.plateau)
        reduce = plateau & ~finished
        self.stale = np.where(finished, self.patience, self.stale)
        self.scale = np.where(reduce, self.scale * np.float32(self.lr_factor), self.scale)
        self.reductions = np.where(reduce, self.reductions + 1, self.reductions)
        self.plateau = np.where(reduce, 0, self.plateau)
        if reduce.any():
            self.reduced_at.append(epoch)

    @property
    def done(self) -> bool:
        return bool((self.stale >= self.patience).all())


def train(
    key: Key,
    nets,
    loss_fn: Callable,
    data: tuple[Array, ...],
    config: Training = Training(),
    *,
    progress: bool = True,
    description: str = "train",
    reuse: Hashable | None = None,
):
    """Trains a stack of networks on per-example losses.

    Args:
        key: PRNG key (split, shuffling and any randomness in the loss).
        nets: the trainable pytree, with a leading ensemble axis of size ``k`` on every array
            (build it with ``eqx.filter_vmap`` over ``k`` keys; ``k = 1`` for one network).
        loss_fn: ``loss_fn(net, batch, key) -> losses`` for ONE network, where ``batch`` is a
            tuple like ``data`` with a leading batch axis and ``losses`` has shape ``(batch,)``.
        data: arrays with a common leading axis ``n``.
        config: :class:`Training` settings.
        progress: show a progress bar over epochs.
        description: label of the progress bar.
        reuse: optional hashable key that fixes ``loss_fn`` (``sk.NPE(...).fit`` passes the
            method and the dimensions). A later call with the same key, network structure
            (tree definition, static fields included), settings and data sizes runs the epoch
            and validation programs compiled by the first one instead of tracing and compiling
            them again. Two calls whose losses differ must not share a key.

    Returns:
        ``(best_nets, history)``: the parameters with the lowest validation loss (per ensemble
        member) and a :class:`History`.

    Examples:
        >>> import jax, jax.numpy as jnp, equinox as eqx, sbi_kit as sk
        >>> x = jax.random.normal(jax.random.key(0), (200, 1)) + 3.0
        >>> means = jnp.zeros((2, 1))  # an ensemble of two "networks": one mean each
        >>> loss = lambda mean, batch, key: jnp.sum((batch[0] - mean) ** 2, axis=1)
        >>> fitted, history = sk.training.train(jax.random.key(1), means, loss, (x,),
        ...     sk.Training(learning_rate=0.1, max_epochs=200), progress=False)
        >>> bool(jnp.allclose(fitted, 3.0, atol=0.2)), history.stop_reason in sk.StopReason
        (True, True)
    """
    start_time = time.perf_counter()
    n = int(data[0].shape[0])
    if any(int(a.shape[0]) != n for a in data):
        raise ValueError(
            f"training data must share the leading axis; got shapes {[a.shape for a in data]}."
        )
    plan = _plan(n, config)
    key_split, key_train = jax.random.split(key)
    perm = jax.random.permutation(key_split, n)
    train_data = tuple(jnp.asarray(a)[perm[: plan.num_train]] for a in data)
    val_data = tuple(jnp.asarray(a)[perm[plan.num_train :]] for a in data)

    params, frozen, static = _partition(nets)
    k = jax.tree_util.tree_leaves(params)[0].shape[0]
    opt_state = jax.vmap(config.optimizer().init)(params)
    epoch, validate = _compiled(reuse, loss_fn, static, config, plan)

    # the moving average's (running sum, steps) per member; unused without ema_decay
    if config.ema_decay is None:
        ema = params
    else:
        ema = (jax.tree_util.tree_map(jnp.zeros_like, params), jnp.zeros(k, jnp.int32))
    best = params
    stopping = _EarlyStopping(k, config, plan.num_batches)
    train_hist: list[float] = []
    val_hist: list[float] = []
    stop_reason = StopReason.MAX_EPOCHS
    key_train, key_val = jax.random.split(key_train)
    bar = tqdm(range(config.max_epochs), desc=description, disable=not progress, leave=False)
    for e in bar:
        keys = jax.random.split(jax.random.fold_in(key_train, e), k)
        params, opt_state, ema, kept, train_loss = epoch(
            params, frozen, opt_state, ema, jnp.asarray(stopping.scale), keys, train_data
        )
        val_loss = np.asarray(validate(kept, frozen, key_val, val_data))
        train_loss = np.asarray(train_loss)
        improved = stopping.update(e, train_loss, val_loss)
        best = _keep_best(best, kept, jnp.asarray(improved))
        train_hist.append(float(np.mean(train_loss)))
        val_hist.append(float(np.mean(val_loss)))
        bar.set_postfix(train=f"{train_hist[-1]:.3f}", val=f"{val_hist[-1]:.3f}")
        if stopping.done:
            stop_reason = StopReason.CONVERGED
            break
    bar.close()
    if stopping.non_finite:
        stop_reason = StopReason.NON_FINITE
        warnings.warn(
            f"{description}: the loss became NaN or inf; training stopped for the affected "
            f"network(s) and kept the best parameters so far (epoch "
            f"{int(stopping.best_epoch.max())}).",
            RuntimeWarning,
            stacklevel=3,
        )
    if not np.isfinite(stopping.best_val).any():
        raise FloatingPointError(
            f"{description}: the validation loss was never finite; nothing could be kept. "
            "Try a smaller learning rate or check the data scale."
        )
    history = History(
        train_loss=tuple(train_hist),
        validation_loss=tuple(val_hist),
        best_epoch=int(np.max(stopping.best_epoch)),
        stop_reason=stop_reason,
        num_train=plan.num_train,
        num_validation=plan.num_val,
        seconds=time.perf_counter() - start_time,
        learning_rate_reductions=tuple(stopping.reduced_at),
    )
    return eqx.combine(best, frozen, static), history
