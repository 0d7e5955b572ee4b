"""The ``.pfn`` file: a trained PFN, or a training checkpoint, stored without code.

Layout (version 1)::

    b"SBIKITPFN\\x00\\x01"        magic and format version
    8-byte little-endian length   of the JSON header
    JSON header                   settings (``PFN`` fields), input dimension, parameter names,
                                  steps planned and done, the loss history, the prior's
                                  description, free-form metadata (script, seed), whether an
                                  optimiser state follows, the PRNG key's data, the two body
                                  parts' lengths and a SHA-256 over the header and the body
    body                          the network and bucket borders (``eqx.tree_serialise_leaves``),
                                  then, in a checkpoint, the optimiser state

Loading builds the network's skeleton from the stored settings (``PFN(**settings).init``, with
shapes only) and reads the arrays into it; nothing in the file is executed or imported.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import struct
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._atomic import write_atomic
from ._trained import TrainedPFN

MAGIC = b"SBIKITPFN\x00"
VERSION = 1


class PFNFileError(ValueError):
    """A file that is not a readable ``.pfn`` file (wrong magic, version or checksum)."""


@dataclasses.dataclass(frozen=True)
class PFNState:
    """What a ``.pfn`` file holds: the trained PFN, and for a checkpoint the optimiser state and
    the training key's data."""

    trained: TrainedPFN
    opt_state: object | None
    key_data: np.ndarray | None


def _digest(header: dict, body: bytes) -> str:
    canonical = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical + body).hexdigest()


def _leaves(tree) -> bytes:
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, tree)
    return buffer.getvalue()


def save_pfn_file(path, trained: TrainedPFN, *, opt_state=None, key=None) -> None:
    """Write ``trained`` (and, for a checkpoint, ``opt_state`` and ``key``) to ``path``."""
    from .. import __version__

    model = _leaves((trained.net, trained.borders, trained.parameter_borders))
    optimizer = b"" if opt_state is None else _leaves(opt_state)
    header = {
        "format": "sbi_kit PFN",
        "version": VERSION,
        "library_version": __version__,
        "settings": dataclasses.asdict(trained.config),
        "input_dim": trained.net.input_dim,
        "parameter_names": list(trained.parameter_names),
        "steps": trained.steps,
        "steps_done": trained.steps_done,
        "history": [list(h) for h in trained.history],
        "prior": trained.prior,
        "metadata": trained.metadata,
        "key_data": None if key is None else np.asarray(jax.random.key_data(key)).tolist(),
        "model_bytes": len(model),
        "optimizer_bytes": len(optimizer),
    }
    body = model + optimizer
    header["sha256"] = _digest(header, body)
    raw = json.dumps(header, sort_keys=True).encode()
    write_atomic(Path(path), (MAGIC + bytes([VERSION]), struct.pack("<Q", len(raw)), raw, body))


def load_pfn_file(path, *, with_optimizer=None) -> PFNState:
    """Read a ``.pfn`` file (``with_optimizer``: the optax transformation whose state a
    checkpoint holds; without it the optimiser state is skipped)."""
    from ._pfn import PFN

    data = Path(path).read_bytes()
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 9:
        raise PFNFileError(f"{path}: not an sbi_kit PFN file (bad magic bytes).")
    version = data[len(MAGIC)]
    if version != VERSION:
        raise PFNFileError(f"{path}: PFN file version {version}; this sbi_kit reads {VERSION}.")
    start = len(MAGIC) + 9
    (length,) = struct.unpack("<Q", data[len(MAGIC) + 1 : start])
    try:
        header = json.loads(data[start : start + length])
    except ValueError as e:
        raise PFNFileError(f"{path}: unreadable header ({e}).") from None
    body = data[start + length :]
    stored = header.pop("sha256", None)
    if stored != _digest(header, body):
        raise PFNFileError(f"{path}: checksum mismatch; the file is damaged or was edited.")
    config = PFN(**header["settings"])
    names = tuple(header["parameter_names"])
    shapes = eqx.filter_eval_shape(config.init, jax.random.key(0), header["input_dim"], len(names))
    borders = jax.ShapeDtypeStruct((config.num_buckets + 1,), jnp.float32)
    parameter_borders = (
        jax.ShapeDtypeStruct((len(names), config.num_parameter_buckets + 1), jnp.float32)
        if names
        else None
    )
    model = header["model_bytes"]
    net, borders, parameter_borders = eqx.tree_deserialise_leaves(
        io.BytesIO(body[:model]), (shapes, borders, parameter_borders)
    )
    opt_state = None
    if with_optimizer is not None and header["optimizer_bytes"]:
        like = jax.eval_shape(with_optimizer.init, eqx.filter(net, eqx.is_inexact_array))
        opt_state = eqx.tree_deserialise_leaves(io.BytesIO(body[model:]), like)
    trained = TrainedPFN(
        net=net,
        borders=borders,
        parameter_borders=parameter_borders,
        config=config,
        parameter_names=names,
        steps=header["steps"],
        steps_done=header["steps_done"],
        history=tuple((int(s), float(v), float(t)) for s, v, t in header["history"]),
        prior=header["prior"],
        metadata=header["metadata"],
    )
    key_data = None if header["key_data"] is None else np.asarray(header["key_data"], np.uint32)
    return PFNState(trained, opt_state, key_data)


def save(path, pfn: TrainedPFN) -> None:
    """Save a trained PFN to a ``.pfn`` file (settings as JSON, arrays as equinox leaves).

    Args:
        path: the file to write (replaced atomically if it exists).
        pfn: a :class:`~sbi_kit.pfn.TrainedPFN`.

    Examples:
        >>> import tempfile, os, sbi_kit as sk
        >>> pfn = sk.PFN.pretrained("gp")
        >>> path = os.path.join(tempfile.mkdtemp(), "gp.pfn")
        >>> sk.pfn.save(path, pfn)
        >>> sk.pfn.load(path).steps_done == pfn.steps_done
        True
    """
    if not isinstance(pfn, TrainedPFN):
        raise TypeError(f"sk.pfn.save: `pfn` must be a TrainedPFN, got {type(pfn).__name__}.")
    save_pfn_file(path, pfn)


def load(path) -> TrainedPFN:
    """Load a trained PFN from a ``.pfn`` file or a training checkpoint (the network only; to
    continue training, pass the checkpoint to ``PFN.fit(..., resume_from=path)``).

    Nothing in the file is executed: the network is rebuilt from the stored settings and the
    arrays are read into it, after the SHA-256 over header and arrays is checked.

    Raises:
        PFNFileError: if the file is not a readable ``.pfn`` file, or was damaged or edited.
    """
    return load_pfn_file(path).trained
