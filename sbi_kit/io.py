"""Saving and loading trained posteriors.

File layout (format version 4)::

    b"SBIKIT\\x00\\x04"            magic and format version
    8-byte little-endian length   of the JSON header
    JSON header                    format, library version, method, config, dims, history,
                                   calibration, the prior as data (or null), what is known of
                                   the prior (``prior_info``), optionally a pickled prior, the
                                   body's length and a SHA-256 over the rest of the header AND
                                   the body
    body                           the posterior's arrays except the prior's
                                   (``eqx.tree_serialise_leaves``)

Loading a file never runs code from it by default. The prior is stored as data: the name of a
numpyro distribution from an allow-list and its parameter arrays, recursively for wrappers such
as ``Independent`` and ``TransformedDistribution`` (see :mod:`sbi_kit._prior_json` and
docs/save-load.md). A prior that cannot be stored so (a numpyro model from ``sk.from_numpyro``
is code) is not stored: ``save`` warns, and ``load`` needs it back with ``prior=...``, or, for
files from a trusted source, ``save(..., allow_pickle=True)`` stores it pickled and
``load(..., allow_pickle=True)`` unpickles it. Files of versions 1 to 3 stored the prior
pickled; they load with ``allow_pickle=True`` or ``prior=...``.

The checksum covers the header (serialised canonically, with sorted keys) as well as the arrays,
so an edit of the configuration, the history or the calibration report is detected like a
flipped bit in the arrays. Versions 1 and 2 checked the body only.

``load`` rebuilds the posterior's skeleton from the method's configuration
(``method.init``), then reads the arrays into it; the training history and calibration report
are attached to the loaded posterior as its metadata. The prior is never stored as leaves of the
body: numpyro flattens a distribution in an order that depends on Python's string hashing,
which differs from process to process, so matching its leaves by position could swap, say, a
``Uniform``'s ``low`` and ``high``. Version-1 files (which held the prior's leaves too) are
still read; their prior leaves are skipped. Writes go to a temporary file that is renamed into
place (then the folder is synced), so a crash never leaves a half-written file under the target
name; the file gets the permissions the umask gives a new file.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import io
import json
import math
import os
import pickle
import pickletools
import struct
import warnings
from pathlib import Path

import diffrax
import equinox as eqx
import jax
import numpyro.distributions as dist

from . import _prior_json
from ._atomic import write_atomic
from ._checks import check_flag
from .diagnostics import CalibrationReport
from .estimators import AbstractFlow, AbstractVectorField
from .inference import (
    AbstractComposition,
    AbstractDivergence,
    AbstractMethod,
    AbstractPosterior,
    AbstractRatioLoss,
    AbstractSDE,
    AbstractSupport,
    AbstractVectorFieldSampler,
)
from .mcmc import AbstractSampler, ChainMixtureResampling, MCMCConfig
from .nn import AbstractEmbedding, AbstractTimeEmbedding
from .training import History, Training

MAGIC = b"SBIKIT\x00"
FORMAT_VERSION = 4
_READABLE_VERSIONS = (1, 2, 3, 4)
_CONFIG_BASES = (
    AbstractMethod,
    AbstractFlow,
    AbstractEmbedding,
    AbstractSupport,
    AbstractRatioLoss,
    Training,
    MCMCConfig,
    AbstractSampler,
    ChainMixtureResampling,
    AbstractVectorField,
    AbstractTimeEmbedding,
    AbstractSDE,
    AbstractVectorFieldSampler,
    AbstractComposition,
    AbstractDivergence,
    diffrax.AbstractSolver,
)
"""The only classes a file's configuration may name: sbi_kit's configuration types, and the
diffrax solvers that vector-field samplers hold (frozen dataclasses built from their fields;
nothing is imported)."""


class LoadError(ValueError):
    """Raised when a file is not a readable sbi_kit posterior, or a given prior does not match."""


def _config_to_json(obj):
    """A frozen-dataclass config (nested) as JSON, tagged with its class."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = {f.name: _config_to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        return {"__class__": f"{type(obj).__module__}:{type(obj).__qualname__}", **fields}
    if isinstance(obj, tuple | list):
        return [_config_to_json(v) for v in obj]
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise TypeError(
        f"cannot save a configuration holding {type(obj).__name__}; configurations must be "
        "frozen dataclasses of numbers, strings and other such dataclasses."
    )


