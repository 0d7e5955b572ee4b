"""The LC-PFN learning-curve prior, and the same parametric model for NUTS.

Adriaensen, Rakotoarison, Müller & Hutter, "Efficient Bayesian Learning Curve Extrapolation
using Prior-Data Fitted Networks", NeurIPS 2023 (LC-PFN), building on the parametric curve
ensembles of Domhan, Springenberg & Hutter (IJCAI 2015). A curve over epochs ``t = 1..m`` is

    f(t) = w_1 pow3(t) + w_2 janoschek(t) + w_3 ilog2(t),   y_t ~ N(f(t), σ²)

with

- pow3 ``c − a t^(−α)``: ``c ~ U(0, 1.25)``, ``a ~ U(−0.6, 0.6)``, ``α ~ LogNormal(0, 2)``;
- Janoschek ``α − (α − β) exp(−κ t^δ)``: ``α ~ U(0, 1)``, ``β ~ U(0, 2)``,
  ``κ ~ LogNormal(−2, 1)``, ``δ ~ LogNormal(0, 0.5)``;
- ilog2 ``c − a / log(t + 1)``: ``c ~ U(0, 1)``, ``a ~ U(−0.5, 0.5)``;
- ``w_k ~ U(0, 1)`` independently, NOT normalised to sum to one: the paper states the weights'
  prior as U(0, 1), and the authors' code (``lcpfn/domhan_prior.py``: ``prior_weights`` and
  ``sample_prior_comb``) multiplies each curve by its raw uniform weight;
- ``log σ ~ N(−4, 1)`` (the code's definition; the lcpfn README notes the paper's text differs);
- noiseless curves with ``f(1) ≥ f(m)``, or with any ``f(t)`` outside ``[0, 1]`` (or not finite) on
  ``t = 1..m``, are rejected and redrawn.

Observed ``y`` is NOT clipped to [0, 1]: the range check is on the noiseless curve and the noise
is added after it, as in the authors' code (whose comment notes that noisy values can leave
[0, 1]). With σ = e^(−4 ± 1) this is rare but happens near 0 and 1.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import erfinv
from jaxtyping import Array

from .._checks import check_key, check_positive_int
from .._types import Key
from ._prior import AbstractDatasetPrior, Dataset

_PRIOR_TABLE = (
    ("w", "uniform", 0.0, 1.0, 3),
    ("pow3_c", "uniform", 0.0, 1.25, 1),
    ("pow3_a", "uniform", -0.6, 0.6, 1),
    ("pow3_alpha", "lognormal", 0.0, 2.0, 1),
    ("janoschek_alpha", "uniform", 0.0, 1.0, 1),
    ("janoschek_beta", "uniform", 0.0, 2.0, 1),
    ("janoschek_kappa", "lognormal", -2.0, 1.0, 1),
    ("janoschek_delta", "lognormal", 0.0, 0.5, 1),
    ("ilog2_c", "uniform", 0.0, 1.0, 1),
    ("ilog2_a", "uniform", -0.5, 0.5, 1),
    ("sigma", "lognormal", -4.0, 1.0, 1),
)
"""The one definition of the prior: (site, family, low or log-mean, high or log-sd, size)."""

_SITE_NAMES = tuple(row[0] for row in _PRIOR_TABLE)
"""The model's latent sites, in sampling order (``w`` has shape (3,), the others are scalars)."""

PARAMETER_NAMES = ("w[0]", "w[1]", "w[2]", *_SITE_NAMES[1:])
"""Names of the 13 flattened parameters: the weights of (pow3, janoschek, ilog2), then the
curves' parameters and the noise standard deviation σ."""

_FALLBACK = (1.0, 0.0, 0.0, 0.9, 0.5, 0.5, 0.5, 0.5, math.exp(-2.0), 1.0, 0.5, 0.0, math.exp(-4.0))
"""A valid parameter vector (pow3 only: f(t) = 0.9 − 0.5/√t, increasing from 0.4 towards 0.9, so
valid for every m), returned if ``max_tries`` draws were all rejected."""


