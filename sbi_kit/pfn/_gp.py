"""Gaussian-process dataset priors, and the exact GP posterior predictive they are checked against.

The GP prior is the first prior of prior-data fitted networks (Müller, Hollmann, Pineda,
Grabocka & Hutter, "Transformers Can Do Bayesian Inference", ICLR 2022): x ~ U[a, b]^d,
f ~ GP(0, k), y = f + N(0, σ_n²). Its posterior predictive is known in closed form
(Rasmussen & Williams, "Gaussian Processes for Machine Learning", 2006, eq. 2.25-2.26), so a
PFN trained on :class:`GPPrior` can be compared with :func:`gp_predictive`, the exact answer.

- kernels: :class:`RBF`, :class:`Matern52` (stationary, isotropic or ARD), both subclasses of
  :class:`AbstractKernel`; ``outputscale`` is the kernel's variance, ``k(x, x) = outputscale``.
- :class:`GPPrior`: fixed hyperparameters.
- :class:`GPHyperPrior`: Matérn-5/2 with Gamma hyper-priors on lengthscale, outputscale and noise
  (the PFN paper's "GP with hyper-priors"); returns the drawn hyperparameters.
- :func:`gp_predictive`: mean and variance of a noisy y at query points, in float64.
"""

from __future__ import annotations

import abc
import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import scipy.linalg
from jaxtyping import Array

from .._checks import check_key, check_positive_int, is_concrete
from .._types import Key
from ._prior import AbstractDatasetPrior, Dataset

_MAX_JITTER_TRIES = 6
"""Cholesky attempts in :func:`_sample_gaussian`: the jitter grows ×10 each time (1e-6 → 0.1)."""


def _check_positive(owner: str, field: str, value, *, allow_zero: bool = False) -> None:
    """A hyperparameter that must be finite and > 0 (≥ 0 with ``allow_zero``): checked where its
    value is known (a Python number or a concrete array), skipped for tracers."""
    if isinstance(value, bool):
        raise TypeError(f"{owner}: `{field}` must be a number or an array, got a bool.")
    if isinstance(value, jax.Array) and not is_concrete(value):
        return
    try:
        v = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(
            f"{owner}: `{field}` must be a number or an array, got {type(value).__name__}."
        ) from None
    bound = "≥ 0" if allow_zero else "> 0"
    ok = np.all(np.isfinite(v)) and (np.all(v >= 0) if allow_zero else np.all(v > 0))
    if not ok:
        raise ValueError(f"{owner}: `{field}` must be finite and {bound}, got {value!r}.")


class AbstractKernel(eqx.Module):
    """A positive-definite covariance function ``k(x1, x2)`` of ONE pair of inputs.

    Subclasses implement :meth:`__call__` on two points of shape ``(d,)`` in JAX; :meth:`gram`
    builds the matrix for two sets of points.

    Examples:
        A linear kernel (not stationary):

        >>> import jax.numpy as jnp
        >>> from sbi_kit.pfn import AbstractKernel
        >>> class Linear(AbstractKernel):
        ...     variance: float = 1.0
        ...     def __call__(self, x1, x2):
        ...         return self.variance * jnp.dot(x1, x2)
        >>> Linear(2.0).gram(jnp.ones((2, 3)), jnp.ones((1, 3))).tolist()
        [[6.0], [6.0]]
    """

    @abc.abstractmethod
    def __call__(self, x1: Array, x2: Array) -> Array:
        """``k(x1, x2)`` for inputs of shape ``(d,)``; returns a scalar."""

    def gram(self, x1: Array, x2: Array) -> Array:
        """The matrix ``K[i, j] = k(x1[i], x2[j])``.

        Args:
            x1: inputs of shape ``(n, d)``.
            x2: inputs of shape ``(m, d)``.

        Returns:
            shape ``(n, m)``.
        """
        return jax.vmap(lambda a: jax.vmap(lambda b: self(a, b))(x2))(x1)