def _known(bases: tuple[type, ...]):
    """Every class defined so far that is one of ``bases`` or derives from one."""
    seen, stack = [], list(bases)
    while stack:
        cls = stack.pop()
        if cls not in seen:
            seen.append(cls)
            stack.extend(cls.__subclasses__())
    return seen


def _resolve(path, bases: tuple[type, ...]) -> type:
    """The class named ``module:qualname`` among those already defined that derive from
    ``bases``. Nothing is imported: a file cannot make ``load`` run a module's code, and a
    user-defined method loads once the module that defines it has been imported."""
    for cls in _known(bases):
        if f"{cls.__module__}:{cls.__qualname__}" == path:
            return cls
    raise LoadError(
        f"refusing to build {path!r}: not a configuration class defined in this process (sbi_kit's"
        " own, or one whose module you imported before sk.load)."
    )


def _config_from_json(data):
    if isinstance(data, dict):
        cls = _resolve(data.get("__class__"), _CONFIG_BASES)
        kwargs = {k: _config_from_json(v) for k, v in data.items() if k != "__class__"}
        return cls(**kwargs)
    if isinstance(data, list):
        return tuple(_config_from_json(v) for v in data)
    return data


def _calibration_to_json(report):
    if report is None:
        return None
    return {
        "__class__": f"{type(report).__module__}:{type(report).__qualname__}",
        "data": report.to_dict(),
    }


def _calibration_from_json(data):
    if data is None:
        return None
    return _resolve(data["__class__"], (CalibrationReport,)).from_dict(data["data"])


def _as_path(path, fn: str) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(
            f"{fn}: `path` must be a file name (str or os.PathLike), got {type(path).__name__}."
        )
    return Path(path)


def _prior_name(prior) -> str:
    cls = type(prior)
    return f"{cls.__module__}.{cls.__qualname__}"


def _refers_to_main(raw: bytes) -> bool:
    """Whether a pickle names something in ``__main__`` (a script's or notebook's own code),
    which only a process with the same ``__main__`` can unpickle."""
    try:
        for opcode, arg, _ in pickletools.genops(raw):
            if isinstance(arg, str) and (
                arg == "__main__"
                or (opcode.name in ("GLOBAL", "INST") and arg.startswith("__main__ "))
            ):
                return True
    except Exception:
        return False
    return False


def _store_prior(prior, path: Path, allow_pickle: bool) -> dict:
    """The header's prior entries; warns when ``load`` will need the prior passed in."""
    from .simulators._numpyro import ModelPrior

    info = _prior_json.summary(prior)
    try:
        return {"prior": _prior_json.describe(prior), "prior_info": info}
    except _prior_json.NotData as e:
        reason = str(e)
    if isinstance(prior, ModelPrior):
        reason = f"it is the numpyro model {info['model']} (from sk.from_numpyro), which is code"
    what = f"sk.save: the prior ({_prior_name(prior)}) cannot be stored as data: {reason}"
    entries = {"prior": None, "prior_info": info}
    if not allow_pickle:
        warnings.warn(
            f"{what}. {path} holds no prior: load it with sk.load(path, prior=...) and the same "
            "prior (for sk.from_numpyro, `sim.prior`), or save it with allow_pickle=True and load "
            "it with allow_pickle=True (for files from sources you trust).",
            UserWarning,
            stacklevel=3,
        )
        return entries
    try:
        raw = pickle.dumps(prior)
    except Exception as e:  # e.g. a model defined inside a function, or a lambda
        warnings.warn(
            f"{what}, and it cannot be pickled either ({type(e).__name__}: {e}). {path} holds no "
            "prior: load it with sk.load(path, prior=...) and the same prior.",
            UserWarning,
            stacklevel=3,
        )
        return entries
    if _refers_to_main(raw):
        warnings.warn(
            f"{what}. It was pickled (allow_pickle=True), but the pickle refers to code in "
            "__main__ (a script or notebook), which another process does not have: there, load "
            f"{path} with sk.load(path, prior=...) and the same prior.",
            UserWarning,
            stacklevel=3,
        )
    entries["prior_pickle"] = base64.b64encode(raw).decode("ascii")
    return entries


