import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

import sbi_kit as sk
from sbi_kit.io import LoadError, read_header


def test_save_load_gives_bit_identical_samples(gaussian_npe, tmp_path):
    path = tmp_path / "posterior.sbi"
    sk.save(path, gaussian_npe)
    loaded = sk.load(path)
    x_o = jnp.array([0.3, -0.2])
    a = gaussian_npe.sample(jax.random.key(5), x_o, 1000)
    b = loaded.sample(jax.random.key(5), x_o, 1000)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(gaussian_npe.log_prob(a[:10], x_o), loaded.log_prob(a[:10], x_o))
    assert loaded.history == gaussian_npe.history
    assert loaded.method == gaussian_npe.method
    header = read_header(path)
    assert header["method"] == "NPE" and header["format_version"] == 4
    assert header["prior"]["distribution"] == "Independent" and "prior_pickle" not in header
    assert header["library_version"] == sk.__version__
    assert header["dim_theta"] == 2 and header["x_shape"] == [2]
    assert not list(tmp_path.glob(".posterior.sbi.*"))  # no temporary file is left behind


def test_load_rejects_truncated_corrupted_and_foreign_files(gaussian_npe, tmp_path):
    path = tmp_path / "p.sbi"
    sk.save(path, gaussian_npe)
    data = path.read_bytes()
    (tmp_path / "short.sbi").write_bytes(data[: len(data) - 100])
    with pytest.raises(LoadError, match="truncated"):
        sk.load(tmp_path / "short.sbi")
    (tmp_path / "head.sbi").write_bytes(data[:30])
    with pytest.raises(LoadError, match="truncated"):
        sk.load(tmp_path / "head.sbi")
    flipped = bytearray(data)
    flipped[-50] ^= 0xFF
    (tmp_path / "bad.sbi").write_bytes(bytes(flipped))
    with pytest.raises(LoadError, match="checksum"):
        sk.load(tmp_path / "bad.sbi")
    (tmp_path / "foreign.sbi").write_bytes(b"PK\x03\x04 this is a zip file, not a posterior")
    with pytest.raises(LoadError, match="not an sbi_kit posterior"):
        sk.load(tmp_path / "foreign.sbi")
    newer = bytearray(data)
    newer[7] = 99
    (tmp_path / "newer.sbi").write_bytes(bytes(newer))
    with pytest.raises(LoadError, match="format version 99"):
        sk.load(tmp_path / "newer.sbi")


def _model_simulator(sd=1.0):
    def local_model(x=None):  # a local function: not data, and it cannot be pickled
        m = numpyro.sample("m", dist.Normal(0.0, sd))
        numpyro.sample("x", dist.Normal(m, 0.5).expand([2]).to_event(1), obs=x)

    return sk.from_numpyro(local_model, observed="x")


def _model_posterior():
    sim = _model_simulator()
    theta, x = sk.simulate(jax.random.key(0), sim, 300)
    npe = sk.NPE(
        flow=sk.estimators.MAF(layers=1, width=8, depth=1), training=sk.Training(max_epochs=2)
    )
    return sim, npe.fit(jax.random.key(1), theta, x, prior=sim.prior, progress=False)


