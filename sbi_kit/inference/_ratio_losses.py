"""The losses of neural ratio estimation, as small strategy objects.

Each loss takes a classifier's logits ``d(θ, x)`` for the batch's joint pairs and for contrasting
pairs whose θ come from other rows of the batch (draws from the marginal), and returns one loss
per example. Contrasting θ for row i are rows ``i + r_k (mod B)`` for distinct random offsets
``r_k ∈ [1, B)``, so a row is never contrasted with itself.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from .._types import Key


def contrast_indices(key: Key, batch: int, num: int) -> Array:
    """``(batch, num)`` row indices: for row i, ``num`` other rows ``i + r_k mod batch``."""
    offsets = 1 + jax.random.permutation(key, batch - 1)[:num]
    return (jnp.arange(batch)[:, None] + offsets[None, :]) % batch


class AbstractRatioLoss(eqx.Module):
    """A classification loss whose optimal logit is a (log) likelihood-to-evidence ratio."""

    @abc.abstractmethod
    def num_contrasts(self) -> int:
        """How many contrasting θ each example needs (the batch must be larger)."""

    @abc.abstractmethod
    def __call__(self, logit: Callable, theta: Array, x: Array, key: Key) -> Array:
        """Per-example losses ``(batch,)``; ``logit(theta, x)`` scores one pair."""


def _logits(logit: Callable, theta: Array, x: Array, idx: Array) -> Array:
    """``d(θ_idx[i, k], x_i)`` for every row i and column k: shape ``idx.shape``."""
    per_row = jax.vmap(lambda t, xi: logit(t, xi), in_axes=(0, None))
    return jax.vmap(lambda row, xi: per_row(theta[row], xi))(idx, x)


def _joint_and_shuffled(logit: Callable, theta: Array, x: Array, key: Key) -> tuple[Array, Array]:
    """Logits ``(batch,)`` of the joint pairs and of one contrasting θ per x."""
    joint = jax.vmap(logit)(theta, x)
    marginal = _logits(logit, theta, x, contrast_indices(key, theta.shape[0], 1))[:, 0]
    return joint, marginal


class NRE_A(AbstractRatioLoss):
    """Binary classification of joint against shuffled pairs (Hermans, Begy & Louppe 2020).

    ``−log σ(d(θ_i, x_i)) − log σ(−d(θ'_i, x_i))``; at the optimum
    ``d = log p(x | θ) / p(x)``.
    """

    def num_contrasts(self) -> int:
        return 1

    def __call__(self, logit, theta, x, key):
        joint, marginal = _joint_and_shuffled(logit, theta, x, key)
        return -jax.nn.log_sigmoid(joint) - jax.nn.log_sigmoid(-marginal)


class NRE_B(AbstractRatioLoss):
    """Contrastive classification among K atoms (Durkan, Murray & Papamakarios 2020).

    ``−log[e^{d(θ_i, x_i)} / Σ_k e^{d(θ_k, x_i)}]`` over the joint θ and ``K − 1`` contrasting
    ones; the ratio is identified up to a function of x (fine for MCMC in θ).

    Args:
        num_atoms: K, the atoms per example (≥ 2).
    """

    num_atoms: int = 10

    def __check_init__(self):
        if isinstance(self.num_atoms, bool) or not isinstance(self.num_atoms, int):
            raise TypeError(f"NRE_B: num_atoms must be an int, got {self.num_atoms!r}.")
        if self.num_atoms < 2:
            raise ValueError(f"NRE_B: num_atoms must be ≥ 2, got {self.num_atoms}.")

    def num_contrasts(self) -> int:
        return self.num_atoms - 1

    def __call__(self, logit, theta, x, key):
        joint = jax.vmap(logit)(theta, x)
        others = _logits(logit, theta, x, contrast_indices(key, theta.shape[0], self.num_atoms - 1))
        all_logits = jnp.concatenate([joint[:, None], others], axis=1)
        return jax.nn.logsumexp(all_logits, axis=1) - joint


class NRE_C(AbstractRatioLoss):
    """Contrastive NRE with an "independent" class (Miller, Weniger & Forré 2022).

    K θ per example and K + 1 classes: class 0 says all K are drawn independently of x, class
    k ≥ 1 that θ_k is the joint one; γ is the odds of a joint set. With
    ``Z = K + γ Σ_j e^{d(θ_j, x)}``, ``q(0) = K / Z`` and ``q(k) = γ e^{d(θ_k, x)} / Z``; the
    loss is ``−[log q(0 | Θ_marginal) + γ log q(1 | Θ_joint)] / (1 + γ)``. At the optimum
    ``d = log p(θ | x) / p(θ)``, normalised (unlike NRE-B); ``K = 1, γ = 1`` is NRE-A's loss
    halved.

    Args:
        num_classes: K, the θ per example (≥ 1).
        gamma: γ > 0, the odds of the joint class.
    """

    num_classes: int = 5
    gamma: float = 1.0

    def __check_init__(self):
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int):
            raise TypeError(f"NRE_C: num_classes must be an int, got {self.num_classes!r}.")
        if self.num_classes < 1:
            raise ValueError(f"NRE_C: num_classes must be ≥ 1, got {self.num_classes}.")
        if not self.gamma > 0:
            raise ValueError(f"NRE_C: gamma must be > 0, got {self.gamma!r}.")

    def num_contrasts(self) -> int:
        return self.num_classes

    def __call__(self, logit, theta, x, key):
        k, log_gamma = self.num_classes, math.log(self.gamma)
        idx = contrast_indices(key, theta.shape[0], k)
        marginal = _logits(logit, theta, x, idx)  # (B, K): Θ_marginal
        joint = jnp.concatenate(
            [jax.vmap(logit)(theta, x)[:, None], marginal[:, : k - 1]], axis=1
        )  # (B, K): Θ_joint, the joint θ first

        def log_z(logits):
            terms = jnp.concatenate(
                [jnp.full((logits.shape[0], 1), math.log(k)), log_gamma + logits], axis=1
            )
            return jax.nn.logsumexp(terms, axis=1)

        log_q0 = math.log(k) - log_z(marginal)
        log_q1 = log_gamma + joint[:, 0] - log_z(joint)
        return -(log_q0 + self.gamma * log_q1) / (1.0 + self.gamma)


class BalancedNRE(AbstractRatioLoss):
    """Balanced NRE (Delaunoy et al. 2022): NRE-A plus a balancing penalty.

    ``λ (mean σ(d_joint) + mean σ(d_marginal) − 1)²`` over the batch is added to every example's
    binary cross-entropy; it pushes the classifier towards conservative (not overconfident)
    posteriors.

    Args:
        regularization: λ (≥ 0).
    """

    regularization: float = 100.0

    def __check_init__(self):
        if not self.regularization >= 0:
            raise ValueError(
                f"BalancedNRE: regularization must be ≥ 0, got {self.regularization!r}."
            )

    def num_contrasts(self) -> int:
        return 1

    def __call__(self, logit, theta, x, key):
        joint, marginal = _joint_and_shuffled(logit, theta, x, key)
        bce = -jax.nn.log_sigmoid(joint) - jax.nn.log_sigmoid(-marginal)
        balance = jnp.mean(jax.nn.sigmoid(joint)) + jnp.mean(jax.nn.sigmoid(marginal)) - 1.0
        return bce + self.regularization * balance**2