def save(path: str | os.PathLike, posterior, *, allow_pickle: bool = False) -> None:
    """Saves a trained posterior (arrays, configuration, prior, history, calibration report).

    The prior is stored as data (an allow-listed numpyro distribution and its parameters;
    see docs/save-load.md), never as a pickle unless ``allow_pickle=True``. A prior that cannot
    be stored as data (a numpyro model from ``sk.from_numpyro``, a distribution class off the
    list) is not stored: a ``UserWarning`` says so, and ``sk.load(path, prior=...)`` attaches it
    again.

    The write is atomic: the file is written under a temporary name in the same folder, synced,
    given the permissions the umask gives a new file, and renamed into place; then the folder is
    synced.

    Args:
        path: the file to write (by convention ``*.sbi``); an existing file is replaced.
        posterior: a posterior returned by a method's ``fit``.
        allow_pickle: store a prior that cannot be stored as data pickled, so that
            ``sk.load(path, allow_pickle=True)`` can restore it. Unpickling runs code from the
            file: only for files that stay among sources you trust.

    Raises:
        TypeError: ``posterior`` is not an sbi_kit posterior, ``path`` not a file name or
            ``allow_pickle`` not a bool.
        IsADirectoryError: ``path`` is a folder.
        FileNotFoundError: the folder of ``path`` does not exist.

    Examples:
        >>> import pathlib, tempfile
        >>> import jax, jax.numpy as jnp, numpyro.distributions as dist, sbi_kit as sk
        >>> prior = dist.Uniform(-jnp.ones(2), jnp.ones(2)).to_event(1)
        >>> npe = sk.NPE(flow=sk.estimators.MAF(layers=1, width=8, depth=1))
        >>> posterior = npe.init(jax.random.key(0), 2, (2,), prior)  # in practice npe.fit(...)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = pathlib.Path(folder) / "posterior.sbi"
        ...     sk.save(path, posterior)
        ...     sk.io.read_header(path)["prior"]["distribution"]
        'Independent'
    """
    from . import __version__

    if not isinstance(posterior, AbstractPosterior):
        raise TypeError(
            f"sk.save: `posterior` must be a trained sbi_kit posterior (what a method's fit "
            f"returns), got {type(posterior).__name__}."
        )
    path = _as_path(path, "sk.save")
    check_flag(allow_pickle, "allow_pickle", "sk.save")
    if path.is_dir():
        raise IsADirectoryError(
            f"sk.save: `path` {path} is a folder; give a file name, e.g. {path / 'posterior.sbi'}."
        )
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"sk.save: the folder {folder} of `path` does not exist.")
    method = posterior.method
    body = io.BytesIO()
    eqx.tree_serialise_leaves(body, _arrays(posterior))
    body_bytes = body.getvalue()
    header = {
        "format": "sbi_kit posterior",
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "method": type(method).__name__,
        "config": _config_to_json(method),
        "dim_theta": posterior.dim_theta,
        "x_shape": list(posterior.x_shape),
        "x_constant": list(posterior.x_constant),
        "history": None if posterior.history is None else posterior.history.to_dict(),
        "calibration": _calibration_to_json(posterior.calibration),
        **_store_prior(posterior.prior, path, allow_pickle),
        "body_length": len(body_bytes),
    }
    header["sha256"] = _checksum(header, body_bytes)
    header_bytes = json.dumps(header).encode("utf-8")
    write_atomic(
        path,
        (
            MAGIC + bytes([FORMAT_VERSION]),
            struct.pack("<Q", len(header_bytes)),
            header_bytes,
            body_bytes,
        ),
    )


