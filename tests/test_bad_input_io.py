"""Bad inputs to ``sk.save``, ``sk.load`` and ``read_header``: each raises a clear exception of
the documented type whose message names the argument or the problem (never a raw KeyError,
AttributeError or a crash), and nothing in a file runs on a default load."""

import base64
import hashlib
import json
import pickle
import struct
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
import pytest

import sbi_kit as sk
import sbi_kit.io as skio
from sbi_kit.io import LoadError, read_header

_PREFIX = len(skio.MAGIC) + 1


class _Payload:
    """Unpickling this runs code: it writes the file ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"__import__('pathlib').Path({self.marker!r}).write_text('ran')",))


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """One tiny trained posterior (U(-1, 1)² prior), saved once; the cases derive files from it."""
    folder = tmp_path_factory.mktemp("bad_io")
    prior = dist.Uniform(-jnp.ones(2), jnp.ones(2)).to_event(1)
    sim = sk.Simulator(prior, lambda key, th: th + 0.3 * jax.random.normal(key, (2,)))
    theta, x = sk.simulate(jax.random.key(0), sim, 300)
    npe = sk.NPE(
        flow=sk.estimators.MAF(layers=1, width=8, depth=1), training=sk.Training(max_epochs=2)
    )
    posterior = npe.fit(jax.random.key(1), theta, x, prior=prior, progress=False)
    good = folder / "good.sbi"
    sk.save(good, posterior)
    return SimpleNamespace(folder=folder, posterior=posterior, good=good, prior=prior)


def _parts(env):
    data = env.good.read_bytes()
    (length,) = struct.unpack("<Q", data[_PREFIX : _PREFIX + 8])
    header = json.loads(data[_PREFIX + 8 : _PREFIX + 8 + length])
    return data, header, data[_PREFIX + 8 + length :]


def _write(env, name: str, content: bytes):
    path = env.folder / name
    path.write_bytes(content)
    return path


def _with_header(env, name, edit, *, forge=True, version=None, raw=None):
    """A copy of the good file with ``edit(header)`` applied; with ``forge`` the checksum is
    recomputed (a deliberately crafted file), with ``raw`` the header bytes are replaced."""
    data, header, body = _parts(env)
    edit(header)
    if forge:
        rest = {k: v for k, v in header.items() if k != "sha256"}
        canonical = json.dumps(rest, sort_keys=True).encode()
        digest = hashlib.sha256(struct.pack("<Q", len(canonical)) + canonical + body)
        header["sha256"] = digest.hexdigest()
    head = json.dumps(header).encode() if raw is None else raw
    magic = data[:_PREFIX] if version is None else skio.MAGIC + bytes([version])
    return _write(env, name, magic + struct.pack("<Q", len(head)) + head + body)


def _pickled(env):
    return base64.b64encode(pickle.dumps(_Payload(env.folder / "ran"))).decode()


def _v3_malicious(h, env):
    del h["prior_info"]
    h["prior"] = _pickled(env)


def _set(**fields):
    return lambda h: h.update(fields)


def _drop(key):
    return lambda h: h.pop(key)


def _wide():
    return dist.Uniform(-5 * jnp.ones(2), 5 * jnp.ones(2)).to_event(1)


def _three():
    return dist.Uniform(-jnp.ones(3), jnp.ones(3)).to_event(1)


def _load_bytes(make):
    """sk.load of a file whose bytes are ``make(bytes of the good file)``."""
    return lambda e: sk.load(_write(e, "bytes.sbi", make(e.good.read_bytes())))


def _load_edited(edit, **kw):
    """sk.load of the good file with its header edited (see ``_with_header``)."""
    return lambda e: sk.load(_with_header(e, "edited.sbi", edit, **kw))


def _header_edited(edit, **kw):
    return lambda e: read_header(_with_header(e, "edited.sbi", edit, **kw))


def _load_with(**kwargs):
    return lambda e: sk.load(e.good, **{k: v() if callable(v) else v for k, v in kwargs.items()})


def _save_to(where, posterior=None, **kwargs):
    return lambda e: sk.save(where(e), e.posterior if posterior is None else posterior, **kwargs)


_OS_SYSTEM_CONFIG = lambda h: h["config"].update({"__class__": "os:system"})
_EVAL_CALIBRATION = _set(calibration={"__class__": "builtins:eval", "data": {}})
_LOW = lambda h: h["prior"]["params"]["base_dist"]["params"]["low"]
_NORMAL = lambda: dist.Normal(jnp.zeros(2), 1.0).to_event(1)

# (case, call, exception type, fragment of the message)
CASES = [
    # --- sk.save ---
    ("save/posterior-dict", _save_to(lambda e: e.folder / "a.sbi", {"net": 1}), TypeError,
     "`posterior` must be a trained sbi_kit posterior"),
    ("save/posterior-none", lambda e: sk.save(e.folder / "a.sbi", None), TypeError,
     "`posterior` must be a trained sbi_kit posterior"),
    ("save/path-int", _save_to(lambda e: 3), TypeError, "`path` must be a file name"),
    ("save/path-none", _save_to(lambda e: None), TypeError, "`path` must be a file name"),
    ("save/path-folder", _save_to(lambda e: e.folder), IsADirectoryError, "is a folder"),
    ("save/missing-folder", _save_to(lambda e: e.folder / "no" / "a.sbi"), FileNotFoundError,
     "does not exist"),
    ("save/allow_pickle-str", _save_to(lambda e: e.folder / "a.sbi", allow_pickle="yes"),
     TypeError, "`allow_pickle` must be True or False"),
    # --- sk.load: arguments ---
    ("load/path-int", lambda e: sk.load(3), TypeError, "`path` must be a file name"),
    ("load/path-bytes", lambda e: sk.load(b"a.sbi"), TypeError, "`path` must be a file name"),
    ("load/missing-file", lambda e: sk.load(e.folder / "missing.sbi"), FileNotFoundError,
     "no file at `path`"),
    ("load/path-folder", lambda e: sk.load(e.folder), IsADirectoryError, "is a folder"),
    ("load/prior-a-string", _load_with(prior="uniform"), TypeError,
     "`prior` must be a numpyro distribution"),
    ("load/allow_pickle-int", _load_with(allow_pickle=1), TypeError,
     "`allow_pickle` must be True or False"),
    ("load/check_prior-none", _load_with(check_prior=None), TypeError,
     "`check_prior` must be True or False"),
    # --- sk.load: damaged and foreign files ---
    ("load/empty", _load_bytes(lambda b: b""), LoadError, "is empty"),
    ("load/magic-only", _load_bytes(lambda b: b[:9]), LoadError, "truncated"),
    ("load/truncated-header", _load_bytes(lambda b: b[:40]), LoadError,
     "header runs past the end"),
    ("load/truncated-body", _load_bytes(lambda b: b[:-10]), LoadError, "truncated or padded"),
    ("load/padded", _load_bytes(lambda b: b + b"\0"), LoadError, "truncated or padded"),
    ("load/foreign", _load_bytes(lambda b: b"PK\x03\x04" + bytes(40)), LoadError,
     "not an sbi_kit posterior"),
    ("load/newer-version", _load_bytes(lambda b: b[: _PREFIX - 1] + b"\x63" + b[_PREFIX:]),
     LoadError, "format version 99"),
    ("load/flipped-bit", _load_bytes(lambda b: b[:-20] + bytes([b[-20] ^ 1]) + b[-19:]),
     LoadError, "checksum"),
    ("load/tampered-header", _load_edited(_set(dim_theta=3), forge=False), LoadError,
     "checksum over its header and arrays"),
    ("load/header-not-json", _load_edited(_set(), raw=b"{no"), LoadError, "corrupted header"),
    ("load/header-not-utf8", _load_edited(_set(), raw=b"\xff\xfe"), LoadError,
     "corrupted header"),
    ("load/header-json-list", _load_edited(_set(), raw=b"[1, 2]"), LoadError,
     "a JSON list, not an object"),
    ("load/header-no-body_length", _load_edited(_drop("body_length")), LoadError,
     "`body_length`"),
    ("load/header-no-prior", _load_edited(_drop("prior")), LoadError, "lacks ['prior']"),
    ("load/header-no-config", _load_edited(_drop("config")), LoadError, "lacks ['config']"),
    ("load/header-no-prior_info", _load_edited(_drop("prior_info")), LoadError,
     "lacks ['prior_info']"),
    ("load/dim_theta-string", _load_edited(_set(dim_theta="2")), LoadError, "`dim_theta`"),
    ("load/x_shape-negative", _load_edited(_set(x_shape=[-2])), LoadError, "`x_shape`"),
    ("load/x_constant-out-of-range", _load_edited(_set(x_constant=[2])), LoadError,
     "`x_constant` is [2], not a list of component indices"),
    ("load/x_constant-string", _load_edited(_set(x_constant="0")), LoadError, "`x_constant`"),
    ("load/config-list", _load_edited(_set(config=[1])), LoadError,
     "`config` is not an object"),
    ("load/history-list", _load_edited(_set(history=[1])), LoadError, "`history`"),
    ("load/history-fields", _load_edited(_set(history={"bogus": 1})), LoadError,
     "history or calibration report cannot be read"),
    ("load/calibration-number", _load_edited(_set(calibration=1)), LoadError, "`calibration`"),
    ("load/prior-pickle-string-in-v4", _load_edited(_set(prior="gASV")), LoadError,
     "`prior` is neither an object"),
    # --- sk.load: forged content (with a consistent checksum) ---
    ("load/forged-config-class", _load_edited(_OS_SYSTEM_CONFIG), LoadError,
     "refusing to build 'os:system'"),
    ("load/forged-calibration-class", _load_edited(_EVAL_CALIBRATION), LoadError,
     "refusing to build 'builtins:eval'"),
    ("load/forged-prior-class", _load_edited(lambda h: h["prior"].update(distribution="eval")),
     LoadError, "'eval' is not one of the stored distributions"),
    ("load/forged-prior-values", _load_edited(lambda h: _LOW(h).update(shape=[3])), LoadError,
     "its prior cannot be rebuilt"),
    ("load/forged-prior-dtype", _load_edited(lambda h: _LOW(h).update(dtype="object")),
     LoadError, "dtype 'object'"),
    ("load/forged-prior-event-shape",
     _load_edited(lambda h: h["prior"]["params"].update(reinterpreted_batch_ndims=0)),
     LoadError, "event shape"),
    ("load/malicious-pickle-v3", lambda e: sk.load(_with_header(
        e, "v3.sbi", lambda h: _v3_malicious(h, e), version=3)), LoadError,
     "allow_pickle=True"),
    ("load/malicious-pickle-v4", lambda e: sk.load(_with_header(
        e, "v4.sbi", _set(prior=None, prior_pickle=_pickled(e)))), LoadError,
     "only as a pickle"),
    ("load/no-prior-stored", _load_edited(_set(prior=None)), LoadError,
     "sk.load(path, prior=...)"),
    # --- sk.load: a given prior that does not match the file ---
    ("load/prior-wider-support", _load_with(prior=_wide), LoadError, "`prior` does not match"),
    ("load/prior-other-family", _load_with(prior=_NORMAL), LoadError, "`prior` does not match"),
    ("load/prior-event-shape", _load_with(prior=_three), LoadError,
     "`prior` has event shape (3,)"),
    ("load/prior-event-shape-unchecked", _load_with(prior=_three, check_prior=False),
     LoadError, "over 2 parameters"),
    # --- read_header ---
    ("read_header/path-none", lambda e: read_header(None), TypeError, "read_header: `path`"),
    ("read_header/missing", lambda e: read_header(e.folder / "nothing.sbi"), FileNotFoundError,
     "no file at `path`"),
    ("read_header/folder", lambda e: read_header(e.folder), IsADirectoryError, "is a folder"),
    ("read_header/truncated", lambda e: read_header(_write(e, "t.sbi", e.good.read_bytes()[:-1])),
     LoadError, "truncated"),
    ("read_header/json-list", _header_edited(_set(), raw=b"[]"), LoadError, "not an object"),
    ("read_header/no-x_shape", _header_edited(_drop("x_shape")), LoadError,
     "lacks ['x_shape']"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("call", "error", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_raises_a_clear_error(env, call, error, fragment):
    with pytest.raises(error) as info:
        call(env)
    assert type(info.value) is error, f"{type(info.value).__name__}: {info.value}"
    assert fragment in str(info.value)
    assert not (env.folder / "ran").exists(), "a pickle in the file was run"


def test_the_good_file_loads_and_nothing_was_left_behind(env):
    """The cases above leave the good file loadable, and no failed save leaves a temporary."""
    loaded = sk.load(env.good)
    x_o = jnp.array([0.2, -0.1])
    assert (
        loaded.sample(jax.random.key(0), x_o, 5) == env.posterior.sample(jax.random.key(0), x_o, 5)
    ).all()
    assert not list(env.folder.glob(".*.sbi.*"))