def test_a_numpyro_model_prior_is_not_stored_and_must_be_given_at_load(tmp_path):
    """A model is code: save warns, the file holds no prior, load needs prior=... (checked)."""
    sim, post = _model_posterior()
    with pytest.warns(UserWarning, match=r"numpyro model .*local_model.*sk.load\(path, prior="):
        sk.save(tmp_path / "m.sbi", post)
    header = read_header(tmp_path / "m.sbi")
    assert header["prior"] is None and "prior_pickle" not in header
    assert header["prior_info"]["support"]["sites"][0]["name"] == "m"
    with pytest.raises(LoadError, match=r"does not hold its prior.*prior=\.\.\."):
        sk.load(tmp_path / "m.sbi")
    with pytest.raises(LoadError, match="does not hold its prior"):
        sk.load(tmp_path / "m.sbi", allow_pickle=True)  # there is nothing to unpickle
    loaded = sk.load(tmp_path / "m.sbi", prior=sim.prior)
    x_o = jnp.array([0.1, 0.2])
    np.testing.assert_array_equal(
        post.sample(jax.random.key(2), x_o, 50), loaded.sample(jax.random.key(2), x_o, 50)
    )
    # the same model with a wider prior: the site's distribution (from one trace) differs
    wider = _model_simulator(sd=5.0)
    with pytest.raises(LoadError, match=r"site_distributions\[0\].*scale"):
        sk.load(tmp_path / "m.sbi", prior=wider.prior)
    forced = sk.load(tmp_path / "m.sbi", prior=wider.prior, check_prior=False)
    assert forced.prior.model is wider.prior.model
    # allow_pickle=True cannot help a local function: said at save time
    with pytest.warns(UserWarning, match="cannot be pickled either"):
        sk.save(tmp_path / "m2.sbi", post, allow_pickle=True)
    assert "prior_pickle" not in read_header(tmp_path / "m2.sbi")


def _main_model(x=None):
    m = numpyro.sample("m", dist.Normal(0.0, 1.0))
    numpyro.sample("x", dist.Normal(m, 0.5).expand([2]).to_event(1), obs=x)


def test_a_pickled_prior_from_main_warns_and_needs_allow_pickle(tmp_path, monkeypatch):
    """A model defined in a script pickles by reference to __main__: saving with
    allow_pickle=True warns that another process cannot unpickle it."""
    import sys

    monkeypatch.setattr(_main_model, "__module__", "__main__")
    monkeypatch.setattr(sys.modules["__main__"], "_main_model", _main_model, raising=False)
    sim = sk.from_numpyro(_main_model, observed="x")
    npe = sk.NPE(flow=sk.estimators.MAF(layers=1, width=8, depth=1))
    post = npe.init(jax.random.key(0), 1, (2,), sim.prior)
    with pytest.warns(UserWarning, match=r"refers to code in __main__"):
        sk.save(tmp_path / "main.sbi", post, allow_pickle=True)
    assert isinstance(read_header(tmp_path / "main.sbi")["prior_pickle"], str)
    with pytest.raises(LoadError, match=r"only as a pickle.*allow_pickle=True"):
        sk.load(tmp_path / "main.sbi")
    assert sk.load(tmp_path / "main.sbi", allow_pickle=True).prior.site_names == ("m",)
    monkeypatch.delattr(sys.modules["__main__"], "_main_model")  # as in another process
    with pytest.raises(LoadError, match=r"cannot be unpickled in this process.*prior=\.\.\."):
        sk.load(tmp_path / "main.sbi", allow_pickle=True)


def test_save_rejects_non_posteriors(tmp_path):
    with pytest.raises(TypeError, match="trained sbi_kit posterior"):
        sk.save(tmp_path / "x.sbi", {"not": "a posterior"})


def _uniform_posterior():
    prior = dist.Uniform(jnp.array([-1.0, 0.0]), jnp.array([2.0, 3.0])).to_event(1)
    sim = sk.Simulator(prior, lambda key, th: th + 0.3 * jax.random.normal(key, (2,)))
    theta, x = sk.simulate(jax.random.key(0), sim, 500)
    npe = sk.NPE(
        flow=sk.estimators.MAF(layers=1, width=8, depth=1), training=sk.Training(max_epochs=2)
    )
    return npe.fit(jax.random.key(1), theta, x, prior=prior, progress=False)


