"""How sequential NPE spends its later rounds: truncated proposals (TSNPE) or atomic APT.

:func:`~sbi_kit.sequential` asks an :class:`AbstractSNPE` two things for every round after the
first: where to simulate (:meth:`AbstractSNPE.propose`) and how to train on all rounds' pairs
(:meth:`AbstractSNPE.fit`).

* :class:`TSNPE` (Deistler, Gonçalves & Macke 2022): the prior restricted to the current
  posterior's highest-density region; the plain NPE loss stays valid.
* :class:`APT` (Greenberg, Nonnenmacher & Macke 2019; "SNPE-C" in ``sbi`` and sbibm): draws
  from the current posterior itself, trained with the atomic loss, which turns the proposal's
  posterior back into the prior's without evaluating the proposal density.
"""

from __future__ import annotations

import abc
import numbers

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jaxtyping import Array

from .._acceptance import accept_in_batches
from .._checks import check_positive_int, check_setting_positive_int, check_training_data
from .._types import Key
from ..training import Training, train
from ._method import AbstractMethod, standardize
from ._npe import NPE, NPEPosterior
from ._posterior import AbstractDensityPosterior
from ._support import check_inside


class AbstractSNPE(eqx.Module):
    """A strategy for the rounds after the first of sequential NPE (see the module docstring)."""

    @abc.abstractmethod
    def propose(
        self, key: Key, posterior: AbstractDensityPosterior, x_o: Array, num_samples: int
    ) -> Array:
        """``num_samples`` parameters to simulate next, ``(num_samples, dim_theta)``."""

    @abc.abstractmethod
    def fit(
        self,
        key: Key,
        method: AbstractMethod,
        theta: Array,
        x: Array,
        *,
        prior: dist.Distribution,
        previous: AbstractDensityPosterior,
        warm_start: bool,
        progress: bool,
    ) -> AbstractDensityPosterior:
        """The next round's posterior, trained on all rounds' pairs ``theta``, ``x``."""

    def check(self, method: AbstractMethod, fn: str) -> None:
        """Raises ``TypeError`` if this strategy cannot run ``method`` (default: any can)."""


class TSNPE(AbstractSNPE):
    """Truncated sequential NPE: simulate from the prior inside the posterior's HPD region.

    Args:
        truncation: the posterior mass left out of the region (``1e-4`` as in the paper).
        num_quantile_samples: posterior draws whose log-densities estimate the region's
            threshold (their ``truncation`` quantile).

    Examples:
        >>> import sbi_kit as sk
        >>> sk.inference.TSNPE(truncation=1e-3).truncation
        0.001
    """

    truncation: float = 1e-4
    num_quantile_samples: int = 10_000

    def __check_init__(self):
        t = self.truncation
        if isinstance(t, bool) or not isinstance(t, numbers.Real) or not 0 < t < 1:
            raise ValueError(f"TSNPE: `truncation` must lie in (0, 1), got {t!r}.")
        check_setting_positive_int("TSNPE", "num_quantile_samples", self.num_quantile_samples)

    def propose(self, key, posterior, x_o, num_samples):
        return truncated_prior_sample(
            key,
            posterior,
            x_o,
            num_samples,
            truncation=float(self.truncation),
            num_quantile_samples=self.num_quantile_samples,
        )

    def fit(self, key, method, theta, x, *, prior, previous, warm_start, progress):
        return method.fit(
            key, theta, x, prior=prior, progress=progress, init=previous if warm_start else None
        )