_IS_UNIFORM = np.concatenate([np.full(n, fam == "uniform") for _, fam, _, _, n in _PRIOR_TABLE])
_P1 = np.concatenate([np.full(n, a) for _, _, a, _, n in _PRIOR_TABLE])
_P2 = np.concatenate([np.full(n, b) for _, _, _, b, n in _PRIOR_TABLE])


def _site_distributions() -> list[tuple[str, dist.Distribution]]:
    """The prior of each site as numpyro distributions (built on call: importing this module
    runs no JAX)."""
    out = []
    for name, family, a, b, size in _PRIOR_TABLE:
        d = dist.Uniform(a, b) if family == "uniform" else dist.LogNormal(a, b)
        out.append((name, d.expand([size]).to_event(1) if size > 1 else d))
    return out


def _curve(p: dict[str, Array], t: Array) -> Array:
    """The noiseless curve ``f(t)`` for sites ``p`` at epochs ``t`` (any shape)."""
    w = p["w"]
    pow3 = p["pow3_c"] - p["pow3_a"] * jnp.power(t, -p["pow3_alpha"])
    jan = p["janoschek_alpha"] - (p["janoschek_alpha"] - p["janoschek_beta"]) * jnp.exp(
        -p["janoschek_kappa"] * jnp.power(t, p["janoschek_delta"])
    )
    ilog2 = p["ilog2_c"] - p["ilog2_a"] / jnp.log(t + 1.0)
    return w[0] * pow3 + w[1] * jan + w[2] * ilog2


def _is_valid(f_all: Array) -> Array:
    """The LC-PFN acceptance test on the noiseless curve at t = 1..m."""
    in_range = jnp.all((f_all >= 0.0) & (f_all <= 1.0))
    return jnp.all(jnp.isfinite(f_all)) & in_range & (f_all[0] < f_all[-1])


def _unflatten(theta: Array) -> dict[str, Array]:
    return {"w": theta[:3]} | {name: theta[i + 2] for i, name in enumerate(_SITE_NAMES[1:], 1)}


def _draw(key: Key) -> Array:
    """One parameter vector (13,) from the (unrejected) prior, from one uniform and one normal
    vector (transformed per :data:`_PRIOR_TABLE`; few random calls compile fast under vmap)."""
    dtype = jnp.result_type(float)
    uz = jax.random.uniform(key, (2, _P1.size), dtype, minval=jnp.finfo(dtype).tiny)
    u, z = uz[0], jnp.sqrt(2.0) * erfinv(2.0 * uz[1] - 1.0)
    p1, p2 = jnp.asarray(_P1, dtype), jnp.asarray(_P2, dtype)
    return jnp.where(jnp.asarray(_IS_UNIFORM), p1 + (p2 - p1) * u, jnp.exp(p1 + p2 * z))


