"""Saving and loading trained posteriors.

File layout (format version 3)::

    b"SBIKIT\\x00\\x03"            magic and format version
    8-byte little-endian length   of the JSON header
    JSON header                    format, library version, method, config, dims, history,
                                   calibration, prior (pickled, base64), the body's length and
                                   a SHA-256 over the rest of the header AND the body
    body                           the posterior's arrays except the prior's
                                   (``eqx.tree_serialise_leaves``)

The checksum covers the header (serialised canonically, with sorted keys) as well as the arrays,
so an edit of the configuration, the history or the calibration report is detected like a
flipped bit in the arrays. Versions 1 and 2 checked the body only; they are still read.

``load`` rebuilds the posterior's skeleton from the method's configuration
(``method.init``), then reads the arrays into it; the training history and calibration report
are attached to the loaded posterior as its metadata. The prior travels pickled, never as
leaves of the body: numpyro flattens a distribution in an order that depends on Python's
string hashing, which differs from process to process, so matching its leaves by position
could swap, say, a ``Uniform``'s ``low`` and ``high``. Version-1 files (which held the prior's
leaves too) are still read; their prior leaves are skipped. Writes go to a temporary file that
is renamed into place, so a crash never leaves a half-written file under the target name.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import os
import pickle
import struct
import tempfile
from pathlib import Path

import equinox as eqx
import jax

from .diagnostics import CalibrationReport
from .estimators import AbstractFlow
from .inference import AbstractMethod, AbstractPosterior, AbstractSupport
from .nn import AbstractEmbedding
from .training import History, Training

MAGIC = b"SBIKIT\x00"
FORMAT_VERSION = 3
_READABLE_VERSIONS = (1, 2, 3)
_CONFIG_BASES = (AbstractMethod, AbstractFlow, AbstractEmbedding, AbstractSupport, Training)
"""The only classes a file's configuration may name: sbi_kit's configuration types."""


class LoadError(ValueError):
    """Raised when a file is not a readable sbi_kit posterior."""


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


def save(path: str | os.PathLike, posterior) -> None:
    """Saves a trained posterior (arrays, configuration, history, calibration report).

    The write is atomic: the file is written under a temporary name and renamed into place.

    Args:
        path: the file to write (by convention ``*.sbi``).
        posterior: a posterior returned by a method's ``fit``.

    Examples:
        >>> import sbi_kit as sk  # doctest: +SKIP
        >>> sk.save("posterior.sbi", posterior); posterior = sk.load("posterior.sbi")
    """
    from . import __version__

    if not isinstance(posterior, AbstractPosterior):
        raise TypeError(
            f"sk.save: `posterior` must be a trained sbi_kit posterior (what a method's fit "
            f"returns), got {type(posterior).__name__}."
        )
    method = posterior.method
    body = io.BytesIO()
    eqx.tree_serialise_leaves(body, _arrays(posterior))
    body_bytes = body.getvalue()
    try:
        prior_pickle = base64.b64encode(pickle.dumps(posterior.prior)).decode("ascii")
    except Exception:  # e.g. a numpyro model defined in __main__ or a lambda
        prior_pickle = None
    header = {
        "format": "sbi_kit posterior",
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "method": type(method).__name__,
        "config": _config_to_json(method),
        "dim_theta": posterior.dim_theta,
        "x_shape": list(posterior.x_shape),
        "history": None if posterior.history is None else posterior.history.to_dict(),
        "calibration": _calibration_to_json(posterior.calibration),
        "prior": prior_pickle,
        "body_length": len(body_bytes),
    }
    header["sha256"] = _checksum(header, body_bytes)
    header_bytes = json.dumps(header).encode("utf-8")
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + bytes([FORMAT_VERSION]))
            f.write(struct.pack("<Q", len(header_bytes)))
            f.write(header_bytes)
            f.write(body_bytes)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _checksum(header: dict, body: bytes) -> str:
    """SHA-256 over the header (all but its checksum, keys sorted) and the body."""
    rest = {k: v for k, v in header.items() if k != "sha256"}
    canonical = json.dumps(rest, sort_keys=True).encode("utf-8")
    return hashlib.sha256(struct.pack("<Q", len(canonical)) + canonical + body).hexdigest()


def read_header(path: str | os.PathLike) -> dict:
    """Reads and checks the JSON header of a saved posterior (without loading the arrays)."""
    header, _ = _read(path)
    return header


def _read(path) -> tuple[dict, bytes]:
    path = Path(path)
    data = path.read_bytes()
    prefix = len(MAGIC) + 1
    if len(data) < prefix + 8 or data[: len(MAGIC)] != MAGIC:
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
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LoadError(f"{path} has a corrupted header: {e}.") from None
    if not isinstance(header, dict):
        raise LoadError(f"{path} has a corrupted header: not a JSON object.")
    body = data[start + length :]
    if len(body) != header.get("body_length"):
        raise LoadError(
            f"{path} is truncated or padded: its arrays take {len(body)} bytes, the header says "
            f"{header.get('body_length')}."
        )
    if version >= 3:
        if _checksum(header, body) != header.get("sha256"):
            raise LoadError(
                f"{path} is corrupted or was edited: the checksum over its header and arrays "
                "does not match."
            )
    elif hashlib.sha256(body).hexdigest() != header.get("body_sha256"):
        raise LoadError(f"{path} is corrupted: the checksum of its arrays does not match.")
    missing = {"config", "dim_theta", "x_shape", "prior"} - set(header)
    if missing:
        raise LoadError(f"{path} has a corrupted header: it lacks {sorted(missing)}.")
    header["format_version"] = version
    return header, body


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


def load(path: str | os.PathLike, *, prior=None):
    """Loads a posterior written by :func:`save`.

    Args:
        path: the file.
        prior: the prior to attach, needed only when the saved prior could not be pickled (for
            instance a numpyro model defined in ``__main__``); it must have the same structure.

    Returns:
        the posterior, with ``history`` and ``calibration`` restored; sampling with the same key
        gives bit-identical results to the saved one.

    Raises:
        LoadError: (a ``ValueError``) for a file that is not an sbi_kit posterior, is truncated,
            corrupted, or of another format version.
    """
    header, body = _read(path)
    try:
        method = _config_from_json(header["config"])
    except LoadError:
        raise
    except (TypeError, ValueError) as e:
        raise LoadError(f"{path}: its configuration cannot be rebuilt ({e}).") from None
    if not isinstance(method, AbstractMethod):
        raise LoadError(f"{path}: its configuration is not an inference method.")
    if prior is None:
        if header["prior"] is None:
            raise LoadError(
                f"{path}: the prior could not be stored (it was not picklable); pass it with "
                "sk.load(path, prior=...)."
            )
        prior = pickle.loads(base64.b64decode(header["prior"]))
    skeleton = method.init(jax.random.key(0), header["dim_theta"], tuple(header["x_shape"]), prior)
    try:
        posterior = _deserialise(body, skeleton, header["format_version"])
    except Exception as e:
        raise LoadError(f"{path}: the arrays do not fit the saved configuration ({e}).") from None
    history = header.get("history")
    return posterior.with_metadata(
        history=None if history is None else History.from_dict(history),
        calibration=_calibration_from_json(header.get("calibration")),
    )