def test_load_does_not_depend_on_numpyro_flattening_order(tmp_path, monkeypatch):
    """Regression: numpyro flattens a distribution in an order set by Python's string hashing
    (it differs between processes), so a prior stored as leaves came back with ``low`` and
    ``high`` swapped in some processes. Here the other order is forced by hand."""
    posterior = _uniform_posterior()
    path = tmp_path / "uniform.sbi"
    sk.save(path, posterior)
    x_o = jnp.array([0.5, 1.0])
    here = posterior.sample(jax.random.key(3), x_o, 500)
    order = dist.Uniform.gather_pytree_data_fields()
    assert len(order) > 1
    monkeypatch.setattr(
        dist.Uniform, "gather_pytree_data_fields", classmethod(lambda cls: order[::-1])
    )
    loaded = sk.load(path)
    np.testing.assert_array_equal(loaded.sample(jax.random.key(3), x_o, 500), here)
    np.testing.assert_array_equal(loaded.prior.base_dist.low, jnp.array([-1.0, 0.0]))


def test_format_version_1_files_are_still_read(tmp_path):
    """Version 1 stored the prior's leaves in the body too; they are skipped on reading."""
    import base64
    import io as _io
    import json
    import pickle
    import struct

    import equinox as eqx

    import sbi_kit.io as skio

    posterior = _uniform_posterior()
    path = tmp_path / "v2.sbi"
    sk.save(path, posterior)
    header = read_header(path)
    del header["prior_info"]
    body = _io.BytesIO()
    eqx.tree_serialise_leaves(body, posterior)  # the whole posterior, as version 1 wrote it
    header.update(
        prior=base64.b64encode(pickle.dumps(posterior.prior)).decode(),  # version 1 pickled it
        format_version=1,
        body_length=len(body.getvalue()),
        body_sha256=__import__("hashlib").sha256(body.getvalue()).hexdigest(),
    )
    head = json.dumps(header).encode()
    v1 = tmp_path / "v1.sbi"
    v1.write_bytes(skio.MAGIC + b"\x01" + struct.pack("<Q", len(head)) + head + body.getvalue())
    x_o = jnp.array([0.5, 1.0])
    with pytest.raises(LoadError, match="format version 1.*allow_pickle=True"):
        sk.load(v1)
    np.testing.assert_array_equal(
        sk.load(v1, allow_pickle=True).sample(jax.random.key(3), x_o, 200),
        posterior.sample(jax.random.key(3), x_o, 200),
    )


def _rewrite_header(path, out, edit, *, forge_checksum=False, version=None):
    """Writes ``path`` to ``out`` with ``edit(header)`` applied (and the format version byte set
    to ``version`` if given). With ``forge_checksum`` the checksum is recomputed as
    docs/save-load.md describes it (SHA-256 over the 8-byte length of the canonical header
    without its checksum, that header, and the body)."""
    import hashlib
    import json
    import struct

    import sbi_kit.io as skio

    data = path.read_bytes()
    prefix = len(skio.MAGIC) + 1
    (length,) = struct.unpack("<Q", data[prefix : prefix + 8])
    header = json.loads(data[prefix + 8 : prefix + 8 + length])
    body = data[prefix + 8 + length :]
    edit(header)
    if forge_checksum:
        rest = {k: v for k, v in header.items() if k != "sha256"}
        canonical = json.dumps(rest, sort_keys=True).encode()
        digest = hashlib.sha256(struct.pack("<Q", len(canonical)) + canonical + body)
        header["sha256"] = digest.hexdigest()
    head = json.dumps(header).encode()
    magic = data[:prefix] if version is None else skio.MAGIC + bytes([version])
    out.write_bytes(magic + struct.pack("<Q", len(head)) + head + body)


def test_an_edited_header_is_detected(gaussian_npe, tmp_path):
    """Version 3's checksum covers the header: editing the flow's configuration (which would
    load and sample differently) or the history is refused like a flipped bit in the arrays."""
    path = tmp_path / "p.sbi"
    sk.save(path, gaussian_npe)
    _rewrite_header(path, tmp_path / "same.sbi", lambda h: None)  # re-serialised, unchanged
    assert sk.load(tmp_path / "same.sbi").history == gaussian_npe.history
    edits = {
        "interval": lambda h: h["config"]["flow"].update(interval=3.0),
        "history": lambda h: h["history"].update(best_epoch=0),
        "calibration": lambda h: h.update(calibration=None, library_version="9"),
    }
    for name, edit in edits.items():
        _rewrite_header(path, tmp_path / f"{name}.sbi", edit)
        with pytest.raises(LoadError, match="checksum over its header and arrays"):
            sk.load(tmp_path / f"{name}.sbi")