class LearningCurvePrior(AbstractDatasetPrior):
    """The LC-PFN prior over learning curves (see the module docstring for the model).

    ``sample(key, num_points)`` returns the first ``num_points`` epochs of ONE curve of
    ``num_epochs`` epochs, IN EPOCH ORDER (a PFN uses the first ``n`` as its context):
    ``x[i] = t_i / num_epochs`` with ``t_i = i + 1``, shape ``(num_points, 1)``; ``y`` the noisy
    values (not clipped); ``parameters`` the 13 values in :data:`PARAMETER_NAMES` order. The
    rejection test is always on the full ``t = 1..num_epochs`` (so a curve's law does not
    depend on ``num_points``).

    Rejection runs inside ``jit`` as a ``lax.while_loop`` of at most ``max_tries`` draws (under
    ``vmap`` the loop runs until every member has a valid curve). The acceptance rate is
    measured at 0.205 for ``num_epochs = 100`` (2.4 × 10⁵ draws for 5 × 10⁴ curves, at most
    47 draws for one curve; tests/pfn/test_priors.py checks ≥ 0.18), so 100 tries all fail
    with probability 0.795¹⁰⁰ ≈ 1e-10; if they do, the draw falls back to a fixed valid curve
    (pow3 only, ``f(t) = 0.9 − 0.5/√t``), so a sample is always a valid curve.

    Args:
        num_epochs: ``m``, the length of a curve.
        max_tries: the most draws of the rejection loop.

    Examples:
        >>> import jax
        >>> from sbi_kit.pfn import LearningCurvePrior
        >>> prior = LearningCurvePrior(num_epochs=100)
        >>> data = prior.sample(jax.random.key(0), 30)
        >>> data.x.shape, data.y.shape, data.parameters.shape
        ((30, 1), (30,), (13,))
        >>> round(float(data.x[0, 0]), 6), round(float(data.x[-1, 0]), 6)
        (0.01, 0.3)
        >>> prior.parameter_names[:4]
        ('w[0]', 'w[1]', 'w[2]', 'pow3_c')
    """

    num_epochs: int = eqx.field(static=True, default=100)
    max_tries: int = eqx.field(static=True, default=100)
    input_dim: int = eqx.field(static=True, default=1, init=False)

    def __check_init__(self):
        check_positive_int(self.num_epochs, "num_epochs", "LearningCurvePrior")
        check_positive_int(self.max_tries, "max_tries", "LearningCurvePrior")
        if self.num_epochs < 2:
            raise ValueError(
                f"LearningCurvePrior: `num_epochs` must be ≥ 2 (the prior compares f(1) with "
                f"f(m)), got {self.num_epochs!r}."
            )

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return PARAMETER_NAMES

    def _epochs(self) -> Array:
        return jnp.arange(1, self.num_epochs + 1, dtype=jnp.result_type(float))

    def _draw_valid(self, key: Key) -> tuple[Array, Array, Array]:
        """Rejection sampling: ``(theta (13,), f (num_epochs,), tries)``; ``tries`` counts the
        draws made (``max_tries + 1`` flags the fallback)."""
        t = self._epochs()

        def propose(k):
            theta = _draw(k)
            f = _curve(_unflatten(theta), t)
            return theta, f, _is_valid(f)

        def cond(state):
            i, _, _, _, ok = state
            return (~ok) & (i < self.max_tries)

        def body(state):
            i, k, _, _, _ = state
            k, sub = jax.random.split(k)
            return (i + 1, k, *propose(sub))

        # the first draw happens in the body too: `propose` is traced (and compiled) once
        dtype = jnp.result_type(float)
        init = (
            jnp.asarray(0),
            key,
            jnp.zeros(_P1.size, dtype),
            jnp.zeros_like(t),
            jnp.asarray(False),
        )
        tries, _, theta, f, ok = jax.lax.while_loop(cond, body, init)
        fallback = jnp.asarray(_FALLBACK, dtype=theta.dtype)
        theta = jnp.where(ok, theta, fallback)
        f = jnp.where(ok, f, _curve(_unflatten(fallback), t))
        return theta, f, jnp.where(ok, tries, self.max_tries + 1)

    @eqx.filter_jit
    def sample(self, key: Key, num_points: int) -> Dataset:
        """The first ``num_points`` epochs of one curve (see the class docstring).

        Args:
            key: a JAX PRNG key.
            num_points: a static int, ``1 ≤ num_points ≤ num_epochs``.

        Returns:
            a :class:`Dataset` with ``x`` ``(num_points, 1)``, ``y`` ``(num_points,)`` and
            ``parameters`` ``(13,)``.

        Raises:
            ValueError: if ``num_points`` exceeds ``num_epochs``.
        """
        key = check_key(key, "LearningCurvePrior.sample")
        num_points = check_positive_int(num_points, "num_points", "LearningCurvePrior.sample")
        if num_points > self.num_epochs:
            raise ValueError(
                f"LearningCurvePrior.sample: `num_points` must be ≤ num_epochs = "
                f"{self.num_epochs}, got {num_points}."
            )
        k_curve, k_noise = jax.random.split(key)
        theta, f, _ = self._draw_valid(k_curve)
        f = f[:num_points]
        y = f + theta[-1] * jax.random.normal(k_noise, f.shape, f.dtype)
        x = (self._epochs()[:num_points] / self.num_epochs)[:, None]
        return Dataset(x=x, y=y, parameters=theta)