class AbstractStationaryKernel(AbstractKernel):
    """``k(x1, x2) = outputscale · ρ(r²)`` with ``r² = ‖(x1 − x2) / lengthscale‖²``.

    Subclasses give :meth:`profile` ``ρ`` once, written against an array namespace (NumPy or
    ``jax.numpy``), so that the same formula serves the JAX samplers and the float64 NumPy
    reference :func:`gp_predictive`. ``lengthscale`` is a number or an array of shape ``(d,)``
    (ARD); ``outputscale`` is the variance ``k(x, x)``.

    Examples:
        A rational-quadratic kernel (α = 1) in three lines:

        >>> import numpy as np
        >>> from sbi_kit.pfn import AbstractStationaryKernel
        >>> class RationalQuadratic(AbstractStationaryKernel):
        ...     lengthscale: float = 1.0
        ...     outputscale: float = 1.0
        ...     def profile(self, r2, xp):
        ...         return 1.0 / (1.0 + 0.5 * r2)
        >>> k = RationalQuadratic(lengthscale=2.0)
        >>> k.gram_numpy(np.zeros((1, 1)), np.full((1, 1), 2.0))  # r² = 1
        array([[0.66666667]])
    """

    lengthscale: eqx.AbstractVar[float | Array]
    outputscale: eqx.AbstractVar[float | Array]

    @abc.abstractmethod
    def profile(self, r2, xp) -> Any:
        """``ρ(r²)`` elementwise, with ``ρ(0) = 1``; ``xp`` is ``numpy`` or ``jax.numpy``."""

    def __call__(self, x1: Array, x2: Array) -> Array:
        d = (jnp.asarray(x1) - jnp.asarray(x2)) / self.lengthscale
        return self.outputscale * self.profile(jnp.sum(d * d), jnp)

    def gram(self, x1: Array, x2: Array) -> Array:
        d = (jnp.asarray(x1)[:, None, :] - jnp.asarray(x2)[None, :, :]) / self.lengthscale
        return self.outputscale * self.profile(jnp.sum(d * d, axis=-1), jnp)

    def gram_numpy(self, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
        """:meth:`gram` in float64 NumPy (the reference path of :func:`gp_predictive`)."""
        lengthscale = np.asarray(self.lengthscale, dtype=np.float64)
        outputscale = np.asarray(self.outputscale, dtype=np.float64)
        d = (
            np.asarray(x1, np.float64)[:, None, :] - np.asarray(x2, np.float64)[None]
        ) / lengthscale
        return outputscale * self.profile(np.sum(d * d, axis=-1), np)


def _sqrt(r2, xp):
    """``√r²``; in JAX with a finite gradient at 0 (the double-where trick)."""
    if xp is np:
        return np.sqrt(r2)
    positive = r2 > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, r2, 1.0)), 0.0)


class RBF(AbstractStationaryKernel):
    """Squared-exponential kernel ``outputscale · exp(−‖x1 − x2‖² / (2 lengthscale²))``.

    Args:
        lengthscale: a number, or an array of shape ``(d,)`` (one per input dimension, ARD).
        outputscale: the variance ``k(x, x)``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from sbi_kit.pfn import RBF
        >>> k = RBF(lengthscale=0.5, outputscale=2.0)
        >>> round(float(k(jnp.zeros(1), jnp.full(1, 0.5))), 4)  # 2 exp(-1/2)
        1.2131
        >>> k.gram(jnp.zeros((3, 1)), jnp.ones((2, 1))).shape
        (3, 2)
    """

    lengthscale: float | Array = 1.0
    outputscale: float | Array = 1.0

    def __check_init__(self):
        _check_positive("RBF", "lengthscale", self.lengthscale)
        _check_positive("RBF", "outputscale", self.outputscale)

    def profile(self, r2, xp) -> Any:
        return xp.exp(-0.5 * r2)