@pytest.mark.parametrize(
    "target", ["sbi_kit.io:os.getcwd", "os:system", "sbi_kit.io:LoadError", "nowhere:X"]
)
def test_configuration_names_only_known_classes(gaussian_npe, tmp_path, target):
    """A file cannot make load call an arbitrary function: only configuration classes already
    defined in the process resolve (nothing is imported), even with a consistent checksum."""
    path = tmp_path / "p.sbi"
    sk.save(path, gaussian_npe)
    edit = lambda h: h["config"].update({"__class__": target})
    _rewrite_header(path, tmp_path / "forged.sbi", edit, forge_checksum=True)
    with pytest.raises(LoadError, match="refusing to build"):
        sk.load(tmp_path / "forged.sbi")


def test_files_written_by_the_previous_version_load_bit_identically():
    """tests/data/npe_two_moons_v2.sbi was written by sbi_kit before the method interface
    (format version 2; a Rejection NSF ensemble of 2 on two_moons, 5 epochs); the expected draws
    were taken from that posterior before it was saved. The arrays load bit for bit (the
    log-densities match to float32 rounding); the draws match to 2e-6, not bit for bit, since
    the flows' inverse computes only the coordinate it needs in each step (a smaller matrix
    product, rounded differently; sbi_kit/estimators/_autoregressive.py)."""
    from pathlib import Path

    data = Path(__file__).parent / "data"
    posterior = sk.load(data / "npe_two_moons_v2.sbi", allow_pickle=True)
    expected = np.load(data / "npe_two_moons_v2_expected.npz")
    x_o = sk.tasks.get("two_moons").observation(1)
    samples = posterior.sample(jax.random.key(2), x_o, 500)
    np.testing.assert_allclose(samples[:100], expected["samples"], rtol=0, atol=2e-6)
    log_prob = posterior.log_prob(samples[:50], x_o)[:10]  # evaluated on 50 rows, as saved
    np.testing.assert_allclose(log_prob, expected["log_prob"], rtol=1e-6)
    assert read_header(data / "npe_two_moons_v2.sbi")["format_version"] == 2
    assert posterior.history.stop_reason == sk.StopReason.MAX_EPOCHS
    assert posterior.ensemble_size == 2 and isinstance(
        posterior.method.support, sk.inference.Rejection
    )


def test_files_written_by_the_previous_version_need_allow_pickle():
    """Format 2 pickled the prior: a default load refuses to unpickle it and says why and what
    to pass; the prior can also be given (checked against the posterior's dimension)."""
    from pathlib import Path

    path = Path(__file__).parent / "data" / "npe_two_moons_v2.sbi"
    with pytest.raises(LoadError) as info:
        sk.load(path)
    message = str(info.value)
    assert "format version 2" in message and "allow_pickle=True" in message
    assert "run arbitrary code" in message and "prior=..." in message
    task = sk.tasks.get("two_moons")
    x_o = task.observation(1)
    given = sk.load(path, prior=task.prior)
    pickled = sk.load(path, allow_pickle=True)
    np.testing.assert_array_equal(
        given.sample(jax.random.key(2), x_o, 20), pickled.sample(jax.random.key(2), x_o, 20)
    )
    with pytest.raises(LoadError, match=r"event shape \(3,\)"):
        sk.load(path, prior=dist.Uniform(-jnp.ones(3), jnp.ones(3)).to_event(1))