def _checksum(header: dict, body: bytes) -> str:
    """SHA-256 over the header (all but its checksum, keys sorted) and the body."""
    rest = {k: v for k, v in header.items() if k != "sha256"}
    canonical = json.dumps(rest, sort_keys=True).encode("utf-8")
    return hashlib.sha256(struct.pack("<Q", len(canonical)) + canonical + body).hexdigest()


def read_header(path: str | os.PathLike) -> dict:
    """Reads and checks the JSON header of a saved posterior (without loading the arrays).

    The checksum over the header and the arrays is verified and the header's fields are checked,
    so the header returned is the one :func:`save` wrote. Nothing is unpickled.

    Args:
        path: the file.

    Returns:
        the header as a dict, with ``format_version`` the file's.

    Raises:
        LoadError: (a ``ValueError``) as :func:`load` does for a file that is not a readable
            sbi_kit posterior.
        TypeError: ``path`` is not a file name.
        FileNotFoundError: no file at ``path``.
        IsADirectoryError: ``path`` is a folder.

    Examples:
        >>> import pathlib, tempfile
        >>> import jax, jax.numpy as jnp, numpyro.distributions as dist, sbi_kit as sk
        >>> prior = dist.Normal(jnp.zeros(2), 1.0).to_event(1)
        >>> npe = sk.NPE(flow=sk.estimators.MAF(layers=1, width=8, depth=1))
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = pathlib.Path(folder) / "posterior.sbi"
        ...     sk.save(path, npe.init(jax.random.key(0), 2, (2,), prior))
        ...     header = sk.io.read_header(path)
        >>> header["format_version"], header["method"], header["dim_theta"]
        (4, 'NPE', 2)
    """
    header, _ = _read(path, "read_header")
    return header