class Matern52(AbstractStationaryKernel):
    """Matérn-5/2 kernel ``outputscale · (1 + √5 r + 5r²/3) exp(−√5 r)``, ``r = ‖x1 − x2‖ / ℓ``.

    Args:
        lengthscale: ``ℓ``, a number or an array of shape ``(d,)`` (ARD).
        outputscale: the variance ``k(x, x)``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from sbi_kit.pfn import Matern52
        >>> k = Matern52(lengthscale=1.0, outputscale=1.0)
        >>> float(k(jnp.zeros(2), jnp.zeros(2)))
        1.0
        >>> round(float(k(jnp.zeros(1), jnp.ones(1))), 3)  # (1 + √5 + 5/3) e^{-√5}
        0.524
    """

    lengthscale: float | Array = 1.0
    outputscale: float | Array = 1.0

    def __check_init__(self):
        _check_positive("Matern52", "lengthscale", self.lengthscale)
        _check_positive("Matern52", "outputscale", self.outputscale)

    def profile(self, r2, xp) -> Any:
        s5r = math.sqrt(5.0) * _sqrt(r2, xp)
        return (1.0 + s5r + (5.0 / 3.0) * r2) * xp.exp(-s5r)


def _sample_gaussian(key: Key, cov: Array, jitter: float) -> Array:
    """One draw of ``N(0, cov)`` by a Cholesky factor, float32-safe.

    ``jitter · mean(diag(cov))`` is added to the diagonal; where the factor is not finite (the
    matrix is numerically singular in the working precision) the jitter grows ×10, up to
    :data:`_MAX_JITTER_TRIES` attempts (``lax.while_loop``; under ``vmap`` the loop runs until
    every member succeeded). Should every attempt fail, the draw uses the diagonal only
    (independent components with the right variances), so the result is always finite.
    """
    n = cov.shape[0]
    scale = jnp.maximum(jnp.mean(jnp.diag(cov)), jnp.finfo(cov.dtype).tiny)
    eye = jnp.eye(n, dtype=cov.dtype)
    eps = jax.random.normal(key, (n,), cov.dtype)

    def attempt(j):
        factor = jnp.linalg.cholesky(cov + (j * scale) * eye)
        return factor @ eps

    def unfinished(state):
        i, y = state
        return (i < _MAX_JITTER_TRIES) & ~jnp.all(jnp.isfinite(y))

    def body(state):
        i, _ = state
        return i + 1, attempt(jitter * 10.0**i)

    # the first attempt happens in the body too: the Cholesky is traced (and compiled) once
    start = (jnp.asarray(0), jnp.full((n,), jnp.nan, cov.dtype))
    _, y = jax.lax.while_loop(unfinished, body, start)
    fallback = jnp.sqrt(jnp.maximum(jnp.diag(cov), 0.0)) * eps
    return jnp.where(jnp.all(jnp.isfinite(y)), y, fallback)


def _check_bounds(owner: str, x_low, x_high) -> None:
    for name, v in (("x_low", x_low), ("x_high", x_high)):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ValueError(f"{owner}: `{name}` must be a finite number, got {v!r}.")
    if not x_low < x_high:
        raise ValueError(f"{owner}: need x_low < x_high, got x_low={x_low!r}, x_high={x_high!r}.")


def _uniform_inputs(key: Key, num_points: int, input_dim: int, low: float, high: float) -> Array:
    return jax.random.uniform(key, (num_points, input_dim), minval=low, maxval=high)