def _valid_on_epochs(p: dict[str, Array], num_epochs, dtype) -> Array:
    """:func:`_is_valid` of the curve on ``t = 1..num_epochs``. A Python int gives one vectorised
    evaluation; a traced ``num_epochs`` (``MCMC(..., jit_model_args=True)`` traces the model's
    keyword arguments too) a ``fori_loop`` over the epochs with the same result."""
    if isinstance(num_epochs, int | np.integer):
        return _is_valid(_curve(p, jnp.arange(1, int(num_epochs) + 1, dtype=dtype)))

    def body(i, carry):
        ok, _ = carry
        f = _curve(p, jnp.asarray(i, dtype))
        return ok & jnp.isfinite(f) & (f >= 0.0) & (f <= 1.0), f

    first = _curve(p, jnp.asarray(1.0, dtype))
    ok, last = jax.lax.fori_loop(1, num_epochs + 1, body, (jnp.asarray(True), first))
    return ok & (first < last)


def learning_curve_model(t, y=None, num_epochs: int = 100, *, truncate: bool = True) -> None:
    """The LC-PFN prior and likelihood as a numpyro model, for NUTS on a partial curve.

    Latent sites, in order: ``w`` (3,) and the scalars of :data:`PARAMETER_NAMES`, with the
    priors of the module docstring; a deterministic site ``f`` (the noiseless curve at ``t``);
    the observed site ``y ~ N(f(t), σ²)`` (independent over t). With ``truncate=True`` the
    rejection of the prior is a ``numpyro.factor("valid", 0 or −inf)`` on the curve at
    ``t = 1..num_epochs`` (a curve that the LC-PFN prior would have rejected has density 0), so
    the posterior is the LC-PFN posterior exactly (the truncated prior's normalising constant
    does not depend on the parameters). NUTS treats a step into the −inf region as a divergence;
    numpyro retries a chain's initialisation until the density is finite (the default
    ``init_to_uniform`` works; ``init_to_sample`` was faster to adapt in our runs: 100 warm-up
    and 100 draws on 20 epochs, no divergences). ``truncate=False`` drops the factor (the
    untruncated parametric prior). Forward sampling with ``numpyro.infer.Predictive`` ignores
    factors: draws from the prior use :class:`LearningCurvePrior`.

    To predict the remainder of a curve, run NUTS with ``t`` the observed epochs and ``y`` their
    values, then ``Predictive(learning_curve_model, samples)(key, t_future)`` gives ``y`` and
    ``f`` at the future epochs. Epochs relate to a PFN's inputs by ``t = x · num_epochs``.

    Args:
        t: epochs, shape ``(n,)`` (``1, 2, ...``; any positive values).
        y: observed values, shape ``(n,)``, or ``None`` to sample them.
        num_epochs: ``m`` of the truncation (the full curve's length); may be traced (e.g.
            by ``MCMC(..., jit_model_args=True)``).
        truncate: include the rejection as a factor.

    Raises:
        ValueError: if ``t`` is not 1-D or ``y`` does not match it.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from numpyro.infer import Predictive
        >>> from sbi_kit.pfn import learning_curve_model
        >>> t = jnp.arange(1.0, 11.0)
        >>> draws = Predictive(learning_curve_model, num_samples=4)(jax.random.key(0), t)
        >>> draws["y"].shape, draws["w"].shape, draws["sigma"].shape
        ((4, 10), (4, 3), (4,))
    """
    fn = "learning_curve_model"
    t = jnp.asarray(t, dtype=jnp.result_type(float))
    if t.ndim != 1:
        raise ValueError(f"{fn}: `t` must have shape (n,), got {t.shape}.")
    if y is not None and jnp.shape(y) != t.shape:
        raise ValueError(f"{fn}: `y` must have shape {t.shape} like t, got {jnp.shape(y)}.")
    p = {name: numpyro.sample(name, d) for name, d in _site_distributions()}
    f = numpyro.deterministic("f", _curve(p, t))
    if truncate:
        valid = _valid_on_epochs(jax.lax.stop_gradient(p), num_epochs, t.dtype)
        numpyro.factor("valid", jnp.where(valid, 0.0, -jnp.inf))
    numpyro.sample("y", dist.Normal(f, p["sigma"]).to_event(1), obs=y)
