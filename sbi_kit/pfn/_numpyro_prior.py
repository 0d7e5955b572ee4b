"""Any numpyro regression model ``model(X, y=None)`` as a prior over datasets for a PFN.

Prior-data fitted networks (Müller, Hollmann, Pineda, Grabocka & Hutter, "Transformers Can Do
Bayesian Inference", ICLR 2022) learn the posterior predictive of whatever prior they are trained
on; all they need is a sampler of datasets. A numpyro model that, given inputs ``X``, samples
its latent variables and then the targets is such a sampler: :class:`NumpyroPrior` draws ``X``,
runs the model forward (a seeded trace, as ``numpyro.infer.Predictive`` does) and returns the
targets and the latent values.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from numpyro import handlers

from .._checks import check_key, check_positive_int
from .._types import Key
from ._gp import _check_bounds, _uniform_inputs
from ._prior import AbstractDatasetPrior, Dataset

_PROBE_SIZES = (2, 3)
"""Dataset sizes of the two abstract traces that find the sites and which depend on the size."""


def _labels(name: str, shape: tuple[int, ...]) -> list[str]:
    if shape == ():
        return [name]
    return [f"{name}[{','.join(map(str, i))}]" for i in np.ndindex(*shape)]


def _check_x_sampler(sampler: Callable, input_dim: int) -> None:
    """``sampler(key, n)`` must return X of shape ``(n, input_dim)`` (checked abstractly)."""
    n = _PROBE_SIZES[0]
    try:
        out = jax.eval_shape(lambda k: sampler(k, n), jax.random.key(0))
    except Exception as e:
        raise ValueError(
            f"NumpyroPrior: calling `x_sampler(key, {n})` failed inside jax.eval_shape: "
            f"{type(e).__name__}: {e}"
        ) from e
    shape = getattr(out, "shape", None)
    if shape != (n, input_dim):
        raise ValueError(
            f"NumpyroPrior: `x_sampler(key, {n})` must return X of shape ({n}, {input_dim}), "
            f"got {shape if shape is not None else type(out).__name__}."
        )


class NumpyroPrior(AbstractDatasetPrior):
    """A numpyro model ``model(X, y=None)`` as a prior over datasets.

    ``sample(key, n)`` draws inputs ``X`` of shape ``(n, input_dim)`` (i.i.d. uniform on
    ``[x_low, x_high]^d``, or ``x_sampler(key, n)``), calls ``model(X)`` under a seeded trace and
    returns ``y`` = the value of the sample site named ``observed`` (it must hold one value per
    point, any shape of ``n`` elements; returned as a float array ``(n,)``), and
    ``parameters`` = the values of the model's GLOBAL latent sample sites, each flattened in
    row-major (C) order and concatenated in the order in which the model samples them
    (:attr:`parameter_names`: ``"w[0]", "w[1]", "sigma"``, ``"A[0,1]"`` for a matrix site).

    The sites are discovered once, at construction, by tracing the model abstractly
    (``jax.eval_shape``, no computation) with dummy inputs of 2 and of 3 points. A latent site
    whose shape changes with the number of points (a per-point latent, inside a plate over the
    data) is LOCAL: the model still samples it, but it is not part of ``parameters``
    (its names are in :attr:`local_site_names`). Observed sites other than ``observed``
    (conditioned inside the model), deterministic sites and factors are ignored. A model with no
    global latent site gives ``parameters = None``.

    The model must be jit-able (no Python control flow on sampled values) and must sample the
    site ``observed`` itself when ``y`` is left ``None``. Finiteness of ``y`` is up to the
    model.

    Args:
        model: a numpyro model called as ``model(X)``.
        input_dim: ``d``, the number of columns of ``X``.
        x_sampler: optional ``x_sampler(key, num_points) -> X`` of shape
            ``(num_points, input_dim)``; default uniform on ``[x_low, x_high]^d``.
        x_low: lower bound of the default uniform inputs.
        x_high: upper bound of the default uniform inputs.
        observed: the name of the site that samples the targets.

    Raises:
        TypeError: if ``model`` or ``x_sampler`` is not callable, or ``observed`` not a str.
        ValueError: if tracing the model fails, it has no site ``observed`` (or conditions it),
            that site does not hold one value per point, or ``x_sampler`` returns the wrong shape.

    Examples:
        Bayesian linear regression ``w ~ N(0, I)``, ``y ~ N(X w, 0.1²)``:

        >>> import jax, numpyro, numpyro.distributions as dist
        >>> from sbi_kit.pfn import NumpyroPrior
        >>> def model(X, y=None):
        ...     w = numpyro.sample("w", dist.Normal(0.0, 1.0).expand([X.shape[1]]).to_event(1))
        ...     numpyro.sample("y", dist.Normal(X @ w, 0.1).to_event(1), obs=y)
        >>> prior = NumpyroPrior(model, input_dim=2)
        >>> prior.parameter_names
        ('w[0]', 'w[1]')
        >>> data = prior.sample(jax.random.key(0), 16)
        >>> data.x.shape, data.y.shape, data.parameters.shape
        ((16, 2), (16,), (2,))
    """

    model: Callable = eqx.field(static=True)
    input_dim: int = eqx.field(static=True)
    x_sampler: Callable | None = eqx.field(static=True)
    x_low: float
    x_high: float
    observed: str = eqx.field(static=True)
    global_sites: tuple[tuple[str, tuple[int, ...]], ...] = eqx.field(static=True)
    """``(name, shape)`` of each global latent site, in ``parameters`` order."""
    local_site_names: tuple[str, ...] = eqx.field(static=True)
    """Latent sites whose shape depends on the number of points (not in ``parameters``)."""

    def __init__(
        self,
        model: Callable,
        input_dim: int,
        x_sampler: Callable | None = None,
        x_low: float = 0.0,
        x_high: float = 1.0,
        observed: str = "y",
    ):
        owner = "NumpyroPrior"
        if not callable(model):
            raise TypeError(
                f"{owner}: `model` must be a numpyro model (a callable model(X, y=None) that calls "
                f"numpyro.sample), got {type(model).__name__}."
            )
        input_dim = check_positive_int(input_dim, "input_dim", owner)
        if x_sampler is not None and not callable(x_sampler):
            raise TypeError(
                f"{owner}: `x_sampler` must be None or a callable (key, num_points) -> X, got "
                f"{type(x_sampler).__name__}."
            )
        _check_bounds(owner, x_low, x_high)
        if not isinstance(observed, str):
            raise TypeError(
                f"{owner}: `observed` must be the name (a str) of the site that samples y, got "
                f"{type(observed).__name__}."
            )
        self.model = model
        self.input_dim = input_dim
        self.x_sampler = x_sampler
        self.x_low = x_low
        self.x_high = x_high
        self.observed = observed
        if x_sampler is not None:
            _check_x_sampler(x_sampler, input_dim)
        probes = [self._probe(n) for n in _PROBE_SIZES]
        (names_a, shapes_a), (names_b, shapes_b) = probes
        if names_a != names_b:
            raise ValueError(
                f"{owner}: `model` samples different latent sites for 2 points ({names_a}) and "
                f"for 3 points ({names_b}); the sites must not depend on the number of points."
            )
        self.global_sites = tuple((n, shapes_a[n]) for n in names_a if shapes_a[n] == shapes_b[n])
        self.local_site_names = tuple(n for n in names_a if shapes_a[n] != shapes_b[n])

    def _probe(self, n: int) -> tuple[tuple[str, ...], dict[str, tuple[int, ...]]]:
        """Names (in sampling order) and shapes of the latent sites, for ``n`` dummy points."""
        found: dict[str, object] = {}

        def run(key):
            tr = handlers.trace(handlers.seed(self.model, key)).get_trace(
                jnp.zeros((n, self.input_dim))
            )
            found["trace"] = {
                name: (site["type"], site.get("is_observed", False), site.get("infer", {}))
                for name, site in tr.items()
            }
            return {name: site["value"] for name, site in tr.items() if site["type"] == "sample"}

        try:
            values = jax.eval_shape(run, jax.random.key(0))
        except Exception as e:
            raise ValueError(
                f"NumpyroPrior: tracing `model` with X of shape ({n}, {self.input_dim}) failed "
                f"({type(e).__name__}: {e}); the model must be callable as model(X) and jit-able."
            ) from e
        info: dict = found["trace"]  # type: ignore[assignment]
        samples = [name for name, (kind, _, _) in info.items() if kind == "sample"]
        if self.observed not in samples:
            raise ValueError(
                f"NumpyroPrior: `observed` = {self.observed!r} is not a sample site of the model; "
                f"its sample sites are {samples}."
            )
        if info[self.observed][1]:
            raise ValueError(
                f"NumpyroPrior: the model conditions site `observed` = {self.observed!r} itself; "
                "it must sample it when called as model(X) (y left as None)."
            )
        size = int(np.prod(values[self.observed].shape))
        if size != n:
            raise ValueError(
                f"NumpyroPrior: site `observed` = {self.observed!r} must hold one value per point "
                f"(shape ({n},) for {n} points), got shape {values[self.observed].shape}."
            )
        latent = tuple(
            name
            for name, (kind, is_obs, infer) in info.items()
            if kind == "sample"
            and name != self.observed
            and not is_obs
            and not infer.get("is_auxiliary", False)
        )
        return latent, {name: tuple(values[name].shape) for name in latent}

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(label for name, shape in self.global_sites for label in _labels(name, shape))

    @eqx.filter_jit
    def sample(self, key: Key, num_points: int) -> Dataset:
        """One dataset: ``X``, the model's ``y`` at ``X`` and its global latent values.

        Args:
            key: a JAX PRNG key.
            num_points: a static int.

        Returns:
            a :class:`Dataset` with ``x`` ``(num_points, input_dim)``, ``y`` ``(num_points,)``
            and ``parameters`` ``(len(parameter_names),)`` (``None`` without global latents).
        """
        key = check_key(key, "NumpyroPrior.sample")
        num_points = check_positive_int(num_points, "num_points", "NumpyroPrior.sample")
        k_x, k_model = jax.random.split(key)
        if self.x_sampler is None:
            x = _uniform_inputs(k_x, num_points, self.input_dim, self.x_low, self.x_high)
        else:
            x = jnp.asarray(self.x_sampler(k_x, num_points))
        tr = handlers.trace(handlers.seed(self.model, k_model)).get_trace(x)
        dtype = jnp.result_type(float)
        y = jnp.reshape(tr[self.observed]["value"], (num_points,)).astype(dtype)
        if not self.global_sites:
            return Dataset(x=x, y=y)
        parts = [jnp.ravel(tr[name]["value"]).astype(dtype) for name, _ in self.global_sites]
        return Dataset(x=x, y=y, parameters=jnp.concatenate(parts))