class _Payload:
    """Unpickling this runs code: it writes the file ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"__import__('pathlib').Path({self.marker!r}).write_text('ran')",))


@pytest.mark.parametrize("version", [3, 4])
def test_a_malicious_pickle_does_not_run_on_a_default_load(gaussian_npe, tmp_path, version):
    """A crafted file (consistent checksum) whose prior is a pickle that runs code: a default
    load refuses it without unpickling; only an explicit allow_pickle=True runs it."""
    import base64
    import pickle

    path, forged, marker = tmp_path / "p.sbi", tmp_path / "forged.sbi", tmp_path / "ran"
    sk.save(path, gaussian_npe)
    payload = base64.b64encode(pickle.dumps(_Payload(marker))).decode()

    def edit(header):
        if version == 3:
            del header["prior_info"]
            header["prior"] = payload
        else:
            header.update(prior=None, prior_pickle=payload)

    _rewrite_header(path, forged, edit, forge_checksum=True, version=version)
    with pytest.raises(LoadError, match="allow_pickle=True"):
        sk.load(forged)
    assert not marker.exists()
    sk.load(forged, prior=gaussian_npe.prior)  # a given prior needs no unpickling
    assert not marker.exists()
    read_header(forged)
    assert not marker.exists()
    with pytest.raises(LoadError, match="not a numpyro distribution"):
        sk.load(forged, allow_pickle=True)  # the test's payload is live: it runs when allowed
    assert marker.read_text() == "ran"


_Z, _O = np.zeros(2, np.float32), np.ones(2, np.float32)
_COV = np.array([[2.0, 0.3], [0.3, 1.0]], np.float32)
_T = dist.transforms
_PRIORS = {  # built in the test, so that collecting the tests builds none
    "Uniform": lambda: dist.Uniform(-jnp.ones(2), jnp.ones(2)).to_event(1),
    "Normal-floats": lambda: dist.Normal(0.0, 1.0).expand([2]).to_event(1),
    "Normal-numpy": lambda: dist.Normal(_Z, np.float32(0.3)).to_event(1),
    "LogNormal": lambda: dist.LogNormal(jnp.asarray(_Z), 0.5).to_event(1),
    "HalfNormal": lambda: dist.HalfNormal(jnp.asarray(_O)).to_event(1),
    "Gamma": lambda: dist.Gamma(2.0 * jnp.asarray(_O), 1.0).to_event(1),
    "Beta": lambda: dist.Beta(jnp.asarray(2 * _O), jnp.asarray(3 * _O)).to_event(1),
    "StudentT": lambda: dist.StudentT(3.0, jnp.asarray(_Z), 1.0).to_event(1),
    "MVN-precision": lambda: dist.MultivariateNormal(_Z, precision_matrix=jnp.asarray(_COV)),
    "MVN-covariance": lambda: dist.MultivariateNormal(_Z, covariance_matrix=jnp.asarray(_COV)),
    "TruncatedNormal": lambda: dist.TruncatedNormal(
        jnp.asarray(_Z), 1.0, low=-1.0, high=2.0
    ).to_event(1),
    "Transformed": lambda: dist.TransformedDistribution(
        dist.Normal(jnp.asarray(_Z), 1.0).to_event(1),
        [_T.AffineTransform(1.0, 2.0), _T.ExpTransform(), _T.ExpTransform().inv],
    ),
    "Transformed-domain": lambda: dist.TransformedDistribution(
        dist.Uniform(jnp.asarray(_Z), 1.0),
        _T.AffineTransform(_Z, 2.0, domain=dist.constraints.interval(0.0, 1.0)),
    ).to_event(1),
    "bernoulli_glm": lambda: sk.tasks.get("bernoulli_glm").prior,
}


@pytest.mark.parametrize("name", list(_PRIORS))
def test_priors_are_stored_as_data_and_rebuild_identically(name):
    """The allow-listed priors go through JSON and come back with the same structure and
    bit-identical parameters (float32 values as JSON numbers round-trip through Python floats),
    hence the same densities and draws."""
    import json

    from sbi_kit import _prior_json

    prior = _PRIORS[name]()
    description = json.loads(json.dumps(_prior_json.describe(prior)))
    rebuilt = _prior_json.build(description)
    assert type(rebuilt) is type(prior) and _prior_json.identical(prior, rebuilt)
    d = prior.event_shape[0]
    points = _T.biject_to(prior.support)(jnp.linspace(-1.0, 1.0, 3 * d).reshape(3, d))
    np.testing.assert_array_equal(rebuilt.log_prob(points), prior.log_prob(points))


def test_priors_off_the_list_are_not_data():
    from sbi_kit import _prior_json

    class MyNormal(dist.Normal):  # a subclass may change anything: not stored as a Normal
        pass

    for prior, reason in [
        (MyNormal(jnp.zeros(2), 1.0).to_event(1), "MyNormal"),
        (dist.Normal(jnp.zeros(2), 1.0).mask(jnp.array([True, False])).to_event(1), "Masked"),
    ]:
        with pytest.raises(_prior_json.NotData, match=reason):
            _prior_json.describe(prior)


def _saved(tmp_path, prior, name="u.sbi"):
    """An untrained posterior with ``prior``, saved (enough to check what load does with it)."""
    npe = sk.NPE(flow=sk.estimators.MAF(layers=1, width=8, depth=1))
    path = tmp_path / name
    sk.save(path, npe.init(jax.random.key(0), prior.event_shape[0], (2,), prior))
    return path


def test_a_given_prior_is_checked_against_the_saved_one(tmp_path):
    o = jnp.ones(2)
    path = _saved(tmp_path, dist.Uniform(-o, o).to_event(1))
    same = dist.Uniform(-1.0, 1.0).expand([2]).to_event(1)  # written differently, same prior
    assert sk.load(path, prior=same).prior.base_dist.batch_shape == (2,)
    wide = dist.Uniform(-5.0 * o, 5.0 * o).to_event(1)  # samples over ±5 instead of ±1
    with pytest.raises(LoadError, match=r"`prior` does not match.*bound.*check_prior=False"):
        sk.load(path, prior=wide)
    forced = sk.load(path, prior=wide, check_prior=False)
    np.testing.assert_array_equal(forced.prior.base_dist.high, 5.0 * o)
    with pytest.raises(LoadError, match=r"does not match.*'interval'.*'real'"):
        sk.load(path, prior=dist.Normal(0.0 * o, o).to_event(1))
    three = dist.Uniform(-jnp.ones(3), jnp.ones(3)).to_event(1)
    for check in (True, False):  # the posterior's dimension is never overridden
        with pytest.raises(LoadError, match=r"event shape \(3,\).*over 2 parameters"):
            sk.load(path, prior=three, check_prior=check)


def test_a_given_prior_with_the_same_support_is_checked_by_its_density(tmp_path):
    cov = jnp.array([[2.0, 0.3], [0.3, 1.0]])
    path = _saved(tmp_path, dist.MultivariateNormal(jnp.zeros(2), covariance_matrix=cov))
    same = dist.MultivariateNormal(jnp.zeros(2), precision_matrix=jnp.linalg.inv(cov))
    sk.load(path, prior=same)
    with pytest.raises(LoadError, match="does not match.*density differs"):
        sk.load(path, prior=dist.MultivariateNormal(jnp.zeros(2), covariance_matrix=25 * cov))
    with pytest.raises(LoadError, match="does not match.*density differs"):
        sk.load(path, prior=dist.Normal(jnp.zeros(2), 1.0).to_event(1))


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_saved_files_honour_the_umask(tmp_path, umask):
    import os
    import stat

    prior = dist.Uniform(-jnp.ones(2), jnp.ones(2)).to_event(1)
    path = _saved(tmp_path, prior)  # written once, then rewritten under the umask
    previous = os.umask(umask)
    try:
        sk.save(path, sk.load(path))
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