def _read(path, fn: str) -> tuple[dict, bytes]:
    path = _as_path(path, fn)
    if path.is_dir():
        raise IsADirectoryError(f"{fn}: `path` {path} is a folder, not a saved posterior.")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{fn}: there is no file at `path` {path}.") from None
    prefix = len(MAGIC) + 1
    if not data:
        raise LoadError(f"{path} is empty, not an sbi_kit posterior file.")
    if len(data) < prefix + 8 or data[: len(MAGIC)] != MAGIC:
        if data[: len(MAGIC)] == MAGIC or MAGIC.startswith(data):
            raise LoadError(f"{path} is truncated (it ends inside the file's first bytes).")
        raise LoadError(f"{path} is not an sbi_kit posterior file (bad magic bytes).")
    version = data[len(MAGIC)]
    if version not in _READABLE_VERSIONS:
        raise LoadError(
            f"{path} has format version {version}; this sbi_kit reads versions "
            f"{', '.join(map(str, _READABLE_VERSIONS))}."
        )
    (length,) = struct.unpack("<Q", data[prefix : prefix + 8])
    start = prefix + 8
    if start + length > len(data):
        raise LoadError(f"{path} is truncated (the header runs past the end of the file).")
    try:
        header = json.loads(data[start : start + length].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise LoadError(f"{path} has a corrupted header: {e}.") from None
    if not isinstance(header, dict):
        raise LoadError(
            f"{path} has a corrupted header: a JSON {type(header).__name__}, not an object."
        )
    body = data[start + length :]
    if type(header.get("body_length")) is not int:
        raise LoadError(f"{path} has a corrupted header: `body_length` is missing or not a number.")
    if len(body) != header["body_length"]:
        raise LoadError(
            f"{path} is truncated or padded: its arrays take {len(body)} bytes, the header says "
            f"{header['body_length']}."
        )
    if version >= 3:
        if _checksum(header, body) != header.get("sha256"):
            raise LoadError(
                f"{path} is corrupted or was edited: the checksum over its header and arrays "
                "does not match."
            )
    elif hashlib.sha256(body).hexdigest() != header.get("body_sha256"):
        raise LoadError(f"{path} is corrupted: the checksum of its arrays does not match.")
    _check_fields(header, version, path)
    header["format_version"] = version
    return header, body


def _check_fields(header: dict, version: int, path) -> None:
    """Every field ``load`` uses is there and of its type (a forged file can have a valid
    checksum, so this is checked whatever the checksum says)."""

    def bad(what: str):
        raise LoadError(f"{path} has a corrupted header: {what}.")

    required = ["config", "dim_theta", "x_shape", "prior"] + (
        ["prior_info"] if version >= 4 else []
    )
    missing = [k for k in required if k not in header]
    if missing:
        bad(f"it lacks {missing}")
    if not isinstance(header["config"], dict):
        bad("`config` is not an object")
    dim = header["dim_theta"]
    if type(dim) is not int or dim < 1:
        bad(f"`dim_theta` is {dim!r}, not a positive integer")
    x_shape = header["x_shape"]
    if not isinstance(x_shape, list) or not all(type(n) is int and n >= 0 for n in x_shape):
        bad(f"`x_shape` is {x_shape!r}, not a list of sizes")
    x_constant = header.get("x_constant", [])
    if not isinstance(x_constant, list) or not all(
        type(j) is int and 0 <= j < math.prod(x_shape) for j in x_constant
    ):
        bad(f"`x_constant` is {x_constant!r}, not a list of component indices")
    if not isinstance(header.get("history"), dict | None):
        bad("`history` is neither an object nor null")
    calibration = header.get("calibration")
    if calibration is not None and not (
        isinstance(calibration, dict)
        and isinstance(calibration.get("__class__"), str)
        and isinstance(calibration.get("data"), dict)
    ):
        bad("`calibration` is not a calibration report")
    prior_type = dict if version >= 4 else str
    if not isinstance(header["prior"], prior_type | None):
        bad(f"`prior` is neither {'an object' if version >= 4 else 'a string'} nor null")
    if version >= 4:
        if not isinstance(header["prior_info"], dict):
            bad("`prior_info` is not an object")
        if not isinstance(header.get("prior_pickle"), str | None):
            bad("`prior_pickle` is neither a string nor null")


def _fields(posterior) -> list[str]:
    """The posterior's fields that the body stores: the pytree fields except the prior."""
    return [
        f.name
        for f in dataclasses.fields(posterior)
        if f.name != "prior" and not f.metadata.get("static", False)
    ]


def _arrays(posterior) -> list:
    """What the body of a version-2 file holds: those fields' values, in field order."""
    return [getattr(posterior, name) for name in _fields(posterior)]


def _deserialise(body: bytes, skeleton, version: int):
    """Reads the body into ``skeleton`` (whose prior is the unpickled one and is kept)."""
    if version == 1:
        # The whole posterior, prior included: read it, then put the unpickled prior back.
        loaded = eqx.tree_deserialise_leaves(io.BytesIO(body), skeleton)
        return eqx.tree_at(lambda p: p.prior, loaded, skeleton.prior)
    loaded = eqx.tree_deserialise_leaves(io.BytesIO(body), _arrays(skeleton))
    return eqx.tree_at(_arrays, skeleton, loaded)


def _unpickle(stored: str, path) -> dist.Distribution:
    try:
        raw = base64.b64decode(stored, validate=True)
    except (binascii.Error, ValueError):
        raise LoadError(
            f"{path} has a corrupted header: its pickled prior is not base64."
        ) from None
    try:
        prior = pickle.loads(raw)
    except Exception as e:
        raise LoadError(
            f"{path}: its pickled prior cannot be unpickled in this process ({type(e).__name__}: "
            f"{e}). A prior whose code lives in a script (__main__) or inside a function "
            "unpickles only where the same names exist; pass it with sk.load(path, prior=...)."
        ) from None
    if not isinstance(prior, dist.Distribution):
        raise LoadError(
            f"{path}: its pickled prior is a {type(prior).__name__}, not a numpyro distribution."
        )
    return prior


def _stored_prior(header: dict, path, allow_pickle: bool) -> dist.Distribution:
    """The prior the file holds: built from its description, or (with ``allow_pickle``)
    unpickled; a ``LoadError`` that says what to pass when neither is possible."""
    version = header["format_version"]
    if version >= 4:
        if header["prior"] is not None:
            try:
                return _prior_json.build(header["prior"])
            except ValueError as e:
                raise LoadError(f"{path}: its prior cannot be rebuilt ({e}).") from None
        info = header["prior_info"]
        kind = f"the numpyro model {info['model']}" if "model" in info else info.get("class")
        if header.get("prior_pickle") is None:
            raise LoadError(
                f"{path} does not hold its prior: it is {kind}, which cannot be stored as data (a "
                "numpyro model from sk.from_numpyro is code). Pass the prior the posterior was "
                "trained with: sk.load(path, prior=...)."
            )
        if not allow_pickle:
            raise LoadError(
                f"{path} holds its prior ({kind}) only as a pickle (it was saved with "
                "allow_pickle=True), and sk.load does not unpickle by default: unpickling runs "
                "code from the file. Pass the prior with sk.load(path, prior=...), or "
                "allow_pickle=True if you trust the file's source."
            )
        return _unpickle(header["prior_pickle"], path)
    if header["prior"] is None:
        raise LoadError(
            f"{path}: the prior could not be stored (it was not picklable when saved); pass it "
            "with sk.load(path, prior=...)."
        )
    if not allow_pickle:
        raise LoadError(
            f"{path} was written by an earlier sbi_kit (format version {version}), which stored "
            "the prior as a pickle, and sk.load does not unpickle by default: unpickling can run "
            "arbitrary code from the file. If you trust the file's source, load it with "
            "sk.load(path, allow_pickle=True) (and sk.save it again to store the prior as data), "
            "or pass the prior with sk.load(path, prior=...)."
        )
    return _unpickle(header["prior"], path)


def _check_given_prior(prior, header: dict, path, check: bool) -> None:
    """Refuses a prior passed to ``load`` that differs from the one the file records."""
    if not check or header["format_version"] < 4:
        return
    # compared: event and batch shapes, support (type and bounds), a model's sites; not the
    # class (a prior can be written in several ways) nor a model's name
    ignored = ("class", "model")
    recorded = {k: v for k, v in header["prior_info"].items() if k not in ignored}
    given = {k: v for k, v in _prior_json.summary(prior).items() if k not in ignored}
    found = _prior_json.difference(_prior_json.comparable(recorded), _prior_json.comparable(given))
    if found is None and header["prior"] is not None:
        try:
            saved = _prior_json.build(header["prior"])
        except ValueError as e:
            raise LoadError(f"{path}: its prior cannot be rebuilt ({e}).") from None
        found = _prior_json.density_difference(saved, prior)
    if found is not None:
        raise LoadError(
            f"sk.load: `prior` does not match the prior saved with {path}: {found}. Pass the "
            "prior the posterior was trained with, or check_prior=False to attach this one anyway."
        )


def load(
    path: str | os.PathLike,
    *,
    prior: dist.Distribution | None = None,
    allow_pickle: bool = False,
    check_prior: bool = True,
):
    """Loads a posterior written by :func:`save`.

    A default load never unpickles, so loading a file does not run code from it: the prior is
    rebuilt from its stored description (allow-listed numpyro classes and their parameters).

    Args:
        path: the file.
        prior: the prior to attach instead of the stored one. Needed when the file holds no
            prior as data (a numpyro model from ``sk.from_numpyro``; files of format versions 1 to
            3, which pickled it). It is checked against what the file records of the saved prior
            (event shape, support type and bounds, class and parameters where stored) and
            refused if it differs, unless ``check_prior=False``; its event shape must be
            ``(dim_theta,)`` in any case.
        allow_pickle: allow unpickling a prior the file holds only pickled (files of format
            versions 1 to 3, or saved with ``allow_pickle=True``). Unpickling runs code from the
            file: pass it only for files from sources you trust.
        check_prior: check a given ``prior`` against the saved one (default); ``False`` attaches
            it anyway.

    Returns:
        the posterior, with ``history`` and ``calibration`` restored; sampling with the same key
        gives bit-identical results to the saved one.

    Raises:
        LoadError: (a ``ValueError``) for a file that is not an sbi_kit posterior, is truncated,
            corrupted, forged, or of another format version; for a prior that must be passed
            (or allowed to be unpickled), and for a given ``prior`` that does not match.
        TypeError: ``path`` is not a file name, ``prior`` not a numpyro distribution, or a flag
            not a bool.
        FileNotFoundError: no file at ``path``.
        IsADirectoryError: ``path`` is a folder.

    Examples:
        >>> import pathlib, tempfile
        >>> import jax, jax.numpy as jnp, numpyro.distributions as dist, sbi_kit as sk
        >>> prior = dist.Uniform(-jnp.ones(2), jnp.ones(2)).to_event(1)
        >>> npe = sk.NPE(flow=sk.estimators.MAF(layers=1, width=8, depth=1))
        >>> posterior = npe.init(jax.random.key(0), 2, (2,), prior)  # in practice npe.fit(...)
        >>> x_o = jnp.array([0.1, -0.2])
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = pathlib.Path(folder) / "posterior.sbi"
        ...     sk.save(path, posterior)
        ...     loaded = sk.load(path)
        ...     wide = dist.Uniform(-5 * jnp.ones(2), 5 * jnp.ones(2)).to_event(1)
        ...     try:
        ...         sk.load(path, prior=wide)
        ...     except sk.io.LoadError as e:
        ...         print("refused:", "does not match" in str(e))
        refused: True
        >>> bool((loaded.sample(jax.random.key(1), x_o, 5) == posterior.sample(
        ...     jax.random.key(1), x_o, 5)).all())
        True
    """
    check_flag(allow_pickle, "allow_pickle", "sk.load")
    check_flag(check_prior, "check_prior", "sk.load")
    if prior is not None and not isinstance(prior, dist.Distribution):
        raise TypeError(
            f"sk.load: `prior` must be a numpyro distribution (the prior the posterior was "
            f"trained with), got {type(prior).__name__}."
        )
    header, body = _read(path, "sk.load")
    try:
        method = _config_from_json(header["config"])
    except LoadError:
        raise
    except (TypeError, ValueError, RecursionError) as e:
        raise LoadError(f"{path}: its configuration cannot be rebuilt ({e}).") from None
    if not isinstance(method, AbstractMethod):
        raise LoadError(f"{path}: its configuration is not an inference method.")
    dim_theta, x_shape = header["dim_theta"], tuple(header["x_shape"])
    if prior is None:
        prior = _stored_prior(header, path, allow_pickle)
        if tuple(prior.event_shape) != (dim_theta,):
            raise LoadError(
                f"{path}: its prior has event shape {tuple(prior.event_shape)}, but the posterior "
                f"is over {dim_theta} parameters."
            )
    else:
        if tuple(prior.event_shape) != (dim_theta,):
            raise LoadError(
                f"sk.load: `prior` has event shape {tuple(prior.event_shape)}, but the posterior "
                f"saved with {path} is over {dim_theta} parameters (event shape ({dim_theta},))."
            )
        _check_given_prior(prior, header, path, check_prior)
    try:
        skeleton = method.init(
            jax.random.key(0),
            dim_theta,
            x_shape,
            prior,
            x_constant=tuple(header.get("x_constant", [])),  # absent before 2026-12-06: none
        )
    except Exception as e:
        raise LoadError(
            f"{path}: the posterior cannot be rebuilt from its configuration "
            f"({type(e).__name__}: {e})."
        ) from None
    try:
        posterior = _deserialise(body, skeleton, header["format_version"])
    except Exception as e:
        raise LoadError(f"{path}: the arrays do not fit the saved configuration ({e}).") from None
    try:
        history = header.get("history")
        history = None if history is None else History.from_dict(history)
        calibration = _calibration_from_json(header.get("calibration"))
    except LoadError:
        raise
    except Exception as e:
        raise LoadError(
            f"{path}: its history or calibration report cannot be read ({type(e).__name__}: {e})."
        ) from None
    return posterior.with_metadata(history=history, calibration=calibration)