class GPPrior(AbstractDatasetPrior):
    """Datasets from a Gaussian process with fixed hyperparameters.

    ``x ~ U[x_low, x_high]^d`` (i.i.d. rows), ``f ~ GP(0, kernel)``,
    ``y = f(x) + N(0, noise_std²)``. ``y`` is drawn directly from its marginal
    ``N(0, K + noise_std² I)`` by a Cholesky factor in the working precision (float32 by
    default), with ``jitter · mean(diag K)`` added to the diagonal (×10 retries where the factor
    is not finite; see :meth:`sample_y`). With the default jitter and noise_std ≥ 0.01 the added
    variance is < 1% of the noise variance.
    The points are exchangeable; ``parameters`` is ``None``.

    Args:
        kernel: an :class:`AbstractKernel` (:class:`RBF`, :class:`Matern52`).
        noise_std: the observation noise standard deviation ``σ_n`` (≥ 0).
        input_dim: ``d``.
        x_low: lower bound of each input coordinate.
        x_high: upper bound of each input coordinate.
        jitter: relative diagonal jitter of the first Cholesky attempt.

    Examples:
        >>> import jax
        >>> from sbi_kit.pfn import GPPrior, RBF
        >>> prior = GPPrior(RBF(lengthscale=0.2, outputscale=1.0), noise_std=0.1)
        >>> data = prior.sample(jax.random.key(0), 50)
        >>> data.x.shape, data.y.shape, data.parameters
        ((50, 1), (50,), None)
        >>> batch = jax.vmap(lambda k: prior.sample(k, 20))(jax.random.split(jax.random.key(1), 8))
        >>> batch.y.shape
        (8, 20)
    """

    kernel: AbstractKernel
    noise_std: float | Array
    input_dim: int = eqx.field(static=True)
    x_low: float
    x_high: float
    jitter: float

    def __init__(
        self,
        kernel: AbstractKernel,
        noise_std: float | Array,
        input_dim: int = 1,
        x_low: float = 0.0,
        x_high: float = 1.0,
        jitter: float = 1e-6,
    ):
        # an explicit __init__: the base class's `input_dim` would otherwise come first
        self.kernel = kernel
        self.noise_std = noise_std
        self.input_dim = input_dim
        self.x_low = x_low
        self.x_high = x_high
        self.jitter = jitter

    def __check_init__(self):
        if not isinstance(self.kernel, AbstractKernel):
            raise TypeError(
                "GPPrior: `kernel` must be a kernel object such as RBF(0.2, 1.0) or "
                f"Matern52(...), got {type(self.kernel).__name__}."
            )
        _check_positive("GPPrior", "noise_std", self.noise_std, allow_zero=True)
        check_positive_int(self.input_dim, "input_dim", "GPPrior")
        _check_bounds("GPPrior", self.x_low, self.x_high)
        _check_positive("GPPrior", "jitter", self.jitter)

    def sample_y(self, key: Key, x: Array) -> Array:
        """Noisy targets at given inputs: one draw of ``N(0, k(x, x) + noise_std² I)``.

        Args:
            key: a JAX PRNG key.
            x: inputs of shape ``(n, input_dim)``.

        Returns:
            y of shape ``(n,)``.

        Examples:
            >>> import jax, jax.numpy as jnp
            >>> from sbi_kit.pfn import GPPrior, RBF
            >>> prior = GPPrior(RBF(0.2, 1.0), noise_std=0.1)
            >>> prior.sample_y(jax.random.key(0), jnp.linspace(0, 1, 4)[:, None]).shape
            (4,)
        """
        key = check_key(key, "GPPrior.sample_y")
        x = jnp.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise ValueError(
                f"GPPrior.sample_y: `x` must have shape (n, {self.input_dim}), got {x.shape}."
            )
        cov = self.kernel.gram(x, x)
        cov = cov + jnp.asarray(self.noise_std, cov.dtype) ** 2 * jnp.eye(
            x.shape[0], dtype=cov.dtype
        )
        return _sample_gaussian(key, cov, self.jitter)

    @eqx.filter_jit
    def sample(self, key: Key, num_points: int) -> Dataset:
        """One dataset of ``num_points`` points (see the class docstring).

        Returns:
            a :class:`Dataset` with ``x`` ``(num_points, input_dim)``, ``y`` ``(num_points,)``.
        """
        key = check_key(key, "GPPrior.sample")
        num_points = check_positive_int(num_points, "num_points", "GPPrior.sample")
        kx, ky = jax.random.split(key)
        x = _uniform_inputs(kx, num_points, self.input_dim, self.x_low, self.x_high)
        return Dataset(x=x, y=self.sample_y(ky, x))


def _default_lengthscale_prior() -> dist.Distribution:
    return dist.Gamma(3.0, 6.0)