class APT(AbstractSNPE):
    """Automatic posterior transformation (APT, SNPE-C) with the atomic loss.

    Later rounds simulate from the current posterior q(θ | x_o). Training on all rounds' pairs
    then minimises, per pair (θ_i, x_i), ``−log softmax_j [log q(θ_j | x_i) − log p(θ_j)]`` at
    j = i, over an atom set of θ_i and ``num_atoms − 1`` other parameters of the batch: the
    network's posterior, reweighted by the prior over the atoms, must pick out the θ that
    produced x_i. Its minimiser is the true posterior whatever the proposals were, so no
    proposal density is needed. Densities are taken in the space the flow learns in (the
    unconstrained one under ``support=Bijection()``), so the posterior cannot leak mass
    outside a bounded prior, the failure of APT with unbounded flows that TSNPE was designed
    to avoid.

    Only for :class:`~sbi_kit.NPE` (the loss evaluates the flow's density at other pairs'
    parameters). Each step costs about ``num_atoms`` times an NPE step. The previous round's
    networks are always the starting point: the atomic loss needs round 1's z-scoring.

    Args:
        num_atoms: atoms per pair, at least 2 (10 as in sbi and sbibm).
        training: the :class:`~sbi_kit.Training` of the atomic rounds (round 2 on), e.g. a
            shorter patience, since each of them continues the previous round's networks;
            ``None`` (default): the method's own, as in round 1.

    Examples:
        >>> import jax, jax.numpy as jnp, numpyro.distributions as dist, sbi_kit as sk
        >>> prior = dist.Uniform(-jnp.ones(2), jnp.ones(2)).to_event(1)
        >>> sim = sk.Simulator(prior, lambda k, th: th + 0.05 * jax.random.normal(k, (2,)))
        >>> npe = sk.NPE(flow=sk.estimators.MAF(layers=1, width=8, depth=1),
        ...              training=sk.Training(max_epochs=3))
        >>> result = sk.sequential(jax.random.key(0), npe, sim, jnp.array([0.3, -0.2]),
        ...                        rounds=2, simulations_per_round=200,
        ...                        snpe=sk.inference.APT(num_atoms=5), progress=False)
        >>> result.theta.shape
        (400, 2)
    """

    num_atoms: int = 10
    training: Training | None = None

    def __check_init__(self):
        n = self.num_atoms
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise ValueError(f"APT: `num_atoms` must be an integer ≥ 2, got {n!r}.")
        if self.training is not None and not isinstance(self.training, Training):
            raise TypeError(
                f"APT: `training` must be an sk.Training or None, got {self.training!r}."
            )

    def check(self, method, fn):
        if not isinstance(method, NPE):
            raise TypeError(
                f"{fn}: sk.inference.APT trains an sk.NPE flow with the atomic loss; "
                f"got {type(method).__name__}."
            )

    def propose(self, key, posterior, x_o, num_samples):
        return posterior.sample(key, x_o, num_samples)

    def fit(self, key, method, theta, x, *, prior, previous, warm_start, progress):
        del warm_start  # always: the atomic loss trains round 1's network on its z-scoring
        fn = "APT.fit"
        self.check(method, fn)
        if not isinstance(previous, NPEPosterior) or previous.method != method:
            raise TypeError(
                f"{fn}: `previous` must be a posterior of this NPE (an earlier round), got "
                f"{type(previous).__name__}."
            )
        training = method.training if self.training is None else self.training
        theta, x = check_training_data(
            theta, x, prior, fn, validation_fraction=training.validation_fraction
        )
        check_inside(prior, theta, fn, "APT")
        transform = method.support.transform(prior)
        z = jax.vmap(transform.inv)(theta)
        log_prior_z = jax.vmap(lambda zi: _log_prior_z(prior, transform, zi))(z)
        z_std, x_std = standardize(previous.theta_standardizer, previous.x_standardizer, z, x)
        loss = _AtomicLoss(method, self.num_atoms)
        net, history = train(
            key,
            previous.net,
            loss,
            (z_std, x_std, log_prior_z),
            training,
            progress=progress,
            description="APT",
            reuse=(loss, previous.dim_theta, previous.x_shape),
        )
        return eqx.tree_at(lambda p: p.net, previous, net).with_metadata(history=history)


