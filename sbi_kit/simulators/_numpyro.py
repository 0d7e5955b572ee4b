"""``sk.from_numpyro``: a numpyro model, as it is, becomes a :class:`Simulator`.

Every latent sample site becomes part of one flat parameter vector θ, in the order in which
the model first samples the sites; vector and matrix sites are flattened in row-major (C)
order. ``sim.prior.unflatten(theta)`` maps a flat θ back to named sites and
``sim.prior.flatten(sites)`` does the reverse.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.extend.core as jex_core
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jaxtyping import Array
from numpyro import handlers
from numpyro.distributions import constraints
from numpyro.distributions.transforms import Transform, biject_to

from .._checks import check_key
from .._types import Key
from ._simulator import Simulator


class _Site(tuple):
    """(name, shape, support) of one latent site, hashable so priors can be jit-static."""

    @property
    def name(self) -> str:
        return self[0]

    @property
    def shape(self) -> tuple[int, ...]:
        return self[1]

    @property
    def support(self):
        return self[2]

    @property
    def size(self) -> int:
        return math.prod(self[1])


def _split(theta: Array, sites: tuple[_Site, ...]) -> list[Array]:
    out, start = [], 0
    for s in sites:
        out.append(theta[start : start + s.size].reshape(s.shape))
        start += s.size
    return out


class _SitesSupport(constraints.Constraint):
    """The product of the latent sites' supports, on the flat vector."""

    event_dim = 1

    def __init__(self, sites: tuple[_Site, ...]):
        self.sites = sites

    def __call__(self, theta):
        def one(th):
            pieces = zip(self.sites, _split(th, self.sites), strict=True)
            ok = [jnp.all(s.support(v)) for s, v in pieces]
            return jnp.all(jnp.stack(ok))

        return jnp.vectorize(one, signature="(d)->()")(theta)

    def feasible_like(self, prototype):
        parts = [jnp.ravel(s.support.feasible_like(jnp.zeros(s.shape))) for s in self.sites]
        return jnp.broadcast_to(jnp.concatenate(parts), prototype.shape)

    def tree_flatten(self):
        return (), ((), {"sites": self.sites})


class _SitesTransform(Transform):
    """Unconstrained flat vector → flat vector on the product of the sites' supports."""

    domain = constraints.real_vector

    def __init__(self, sites: tuple[_Site, ...]):
        self.sites = sites

    @property
    def codomain(self):
        return _SitesSupport(self.sites)

    def _each(self, v, inverse: bool):
        parts = []
        for s, piece in zip(self.sites, _split(v, self.sites), strict=True):
            t = biject_to(s.support)
            parts.append(jnp.ravel(t.inv(piece) if inverse else t(piece)))
        return jnp.concatenate(parts)

    def __call__(self, z):
        return jnp.vectorize(lambda v: self._each(v, False), signature="(d)->(d)")(z)

    def _inverse(self, theta):
        return jnp.vectorize(lambda v: self._each(v, True), signature="(d)->(d)")(theta)

    def log_abs_det_jacobian(self, z, theta, intermediates=None):
        def one(v):
            total = jnp.zeros(())
            for s, piece in zip(self.sites, _split(v, self.sites), strict=True):
                t = biject_to(s.support)
                total = total + jnp.sum(t.log_abs_det_jacobian(piece, t(piece)))
            return total

        return jnp.vectorize(one, signature="(d)->()")(z)

    def tree_flatten(self):
        return (), ((), {"sites": self.sites})

    def __eq__(self, other):
        return isinstance(other, _SitesTransform) and self.sites == other.sites

    def __hash__(self):
        return hash(self.sites)