def _default_outputscale_prior() -> dist.Distribution:
    return dist.Gamma(2.0, 2.0)


def _default_noise_prior() -> dist.Distribution:
    return dist.Gamma(2.0, 20.0)


class GPHyperPrior(AbstractDatasetPrior):
    """Datasets from a Matérn-5/2 GP whose hyperparameters are drawn per dataset.

    Per dataset: ``lengthscale ~ lengthscale_prior``, ``outputscale ~ outputscale_prior`` (the
    kernel variance), ``noise ~ noise_prior`` (the noise standard deviation σ_n); then as
    :class:`GPPrior` with ``Matern52(lengthscale, outputscale)`` (one lengthscale shared by all
    input dimensions). ``parameters`` is ``[lengthscale, outputscale, noise]``.

    The PFN paper's "GP with hyper-priors" puts Gamma priors on the three hyperparameters; the
    defaults here (Gamma(concentration, rate)) are chosen for x in [0, 1]^d and y of order one:
    lengthscale Gamma(3, 6) (mean 0.5, sd 0.29; the lengthscale prior of the PFN code's GP
    mixture, which is BoTorch's), outputscale Gamma(2, 2) (mean 1, sd 0.71), noise std
    Gamma(2, 20) (mean 0.1, sd 0.07). The PFN code's own defaults for the other two
    (outputscale Gamma(0.5, 0.15), noise *variance* Gamma(1.1, 0.05), mean 22) are for BoTorch's
    standardised targets and would make most datasets mostly noise, so they are not used.
    Any numpyro distributions with positive support can be passed instead.

    Args:
        input_dim: ``d``.
        lengthscale_prior: a scalar numpyro distribution on (0, ∞).
        outputscale_prior: a scalar numpyro distribution on (0, ∞).
        noise_prior: a scalar numpyro distribution on [0, ∞) for σ_n.
        x_low: lower bound of each input coordinate.
        x_high: upper bound of each input coordinate.
        jitter: relative diagonal jitter of the first Cholesky attempt (as :class:`GPPrior`).

    Examples:
        >>> import jax
        >>> from sbi_kit.pfn import GPHyperPrior
        >>> prior = GPHyperPrior(input_dim=2)
        >>> data = prior.sample(jax.random.key(0), 30)
        >>> data.x.shape, data.y.shape, data.parameters.shape
        ((30, 2), (30,), (3,))
        >>> prior.parameter_names
        ('lengthscale', 'outputscale', 'noise')
    """

    input_dim: int = eqx.field(static=True, default=1)
    lengthscale_prior: dist.Distribution = eqx.field(default_factory=_default_lengthscale_prior)
    outputscale_prior: dist.Distribution = eqx.field(default_factory=_default_outputscale_prior)
    noise_prior: dist.Distribution = eqx.field(default_factory=_default_noise_prior)
    x_low: float = 0.0
    x_high: float = 1.0
    jitter: float = 1e-6

    def __check_init__(self):
        check_positive_int(self.input_dim, "input_dim", "GPHyperPrior")
        for name in ("lengthscale_prior", "outputscale_prior", "noise_prior"):
            d = getattr(self, name)
            if not isinstance(d, dist.Distribution):
                raise TypeError(
                    f"GPHyperPrior: `{name}` must be a numpyro distribution, got "
                    f"{type(d).__name__}."
                )
            if d.batch_shape != () or d.event_shape != ():
                raise ValueError(
                    f"GPHyperPrior: `{name}` must be a scalar distribution (batch and event shape "
                    f"()), got batch {d.batch_shape}, event {d.event_shape}."
                )
        _check_bounds("GPHyperPrior", self.x_low, self.x_high)
        _check_positive("GPHyperPrior", "jitter", self.jitter)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return ("lengthscale", "outputscale", "noise")

    def _sample_hyperparameters(self, key: Key) -> Array:
        """``[lengthscale, outputscale, noise]``; three Gamma priors (the default) are drawn
        in one ``jax.random.gamma`` call (each random call costs compile time under vmap)."""
        priors = (self.lengthscale_prior, self.outputscale_prior, self.noise_prior)
        if all(type(d) is dist.Gamma for d in priors):
            concentration = jnp.stack([jnp.asarray(d.concentration) for d in priors])
            rate = jnp.stack([jnp.asarray(d.rate) for d in priors])
            return jax.random.gamma(key, concentration) / rate
        keys = jax.random.split(key, 3)
        return jnp.stack([d.sample(k) for d, k in zip(priors, keys, strict=True)])

    @eqx.filter_jit
    def sample(self, key: Key, num_points: int) -> Dataset:
        """One dataset of ``num_points`` points and its hyperparameters.

        Returns:
            a :class:`Dataset` with ``x`` ``(num_points, input_dim)``, ``y`` ``(num_points,)`` and
            ``parameters`` ``(3,)`` = ``[lengthscale, outputscale, noise]``.
        """
        key = check_key(key, "GPHyperPrior.sample")
        num_points = check_positive_int(num_points, "num_points", "GPHyperPrior.sample")
        k_h, k_x, k_y = jax.random.split(key, 3)
        tiny = jnp.finfo(jnp.result_type(float)).tiny
        hyper = self._sample_hyperparameters(k_h)
        # a Gamma draw can underflow to 0 in float32; keep the kernel well defined
        lengthscale = jnp.maximum(hyper[0], tiny)
        outputscale = jnp.maximum(hyper[1], tiny)
        noise = jnp.maximum(hyper[2], 0.0)
        x = _uniform_inputs(k_x, num_points, self.input_dim, self.x_low, self.x_high)
        kernel = Matern52(lengthscale, outputscale)
        cov = kernel.gram(x, x) + noise**2 * jnp.eye(num_points, dtype=x.dtype)
        y = _sample_gaussian(k_y, cov, self.jitter)
        return Dataset(x=x, y=y, parameters=jnp.stack([lengthscale, outputscale, noise]))