def _log_prior_z(prior: dist.Distribution, transform, z: Array) -> Array:
    """log-density of the prior for the unconstrained z = T⁻¹(θ) (z-scoring left out: it is
    a constant, and constants cancel in the atomic loss)."""
    theta = transform(z)
    return prior.log_prob(theta) + jnp.sum(transform.log_abs_det_jacobian(z, theta))


class _AtomicLoss(eqx.Module):
    """APT's atomic loss for a batch ``(θ_std, x_std, log prior)`` of ONE NPE network."""

    method: NPE
    num_atoms: int

    def __call__(self, net, batch, key):
        theta, x, log_prior = batch
        b = theta.shape[0]
        k = min(self.num_atoms, b)
        # atom j of pair i is pair (i + offset_j) mod b: distinct other pairs (offset 0 = itself)
        offsets = jnp.concatenate(
            [jnp.zeros(1, jnp.int32), 1 + jax.random.choice(key, b - 1, (k - 1,), replace=False)]
        )
        atoms = (jnp.arange(b)[:, None] + offsets[None, :]) % b  # (b, k)

        def logits(i_atoms, x_i):
            lq = jax.vmap(lambda t: net.log_prob(t, x_i))(theta[i_atoms])
            return lq - log_prior[i_atoms]

        out = jax.vmap(logits)(atoms, x)  # (b, k)
        return -(out[:, 0] - jax.nn.logsumexp(out, axis=1))


def truncated_prior_sample(
    key: Key,
    posterior: AbstractDensityPosterior,
    x_o: Array,
    num_samples: int,
    *,
    truncation: float = 1e-4,
    num_quantile_samples: int = 10_000,
    max_batches: int = 1000,
) -> Array:
    """Prior draws inside the posterior's highest-density region of mass ``1 − truncation``.

    The region is ``{θ : log q(θ | x_o) ≥ τ}`` with τ the ``truncation`` quantile of
    ``log q`` over ``num_quantile_samples`` posterior draws; prior draws are kept when inside.

    Raises:
        RuntimeError: if ``max_batches`` batches of prior draws do not fill the request.
    """
    num_samples = check_positive_int(num_samples, "num_samples", "truncated_prior_sample")
    key_q, key_prior = jax.random.split(key)
    draws = posterior.sample(key_q, x_o, num_quantile_samples)
    threshold = jnp.quantile(posterior.log_prob(draws, x_o), truncation)

    def draw(i: int) -> Array:
        return posterior.prior.sample(jax.random.fold_in(key_prior, i), (num_samples,))

    def inside(candidates: np.ndarray) -> np.ndarray:
        return np.asarray(posterior.log_prob(jnp.asarray(candidates), x_o) >= threshold)

    rows, total = accept_in_batches(draw, inside, num_samples, max_batches)
    if rows is None:
        raise RuntimeError(
            f"truncated_prior_sample: {max_batches} batches of {num_samples} prior draws gave "
            f"only {total} inside the posterior's HPD region (acceptance below "
            f"{total / (max_batches * num_samples):.2g}); raise max_batches or truncation."
        )
    return jnp.asarray(rows)


def default_snpe(method: AbstractMethod) -> AbstractSNPE:
    """The strategy :func:`~sbi_kit.sequential` uses when none is given: :class:`APT` for
    :class:`~sbi_kit.NPE` (sbi's and sbibm's SNPE; on sbibm's two_moons and sir at 1,000
    simulations it beat TSNPE by 0.06–0.08 in C2ST, ``docs/sequential.md``), :class:`TSNPE`
    for the other density methods (NPSE, FMPE), whose networks have no atomic loss.

    Raises:
        TypeError: ``method`` is not an inference method.

    Examples:
        >>> import sbi_kit as sk
        >>> from sbi_kit.inference import default_snpe
        >>> default_snpe(sk.NPE()), default_snpe(sk.FMPE())
        (APT(), TSNPE())
    """
    if not isinstance(method, AbstractMethod):
        raise TypeError(
            f"default_snpe: `method` must be an inference method such as sk.NPE(), got {method!r}."
        )
    return APT() if isinstance(method, NPE) else TSNPE()