class ModelPrior(dist.Distribution):
    """The prior of a numpyro model's latent sites, as a distribution over one flat vector.

    ``sample`` runs the model forward; ``log_prob`` is the sum of the latent sites' log
    densities (the model's own, including dependencies between sites).
    """

    pytree_data_fields = ("model_args", "model_kwargs")
    pytree_aux_fields = ("model", "observed", "sites", "_batch_shape", "_event_shape")

    def __init__(self, model: Callable, model_args, model_kwargs, observed: str, sites):
        self.model = model
        self.model_args = model_args
        self.model_kwargs = model_kwargs
        self.observed = observed
        self.sites = tuple(sites)
        size = sum(s.size for s in self.sites)
        super().__init__(batch_shape=(), event_shape=(size,))

    @property
    def support(self):
        return _SitesSupport(self.sites)

    def unconstraining_transform(self) -> Transform:
        """The bijection from ℝᵈ onto the product of the latent sites' supports."""
        return _SitesTransform(self.sites)

    @property
    def site_names(self) -> tuple[str, ...]:
        """Names of the latent sites, in θ order."""
        return tuple(s.name for s in self.sites)

    @property
    def site_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of each latent site."""
        return {s.name: s.shape for s in self.sites}

    def labels(self) -> tuple[str, ...]:
        """One label per component of θ: ``name`` or ``name[i]`` / ``name[i,j]``."""
        out = []
        for s in self.sites:
            if s.shape == ():
                out.append(s.name)
            else:
                out += [f"{s.name}[{','.join(map(str, i))}]" for i in np.ndindex(*s.shape)]
        return tuple(out)

    def unflatten(self, theta: Array) -> dict[str, Array]:
        """Maps θ of shape ``(..., dim_theta)`` to ``{site: array of shape (..., *site_shape)}``."""
        theta = jnp.asarray(theta)
        if theta.shape[-1:] != self.event_shape:
            raise ValueError(
                f"unflatten: theta must have shape (..., {self.event_shape[0]}), got {theta.shape}."
            )
        batch = theta.shape[:-1]
        out, start = {}, 0
        for s in self.sites:
            out[s.name] = theta[..., start : start + s.size].reshape(batch + s.shape)
            start += s.size
        return out

    def flatten(self, values: dict[str, Array]) -> Array:
        """Maps ``{site: array (..., *site_shape)}`` to θ of shape ``(..., dim_theta)``."""
        missing = set(self.site_names) - set(values)
        if missing:
            raise ValueError(
                f"flatten: missing sites {sorted(missing)}; expected {self.site_names}."
            )
        parts = []
        for s in self.sites:
            v = jnp.asarray(values[s.name])
            batch = v.shape[: v.ndim - len(s.shape)]
            parts.append(v.reshape(batch + (s.size,)))
        return jnp.concatenate(parts, axis=-1)

    def _run(self, key, substitutions=None):
        model = handlers.seed(self.model, key)
        if substitutions:
            model = handlers.condition(model, substitutions)
        return handlers.trace(model).get_trace(*self.model_args, **self.model_kwargs)

    def _sample_one(self, key):
        tr = self._run(key)
        return self.flatten({s.name: tr[s.name]["value"] for s in self.sites})

    def _log_prob_one(self, theta):
        tr = self._run(jax.random.key(0), self.unflatten(theta))
        return sum(jnp.sum(tr[s.name]["fn"].log_prob(tr[s.name]["value"])) for s in self.sites)

    def sample(self, key, sample_shape=()):
        n = math.prod(sample_shape)
        draws = _sample_prior(self, jax.random.split(key, max(n, 1)))
        return draws[:n].reshape(tuple(sample_shape) + self.event_shape)

    def log_prob(self, value):
        value = jnp.asarray(value)
        flat = value.reshape(-1, self.event_shape[0])
        return _log_prob_prior(self, flat).reshape(value.shape[:-1])


@jax.jit
def _sample_prior(prior: ModelPrior, keys):
    return jax.vmap(prior._sample_one)(keys)


@jax.jit
def _log_prob_prior(prior: ModelPrior, theta):
    return jax.vmap(prior._log_prob_one)(theta)


def _support_parents(
    prior: ModelPrior, key: Key, fixed: dict[str, Array], traced: tuple[str, ...]
) -> dict[str, bool]:
    """Which sites' supports change with the values of the ``traced`` latent sites.

    Traces the model (``jax.make_jaxpr``: no computation) as a function of those sites' values,
    the others fixed at ``fixed``, returning every site's support parameters (bounds).
    A support depends on them when its parameters are computed from them: a forward pass over
    the traced program marks every value that an input flows into (an equation with a marked
    input marks all its outputs, which may over-report through an opaque sub-program but
    never misses a dependency).
    """
    counts: dict[str, int] = {}

    def bounds(theta):
        values = prior.unflatten(theta)
        subs = {n: (values[n] if n in traced else fixed[n]) for n in prior.site_names}
        tr = prior._run(key, subs)
        out = []
        for s in prior.sites:
            leaves = jax.tree_util.tree_leaves(tr[s.name]["fn"].support)
            counts[s.name] = len(leaves)
            out += [jnp.asarray(v) for v in leaves]
        return out

    closed = jax.make_jaxpr(bounds)(jnp.zeros(prior.event_shape))
    marked = set(closed.jaxpr.invars)
    for eqn in closed.jaxpr.eqns:
        if any(isinstance(v, jex_core.Var) and v in marked for v in eqn.invars):
            marked.update(eqn.outvars)
    depends = [isinstance(v, jex_core.Var) and v in marked for v in closed.jaxpr.outvars]
    found, start = {}, 0
    for s in prior.sites:
        found[s.name] = any(depends[start : start + counts[s.name]])
        start += counts[s.name]
    return found


def _check_fixed_supports(prior: ModelPrior, key: Key, fixed: dict[str, Array], fn: str) -> None:
    """Raises ValueError naming a site whose support depends on other latent sites.

    Such a support (``Uniform(0, a)`` with a latent ``a``) cannot be frozen at one traced value:
    the prior would reject its own draws, and the unconstraining map would be wrong.
    """
    everything = _support_parents(prior, key, fixed, prior.site_names)
    dependent = [n for n, d in everything.items() if d]
    if not dependent:
        return
    name = dependent[0]
    parents = [
        p for p in prior.site_names if p != name and _support_parents(prior, key, fixed, (p,))[name]
    ]
    support = next(s.support for s in prior.sites if s.name == name)
    raise ValueError(
        f"{fn}: the support of site {name!r} ({support} in one trace) depends on the latent "
        f"site(s) {parents}; from_numpyro needs supports that do not depend on other "
        f"parameters. Reparametrise, e.g. sample u ~ Uniform(0, 1) and compute {name} = u * a "
        "with numpyro.deterministic."
    )


def from_numpyro(
    model: Callable,
    observed: str,
    *,
    model_args: tuple = (),
    model_kwargs: dict | None = None,
    key: Key | None = None,
) -> Simulator:
    """Turns a numpyro model into a :class:`Simulator`.

    The model must sample its data at the site named ``observed`` when called with
    ``model_args`` / ``model_kwargs`` (i.e. with its data argument left as ``None``). Every other
    (non-observed, non-deterministic) sample site is a latent parameter. θ is the concatenation
    of the flattened latent sites in the order the model samples them (``sim.prior.site_names``);
    a scalar observed site gives x of shape ``(1,)``.

    Supports are kept: ``sim.prior.support`` is the product of the sites' supports, and the
    estimators learn through ``sim.prior.unconstraining_transform()``. A site's support must not
    depend on other latent sites (``Uniform(0, a)`` with a latent ``a``), latent sites must be
    continuous, and sites whose unconstrained shape differs from their own (simplex, Cholesky
    factors) are not supported; each raises ``ValueError`` naming the site.

    Args:
        model: a numpyro model function.
        observed: the name of the sample site that holds the data.
        model_args: positional arguments to call the model with.
        model_kwargs: keyword arguments to call the model with.
        key: PRNG key for the one trace that discovers the sites (default ``key(0)``).

    Returns:
        a :class:`Simulator` whose ``prior`` is a :class:`ModelPrior` (with ``unflatten``,
        ``flatten``, ``site_names``) and whose ``log_likelihood(theta, x)`` is the model's.

    Raises:
        TypeError: if ``model`` is not callable, ``observed`` not a str, or ``key`` not a JAX
            PRNG key.
        ValueError: for a missing or already observed data site, no latent sites, a discrete
            latent site, a site whose support depends on other latent sites, or one whose
            unconstrained shape differs from its own.

    Examples:
        >>> import jax, numpyro, numpyro.distributions as dist, sbi_kit as sk
        >>> def model(x=None):
        ...     mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
        ...     sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
        ...     numpyro.sample("x", dist.Normal(mu, sigma).expand([5]).to_event(1), obs=x)
        >>> sim = sk.from_numpyro(model, observed="x")
        >>> sim.prior.site_names, sim.dim_theta
        (('mu', 'sigma'), 2)
    """
    fn = "sk.from_numpyro"
    if not callable(model):
        raise TypeError(
            f"{fn}: `model` must be a numpyro model (a callable that calls numpyro.sample), got "
            f"{type(model).__name__}."
        )
    if not isinstance(observed, str):
        raise TypeError(
            f"{fn}: `observed` must be the name (a str) of the site that holds the data, got "
            f"{type(observed).__name__}."
        )
    model_kwargs = dict(model_kwargs or {})
    key = jax.random.key(0) if key is None else check_key(key, fn)
    trace = handlers.trace(handlers.seed(model, key)).get_trace(*model_args, **model_kwargs)
    samples = [n for n, s in trace.items() if s["type"] == "sample"]
    if observed not in trace or trace[observed]["type"] != "sample":
        raise ValueError(
            f"{fn}: the model has no sample site {observed!r}; its sample sites are {samples}."
        )
    if trace[observed]["is_observed"]:
        raise ValueError(
            f"{fn}: the model was given data for site {observed!r}; call from_numpyro with the "
            "model's data argument left as None so that the model simulates it."
        )
    sites = []
    for name, site in trace.items():
        if site["type"] != "sample" or name == observed or site["is_observed"]:
            continue
        if site.get("infer", {}).get("is_auxiliary"):
            continue
        support = site["fn"].support
        shape = tuple(jnp.shape(site["value"]))
        if getattr(support, "is_discrete", False):
            raise ValueError(
                f"{fn}: site {name!r} is discrete ({type(site['fn']).__name__}, support "
                f"{support}); SBI estimators need continuous θ. Marginalise it out or make it "
                "an observed site."
            )
        if biject_to(support).inverse_shape(shape) != shape:
            raise ValueError(
                f"{fn}: site {name!r} has support {support} whose unconstrained shape differs "
                f"from its shape {shape}; from_numpyro does not support such sites yet."
            )
        sites.append(_Site((name, shape, support)))
    if not sites:
        raise ValueError(f"{fn}: the model has no latent sample sites besides the observed one.")
    prior = ModelPrior(model, tuple(model_args), model_kwargs, observed, sites)
    _check_fixed_supports(prior, key, {n: trace[n]["value"] for n in prior.site_names}, fn)
    x_shape = tuple(jnp.shape(trace[observed]["value"]))

    def to_x(value):
        return jnp.reshape(value, (1,)) if x_shape == () else value

    def simulate(key: Key, theta: Array) -> Array:
        return to_x(prior._run(key, prior.unflatten(theta))[observed]["value"])

    def log_likelihood(theta: Array, x: Array) -> Array:
        subs = prior.unflatten(theta) | {observed: jnp.reshape(x, x_shape)}
        site = prior._run(jax.random.key(0), subs)[observed]
        return jnp.sum(site["fn"].log_prob(site["value"]))

    return Simulator(prior, simulate, log_likelihood, theta_names=prior.labels())