def _as_2d(value, name: str, fn: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{fn}: `{name}` must have shape (n, input_dim), got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{fn}: `{name}` contains {int((~np.isfinite(arr)).sum())} NaN or inf.")
    return arr


def _gram_float64(kernel: AbstractKernel, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """``kernel.gram(x1, x2)`` in float64, as a writable NumPy array."""
    if isinstance(kernel, AbstractStationaryKernel):
        return np.array(kernel.gram_numpy(x1, x2), dtype=np.float64)
    with jax.enable_x64(True):
        k = kernel.gram(jnp.asarray(x1, jnp.float64), jnp.asarray(x2, jnp.float64))
        return np.array(k, dtype=np.float64)


def _diag_float64(kernel: AbstractKernel, x: np.ndarray) -> np.ndarray:
    """``k(x_i, x_i)`` for each row, in float64."""
    if isinstance(kernel, AbstractStationaryKernel):
        outputscale = np.asarray(kernel.outputscale, dtype=np.float64)
        return np.broadcast_to(outputscale * kernel.profile(np.zeros(len(x)), np), len(x)).copy()
    with jax.enable_x64(True):
        k = jax.vmap(lambda a: kernel(a, a))(jnp.asarray(x, jnp.float64))
        return np.array(k, dtype=np.float64)


def gp_predictive(
    kernel: AbstractKernel,
    noise_std,
    x_context,
    y_context,
    x_query,
) -> tuple[np.ndarray, np.ndarray]:
    """The exact GP posterior predictive of a noisy ``y`` at each query point, in float64.

    With ``K = k(X, X) + σ_n² I`` and ``k_* = k(X, x_*)``: mean ``k_*ᵀ K⁻¹ y`` and variance
    ``k(x_*, x_*) − k_*ᵀ K⁻¹ k_* + σ_n²`` (Rasmussen & Williams 2006, eq. 2.25-2.26, plus the
    noise). An empty context (``n = 0``) gives the prior predictive: mean 0, variance
    ``k(x_*, x_*) + σ_n²``.

    Precision: everything is float64 whatever JAX's setting. A stationary kernel
    (:class:`RBF`, :class:`Matern52`, any :class:`AbstractStationaryKernel`) is evaluated in
    NumPy (:meth:`AbstractStationaryKernel.gram_numpy`: no compilation, so new context sizes
    cost nothing extra); any other kernel by its own JAX code inside ``jax.enable_x64(True)``.
    The linear algebra is a NumPy/SciPy Cholesky solve. This is a host-side reference for
    benchmarks and tests: call it with concrete arrays, not inside ``jit``. No jitter is added;
    a singular ``K`` (``noise_std = 0`` with repeated inputs) raises ``ValueError``.

    Args:
        kernel: an :class:`AbstractKernel`.
        noise_std: ``σ_n`` (≥ 0).
        x_context: shape ``(n, d)`` (``n`` may be 0).
        y_context: shape ``(n,)``.
        x_query: shape ``(m, d)``.

    Returns:
        ``(mean, variance)``, NumPy float64 arrays of shape ``(m,)``.

    Raises:
        TypeError: if ``kernel`` is not an :class:`AbstractKernel`.
        ValueError: for mismatched shapes, non-finite inputs, a negative ``noise_std`` or a
            singular ``K``.

    Examples:
        >>> import numpy as np
        >>> from sbi_kit.pfn import RBF, gp_predictive
        >>> x = np.linspace(0, 1, 5)[:, None]
        >>> mean, var = gp_predictive(RBF(0.2, 1.0), 0.1, x, np.sin(6 * x[:, 0]), x[:2])
        >>> mean.shape, var.dtype
        ((2,), dtype('float64'))
        >>> gp_predictive(RBF(0.2, 1.0), 0.1, np.zeros((0, 1)), np.zeros(0), x[:1])
        (array([0.]), array([1.01]))
    """
    fn = "gp_predictive"
    if not isinstance(kernel, AbstractKernel):
        raise TypeError(f"{fn}: `kernel` must be an AbstractKernel, got {type(kernel).__name__}.")
    _check_positive(fn, "noise_std", noise_std, allow_zero=True)
    xc = _as_2d(x_context, "x_context", fn)
    xq = _as_2d(x_query, "x_query", fn)
    yc = np.asarray(y_context, dtype=np.float64)
    if yc.shape != (xc.shape[0],):
        raise ValueError(
            f"{fn}: `y_context` must have shape ({xc.shape[0]},) to match x_context, got "
            f"{yc.shape}."
        )
    if not np.all(np.isfinite(yc)):
        raise ValueError(f"{fn}: `y_context` contains {int((~np.isfinite(yc)).sum())} NaN or inf.")
    if xc.shape[0] and xc.shape[1] != xq.shape[1]:
        raise ValueError(
            f"{fn}: `x_query` must have {xc.shape[1]} columns like x_context, got shape {xq.shape}."
        )
    noise_var = float(np.asarray(noise_std, dtype=np.float64)) ** 2
    prior_var = _diag_float64(kernel, xq)
    if xc.shape[0] == 0:
        return np.zeros(xq.shape[0]), prior_var + noise_var
    k_cc = _gram_float64(kernel, xc, xc)
    k_cq = _gram_float64(kernel, xc, xq)
    k_cc[np.diag_indices_from(k_cc)] += noise_var
    try:
        factor = scipy.linalg.cho_factor(k_cc, lower=True)
    except np.linalg.LinAlgError:
        raise ValueError(
            f"{fn}: k(x_context, x_context) + noise_std² I is not positive definite in float64 "
            "(noise_std = 0 with repeated or nearly repeated inputs?); use noise_std > 0."
        ) from None
    alpha = scipy.linalg.cho_solve(factor, yc)
    mean = k_cq.T @ alpha
    v = scipy.linalg.solve_triangular(factor[0], k_cq, lower=True)
    variance = prior_var - np.sum(v * v, axis=0) + noise_var
    return mean, np.maximum(variance, 0.0)
