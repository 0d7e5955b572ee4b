"""Priors as JSON data: numpyro distributions from an allow-list, with their parameter arrays.

A saved posterior stores its prior this way instead of pickling it, so that loading a file never
runs code from it. A description names a class of the allow-lists below and holds the values
the class is constructed with::

    {"distribution": "Independent",
     "params": {"base_dist": {"distribution": "Uniform",
                              "params": {"low": {"array": [-1.0, -1.0], "dtype": "float32",
                                                 "shape": [2], "kind": "jax"},
                                         "high": ...}},
                "reinterpreted_batch_ndims": 1}}

Values are JSON numbers, booleans and ``null``; arrays (``{"array": [...], "dtype", "shape",
"kind"}``, ``kind`` being ``"jax"``, ``"numpy"`` or ``"numpy_scalar"``, and ``"weak": true``
for a weakly typed JAX array); ``{"tuple": [...]}``; JSON lists; non-finite Python floats
(``{"float": "inf"}``); and nested ``{"distribution": ...}``, ``{"transform": ...}`` and
``{"constraint": ...}`` descriptions. Floating-point values are written as Python floats, which
hold float16/32/64 values exactly, so they come back bit for bit.

:func:`describe` only returns a description that rebuilds the prior exactly: the rebuilt
distribution is compared with the original leaf by leaf (type, dtype, shape and bits) and
structure by structure; anything else (a subclass, a numpyro model from ``sk.from_numpyro``,
a class off the list) raises :class:`NotData` with the reason.

:func:`summary` records, for any prior, what ``sk.load(path, prior=...)`` checks a given prior
against: its class, event and batch shapes, support (with bounds), and for a numpyro model the
latent sites' distributions in one trace.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from numpyro.distributions import constraints
from numpyro.distributions import transforms as T

MAX_DEPTH = 64
"""Deepest nesting of a description that :func:`build` accepts."""

_DTYPES = (
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
)

# name -> (class, ((attribute, constructor keyword), ...), takes validate_args)
_DISTRIBUTIONS: dict[str, tuple[type, tuple[tuple[str, str], ...], bool]] = {}
_TRANSFORMS: dict[str, tuple[type, tuple[tuple[str, str], ...]]] = {}
_CONSTRAINTS: dict[str, tuple[type, tuple[str, ...]]] = {}
_SINGLETONS: dict[str, constraints.Constraint] = {}

# Attributes that some constructors keep as given while the parameters are promoted to arrays:
# restored as they were. A MultivariateNormal built from its precision matrix keeps that
# matrix; Uniform, LogUniform and the truncated distributions keep their support built from
# the bounds as given (a Python float stays one).
_EXTRA_ATTRIBUTES = {"MultivariateNormal": ("covariance_matrix", "precision_matrix")}
_ALWAYS_EXTRA = ("_support",)


def _allow(table, name, cls, *params, validate=True):
    pairs = tuple(p if isinstance(p, tuple) else (p, p) for p in params)
    table[name] = (cls, pairs, validate) if table is _DISTRIBUTIONS else (cls, pairs)


for _name in ("Normal", "Cauchy", "Laplace", "Logistic", "Gumbel", "LogNormal"):
    _allow(_DISTRIBUTIONS, _name, getattr(dist, _name), "loc", "scale")
for _name in ("Uniform", "LogUniform"):
    _allow(_DISTRIBUTIONS, _name, getattr(dist, _name), "low", "high")
for _name in ("HalfNormal", "HalfCauchy"):
    _allow(_DISTRIBUTIONS, _name, getattr(dist, _name), "scale")
for _name in ("Gamma", "InverseGamma"):
    _allow(_DISTRIBUTIONS, _name, getattr(dist, _name), "concentration", "rate")
_allow(_DISTRIBUTIONS, "StudentT", dist.StudentT, "df", "loc", "scale")
_allow(_DISTRIBUTIONS, "Exponential", dist.Exponential, "rate")
_allow(_DISTRIBUTIONS, "Chi2", dist.Chi2, "df")
_allow(_DISTRIBUTIONS, "Beta", dist.Beta, "concentration1", "concentration0")
_allow(_DISTRIBUTIONS, "Weibull", dist.Weibull, "scale", "concentration")
_allow(_DISTRIBUTIONS, "Pareto", dist.Pareto, "scale", "alpha")
_allow(_DISTRIBUTIONS, "Dirichlet", dist.Dirichlet, "concentration")
_allow(_DISTRIBUTIONS, "MultivariateNormal", dist.MultivariateNormal, "loc", "scale_tril")
_allow(_DISTRIBUTIONS, "MultivariateStudentT", dist.MultivariateStudentT, "df", "loc", "scale_tril")
_allow(
    _DISTRIBUTIONS,
    "LowRankMultivariateNormal",
    dist.LowRankMultivariateNormal,
    "loc",
    "cov_factor",
    "cov_diag",
)
_allow(_DISTRIBUTIONS, "Independent", dist.Independent, "base_dist", "reinterpreted_batch_ndims")
_allow(
    _DISTRIBUTIONS,
    "ExpandedDistribution",
    dist.ExpandedDistribution,
    "base_dist",
    "batch_shape",
    validate=False,
)
_allow(
    _DISTRIBUTIONS,
    "TransformedDistribution",
    dist.TransformedDistribution,
    ("base_dist", "base_distribution"),
    "transforms",
)
_allow(
    _DISTRIBUTIONS,
    "TwoSidedTruncatedDistribution",
    dist.TwoSidedTruncatedDistribution,
    "base_dist",
    "low",
    "high",
)
_allow(
    _DISTRIBUTIONS, "LeftTruncatedDistribution", dist.LeftTruncatedDistribution, "base_dist", "low"
)
_allow(
    _DISTRIBUTIONS,
    "RightTruncatedDistribution",
    dist.RightTruncatedDistribution,
    "base_dist",
    "high",
)

_allow(_TRANSFORMS, "AffineTransform", T.AffineTransform, "loc", "scale", ("_domain", "domain"))
_allow(_TRANSFORMS, "ExpTransform", T.ExpTransform, ("_domain", "domain"))
for _name in (
    "IdentityTransform",
    "SigmoidTransform",
    "SoftplusTransform",
    "OrderedTransform",
    "StickBreakingTransform",
    "LowerCholeskyTransform",
    "CorrCholeskyTransform",
):
    _allow(_TRANSFORMS, _name, getattr(T, _name))
_allow(_TRANSFORMS, "PowerTransform", T.PowerTransform, "exponent")
_allow(_TRANSFORMS, "LowerCholeskyAffine", T.LowerCholeskyAffine, "loc", "scale_tril")
_allow(_TRANSFORMS, "ComposeTransform", T.ComposeTransform, "parts")
_allow(
    _TRANSFORMS,
    "IndependentTransform",
    T.IndependentTransform,
    "base_transform",
    "reinterpreted_batch_ndims",
)
_allow(
    _TRANSFORMS,
    "ReshapeTransform",
    T.ReshapeTransform,
    ("_forward_shape", "forward_shape"),
    ("_inverse_shape", "inverse_shape"),
)
_allow(_TRANSFORMS, "InverseTransform", type(T.ExpTransform().inv), ("_inv", "transform"))

for _name in (
    "boolean",
    "circular",
    "corr_cholesky",
    "corr_matrix",
    "l1_ball",
    "lower_cholesky",
    "nonnegative",
    "nonnegative_integer",
    "ordered_vector",
    "positive",
    "positive_definite",
    "positive_integer",
    "positive_ordered_vector",
    "positive_semidefinite",
    "real",
    "real_matrix",
    "real_vector",
    "scaled_unit_lower_cholesky",
    "simplex",
    "softplus_lower_cholesky",
    "softplus_positive",
    "sphere",
    "unit_interval",
):
    if hasattr(constraints, _name):
        _SINGLETONS[_name] = getattr(constraints, _name)
for _name, _params in {
    "interval": ("lower_bound", "upper_bound"),
    "open_interval": ("lower_bound", "upper_bound"),
    "integer_interval": ("lower_bound", "upper_bound"),
    "greater_than": ("lower_bound",),
    "greater_than_eq": ("lower_bound",),
    "integer_greater_than": ("lower_bound",),
    "less_than": ("upper_bound",),
    "less_than_eq": ("upper_bound",),
    "independent": ("base_constraint", "reinterpreted_batch_ndims"),
}.items():
    if isinstance(getattr(constraints, _name, None), type):
        _CONSTRAINTS[_name] = (getattr(constraints, _name), _params)

DISTRIBUTIONS = tuple(_DISTRIBUTIONS)
"""Names of the numpyro distributions a prior may be built from."""
TRANSFORMS = tuple(_TRANSFORMS)
"""Names of the numpyro transforms (``InverseTransform`` is ``t.inv``)."""
CONSTRAINTS = tuple(_SINGLETONS) + tuple(_CONSTRAINTS)
"""Names of the numpyro constraints (transform domains)."""


class NotData(Exception):
    """A prior (or part of one) that cannot be described as data; the message says why."""


# --- values ------------------------------------------------------------------------------------


def _float_to_json(x: float):
    return x if math.isfinite(x) else {"float": repr(x)}


def _array_to_json(value, kind: str) -> dict:
    a = np.asarray(value)
    if a.dtype.name not in _DTYPES:
        raise NotData(f"an array of dtype {a.dtype} (stored dtypes: {', '.join(_DTYPES)})")
    if a.dtype.kind == "f":
        data = [_float_to_json(float(v)) for v in a.ravel()]
    elif a.dtype.kind == "b":
        data = [bool(v) for v in a.ravel()]
    else:
        data = [int(v) for v in a.ravel()]
    out = {"array": data, "dtype": a.dtype.name, "shape": list(a.shape), "kind": kind}
    if kind == "jax" and getattr(value, "weak_type", False):
        out["weak"] = True
    return out


def _value_to_json(value, depth: int = 0):
    if depth > MAX_DEPTH:
        raise NotData("it is nested too deeply")
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return _float_to_json(value)
    if isinstance(value, dist.Distribution):
        return _distribution_to_json(value, depth + 1)
    if isinstance(value, T.Transform):
        return _transform_to_json(value, depth + 1)
    if isinstance(value, constraints.Constraint):
        return _constraint_to_json(value, depth + 1)
    if isinstance(value, jax.Array):
        return _array_to_json(value, "jax")
    if isinstance(value, np.ndarray):
        return _array_to_json(value, "numpy")
    if isinstance(value, np.generic):
        return _array_to_json(value, "numpy_scalar")
    if isinstance(value, tuple):
        return {"tuple": [_value_to_json(v, depth + 1) for v in value]}
    if isinstance(value, list):
        return [_value_to_json(v, depth + 1) for v in value]
    raise NotData(f"it holds a {type(value).__module__}.{type(value).__qualname__}")


def _params(obj, pairs, depth: int) -> dict:
    out = {}
    for attr, _ in pairs:
        if not hasattr(obj, attr):
            raise NotData(f"its {type(obj).__name__} has no attribute {attr!r}")
        out[attr] = _value_to_json(getattr(obj, attr), depth)
    return out


def _distribution_to_json(d: dist.Distribution, depth: int) -> dict:
    name = type(d).__name__
    entry = _DISTRIBUTIONS.get(name)
    if entry is None or type(d) is not entry[0]:
        what = f"{type(d).__module__}.{type(d).__qualname__}"
        raise NotData(f"it is (or holds) a {what}, not one of the stored numpyro distributions")
    cls, pairs, validate = entry
    out: dict[str, Any] = {"distribution": name, "params": _params(d, pairs, depth)}
    extras = {
        a: _value_to_json(vars(d)[a], depth)
        for a in _EXTRA_ATTRIBUTES.get(name, ()) + _ALWAYS_EXTRA
        if a in vars(d)
    }
    if extras:
        out["attributes"] = extras
    if validate and vars(d).get("_validate_args") is True:
        out["validate_args"] = True
    return out


def _transform_to_json(t: T.Transform, depth: int) -> dict:
    name = next((n for n, (cls, _) in _TRANSFORMS.items() if type(t) is cls), None)
    if name is None:
        what = f"{type(t).__module__}.{type(t).__qualname__}"
        raise NotData(f"it holds the transform {what}, not one of the stored numpyro transforms")
    return {"transform": name, "params": _params(t, _TRANSFORMS[name][1], depth)}


def _constraint_to_json(c: constraints.Constraint, depth: int) -> dict:
    for name, singleton in _SINGLETONS.items():
        if c is singleton:
            return {"constraint": name}
    for name, (cls, params) in _CONSTRAINTS.items():
        if type(c) is cls:
            return {"constraint": name, "params": _params(c, [(p, p) for p in params], depth)}
    raise NotData(f"it holds the constraint {c!r}, not one of the stored numpyro constraints")


# --- back from JSON ----------------------------------------------------------------------------


class _Bad(ValueError):
    """A description that is not well formed; the message says where."""


def _expect(cond, msg: str):
    if not cond:
        raise _Bad(msg)


def _non_finite(v) -> bool:
    return isinstance(v, dict) and set(v) == {"float"} and v["float"] in ("inf", "-inf", "nan")


def _array_from_json(data: dict):
    _expect(set(data) <= {"array", "dtype", "shape", "kind", "weak"}, f"unknown keys in {data}")
    dtype, shape, kind = data.get("dtype"), data.get("shape"), data.get("kind")
    _expect(dtype in _DTYPES, f"array dtype {dtype!r} is not one of {_DTYPES}")
    if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
        raise _Bad(f"array shape {shape!r} is not a list of sizes")
    values = data.get("array")
    if not isinstance(values, list) or len(values) != math.prod(shape):
        raise _Bad(f"an array of shape {shape} needs a list of {math.prod(shape)} values")
    _expect(kind in ("jax", "numpy", "numpy_scalar"), f"array kind {kind!r} is unknown")
    np_dtype = np.dtype(dtype)
    if np_dtype.kind == "f":
        finite = all(type(v) in (int, float) or _non_finite(v) for v in values)
        _expect(finite, "float array values must be numbers")
        values = [float(v["float"]) if isinstance(v, dict) else v for v in values]
    elif np_dtype.kind == "b":
        _expect(all(type(v) is bool for v in values), "boolean array values must be booleans")
    else:
        _expect(all(type(v) is int for v in values), "integer array values must be integers")
    try:
        a = np.array(values, dtype=np_dtype).reshape(shape)
    except (OverflowError, ValueError) as e:
        raise _Bad(f"array values do not fit {dtype}: {e}") from None
    if kind == "numpy":
        return a
    if kind == "numpy_scalar":
        _expect(shape == [], "a numpy scalar has shape []")
        return a[()]
    if data.get("weak"):
        zero = jnp.asarray(False if np_dtype.kind == "b" else 0 if np_dtype.kind in "iu" else 0.0)
        if zero.dtype == np_dtype:
            return jnp.broadcast_to(zero, a.shape).at[...].set(a)
    return jnp.asarray(a)


def _value_from_json(data, depth: int = 0):
    _expect(depth <= MAX_DEPTH, "the description is nested too deeply")
    if data is None or isinstance(data, bool | int | float | str):
        return data
    if isinstance(data, list):
        return [_value_from_json(v, depth + 1) for v in data]
    _expect(isinstance(data, dict), f"unexpected value {data!r}")
    if "array" in data:
        return _array_from_json(data)
    if "float" in data:
        _expect(data == {"float": data["float"]}, f"unknown keys in {data}")
        _expect(data["float"] in ("inf", "-inf", "nan"), f"bad float {data['float']!r}")
        return float(data["float"])
    if "tuple" in data:
        _expect(set(data) == {"tuple"} and isinstance(data["tuple"], list), f"bad tuple {data}")
        return tuple(_value_from_json(v, depth + 1) for v in data["tuple"])
    if "distribution" in data:
        return _distribution_from_json(data, depth + 1)
    if "transform" in data:
        return _transform_from_json(data, depth + 1)
    if "constraint" in data:
        return _constraint_from_json(data, depth + 1)
    raise _Bad(f"unexpected value {data!r}")


def _kwargs(data: dict, pairs, depth: int, what: str) -> dict:
    params = data.get("params", {})
    _expect(isinstance(params, dict), f"the params of {what} are not an object")
    expected = {attr for attr, _ in pairs}
    _expect(
        set(params) == expected,
        f"{what} takes the parameters {sorted(expected)}, the file gives {sorted(params)}",
    )
    return {kw: _value_from_json(params[attr], depth) for attr, kw in pairs}


def _distribution_from_json(data: dict, depth: int):
    name = data["distribution"]
    _expect(
        set(data) <= {"distribution", "params", "attributes", "validate_args"},
        f"unknown keys in the description of {name!r}",
    )
    _expect(
        isinstance(name, str) and name in _DISTRIBUTIONS,
        f"{name!r} is not one of the stored distributions ({', '.join(DISTRIBUTIONS)})",
    )
    cls, pairs, validate = _DISTRIBUTIONS[name]
    kwargs = _kwargs(data, pairs, depth, name)
    if data.get("validate_args") is not None:
        _expect(validate and data["validate_args"] is True, f"bad validate_args for {name}")
        kwargs["validate_args"] = True
    d = cls(**kwargs)
    extras = data.get("attributes", {})
    _expect(
        isinstance(extras, dict)
        and set(extras) <= set(_EXTRA_ATTRIBUTES.get(name, ()) + _ALWAYS_EXTRA),
        f"unknown attributes for {name}",
    )
    for attr, value in extras.items():
        setattr(d, attr, _value_from_json(value, depth))
    return d


def _transform_from_json(data: dict, depth: int):
    name = data["transform"]
    _expect(set(data) <= {"transform", "params"}, f"unknown keys in the transform {name!r}")
    _expect(
        isinstance(name, str) and name in _TRANSFORMS,
        f"{name!r} is not one of the stored transforms ({', '.join(TRANSFORMS)})",
    )
    cls, pairs = _TRANSFORMS[name]
    kwargs = _kwargs(data, pairs, depth, name)
    if name == "InverseTransform":
        _expect(isinstance(kwargs["transform"], T.Transform), "InverseTransform of a non-transform")
        return kwargs["transform"].inv
    return cls(**kwargs)


def _constraint_from_json(data: dict, depth: int):
    name = data["constraint"]
    _expect(set(data) <= {"constraint", "params"}, f"unknown keys in the constraint {name!r}")
    if isinstance(name, str) and name in _SINGLETONS:
        _expect("params" not in data, f"the constraint {name!r} takes no parameters")
        return _SINGLETONS[name]
    _expect(
        isinstance(name, str) and name in _CONSTRAINTS,
        f"{name!r} is not one of the stored constraints ({', '.join(CONSTRAINTS)})",
    )
    cls, params = _CONSTRAINTS[name]
    return cls(**_kwargs(data, [(p, p) for p in params], depth, name))


# --- the public functions ----------------------------------------------------------------------


def _leaf_key(leaf):
    a = np.asarray(leaf)
    return type(leaf), a.dtype, a.shape, a.tobytes()


def identical(a, b) -> bool:
    """Whether two distributions have the same pytree structure and bit-identical leaves (of
    the same types, dtypes and shapes; whether a JAX array is weakly typed is not compared: a
    constructor that broadcasts a Python float makes a weakly typed array of the same values)."""
    leaves_a, tree_a = jax.tree_util.tree_flatten(a)
    leaves_b, tree_b = jax.tree_util.tree_flatten(b)
    try:
        same_tree = tree_a == tree_b
    except Exception:  # an aux field whose == is elementwise or raises
        return False
    return (
        bool(same_tree)
        and len(leaves_a) == len(leaves_b)
        and all(_leaf_key(x) == _leaf_key(y) for x, y in zip(leaves_a, leaves_b, strict=True))
    )


def describe(prior: dist.Distribution) -> dict:
    """The prior as JSON data that :func:`build` turns back into an identical distribution.

    Raises:
        NotData: the prior is not built from the allow-listed distributions, transforms and
            constraints, or the rebuilt one would differ from it.
    """
    description = _distribution_to_json(prior, 0)
    try:
        rebuilt = build(description)
    except (ValueError, TypeError) as e:
        raise NotData(f"it does not rebuild from its parameters ({e})") from None
    if not identical(prior, rebuilt):
        raise NotData("it does not rebuild identically from its parameters")
    return description


def build(description) -> dist.Distribution:
    """The distribution a description from :func:`describe` stands for.

    Only allow-listed numpyro classes are constructed, from JSON values; nothing is imported
    or unpickled.

    Raises:
        ValueError: the description is not well formed or its parameters are rejected by the
            distribution (the message says which).
    """
    if not isinstance(description, dict) or "distribution" not in description:
        raise ValueError("the prior's description is not a distribution")
    try:
        return _distribution_from_json(description, 0)
    except _Bad as e:
        raise ValueError(str(e)) from None
    except Exception as e:  # whatever numpyro raises for parameters it rejects
        raise ValueError(f"its parameters are rejected: {type(e).__name__}: {e}") from None


def _constraint_summary(c) -> dict:
    from .simulators._numpyro import _SitesSupport

    if isinstance(c, _SitesSupport):
        sites = [
            {"name": s.name, "shape": list(s.shape), "support": _constraint_summary(s.support)}
            for s in c.sites
        ]
        return {"constraint": "sites", "sites": sites}
    for name, ndims in (("real_vector", 1), ("real_matrix", 2)):  # spelled as independent(real)
        if c is _SINGLETONS.get(name):
            base = {"base_constraint": {"constraint": "real"}, "reinterpreted_batch_ndims": ndims}
            return {"constraint": "independent", "params": base}
    try:
        return _constraint_to_json(c, 0)
    except NotData:
        return {"constraint": f"{type(c).__module__}:{type(c).__qualname__}"}


def _model_sites(prior) -> list:
    """For a numpyro-model prior: each latent site's distribution in one trace (key 0), as a
    description where it has one and ``None`` where not."""
    try:
        trace = prior._run(jax.random.key(0))
    except Exception:
        return [None for _ in prior.sites]
    out = []
    for s in prior.sites:
        try:
            out.append(describe(trace[s.name]["fn"]))
        except (NotData, KeyError):
            out.append(None)
    return out


def summary(prior: dist.Distribution) -> dict:
    """What a given prior is checked against: class, shapes, support, model sites."""
    from .simulators._numpyro import ModelPrior

    cls = type(prior)
    out: dict[str, Any] = {
        "class": f"{cls.__module__}:{cls.__qualname__}",
        "event_shape": list(prior.event_shape),
        "batch_shape": list(prior.batch_shape),
    }
    try:
        out["support"] = _constraint_summary(prior.support)
    except Exception:  # a support that depends on values, or raises
        out["support"] = None
    if isinstance(prior, ModelPrior):
        model = prior.model
        name = getattr(model, "__qualname__", type(model).__qualname__)
        out["model"] = f"{getattr(model, '__module__', '?')}:{name}"
        out["site_distributions"] = _model_sites(prior)
    return out


def comparable(description):
    """A description without what does not change the distribution (``validate_args``, and
    attributes kept from the constructor's arguments), for comparing two priors."""
    if isinstance(description, dict):
        return {
            k: comparable(v)
            for k, v in description.items()
            if k not in ("validate_args", "attributes")
        }
    if isinstance(description, list):
        return [comparable(v) for v in description]
    return description


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_array(x) -> bool:
    return isinstance(x, dict) and "array" in x


def _as_numbers(x) -> np.ndarray:
    values = [float(v["float"]) if isinstance(v, dict) else v for v in x["array"]]
    return np.asarray(values, dtype=np.float64).reshape(x["shape"])


def difference(recorded, given, where: str = "prior", *, rtol: float = 1e-6) -> str | None:
    """The first difference between two JSON descriptions (``None`` when they agree).

    Numbers and arrays agree when they broadcast together and their values agree within ``rtol``
    (so a bound given as ``-1.0`` agrees with ``[-1.0, -1.0]``). Keys whose recorded value is
    ``None`` (not known when saving) are not compared.
    """
    if recorded is None:
        return None
    if _is_array(recorded) or _is_array(given) or isinstance(recorded, float | int):
        try:
            a = _as_numbers(recorded) if _is_array(recorded) else np.asarray(float(recorded))
            b = _as_numbers(given) if _is_array(given) else np.asarray(float(given))
        except (TypeError, ValueError, KeyError):
            return f"{where}: the file has {_short(recorded)}, the given prior {_short(given)}"
        if isinstance(recorded, bool) or isinstance(given, bool):
            same = recorded == given
        else:
            try:
                a_, b_ = np.broadcast_arrays(a, b)
            except ValueError:
                same = False
            else:
                same = bool(np.allclose(a_, b_, rtol=rtol, atol=0.0, equal_nan=True))
        if not same:
            return (
                f"{where}: the file has {_short(a.tolist())}, the given prior {_short(b.tolist())}"
            )
        return None
    if isinstance(recorded, dict) and isinstance(given, dict):
        for key in recorded:
            if key not in given:
                return f"{where}: the given prior has no {key!r}"
            found = difference(recorded[key], given[key], f"{where}.{key}", rtol=rtol)
            if found:
                return found
        extra = set(given) - set(recorded)
        if extra:
            return f"{where}: the given prior also has {sorted(extra)}"
        return None
    if isinstance(recorded, list) and isinstance(given, list):
        if len(recorded) != len(given):
            return f"{where}: the file has {len(recorded)} entries, the given prior {len(given)}"
        for i, (r, g) in enumerate(zip(recorded, given, strict=True)):
            found = difference(r, g, f"{where}[{i}]", rtol=rtol)
            if found:
                return found
        return None
    if recorded != given:
        return f"{where}: the file has {_short(recorded)}, the given prior {_short(given)}"
    return None


def density_difference(saved, given, *, num: int = 64, rtol: float = 1e-5) -> str | None:
    """Where two priors' log-densities differ (``None`` when they agree within ``rtol``), on
    ``num`` draws from each (key 0): priors written differently (a bound as a float or as an
    array, a covariance or a precision matrix) agree, priors with other parameters do not."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # out-of-support values, when validating
            key_saved, key_given = jax.random.split(jax.random.key(0))
            points = jnp.concatenate(
                [saved.sample(key_saved, (num,)), given.sample(key_given, (num,))]
            )
            a = np.asarray(saved.log_prob(points), dtype=np.float64)
            b = np.asarray(given.log_prob(points), dtype=np.float64)
    except Exception as e:
        return f"prior: its density cannot be compared with the saved one ({type(e).__name__}: {e})"
    close = np.isclose(a, b, rtol=rtol, atol=1e-6, equal_nan=True)
    if close.all():
        return None
    i = int(np.argmin(close))
    return (
        f"prior: its density differs from the saved prior's (at theta = "
        f"{_short(np.asarray(points[i]).tolist())} the file's prior has log-density {a[i]:.6g}, "
        f"the given prior {b[i]:.6g})"
    )
