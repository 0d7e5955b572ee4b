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
    assert header["method"] == "NPE" and header["format_version"] == 3
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


def test_unpicklable_prior_must_be_given_at_load(tmp_path):
    def local_model(x=None):  # a local function cannot be pickled
        m = numpyro.sample("m", dist.Normal(0.0, 1.0))
        numpyro.sample("x", dist.Normal(m, 0.5).expand([2]).to_event(1), obs=x)

    sim = sk.from_numpyro(local_model, observed="x")
    theta, x = sk.simulate(jax.random.key(0), sim, 300)
    npe = sk.NPE(
        flow=sk.estimators.MAF(layers=1, width=8, depth=1), training=sk.Training(max_epochs=2)
    )
    post = npe.fit(jax.random.key(1), theta, x, prior=sim.prior, progress=False)
    sk.save(tmp_path / "m.sbi", post)
    with pytest.raises(LoadError, match="prior=..."):
        sk.load(tmp_path / "m.sbi")
    loaded = sk.load(tmp_path / "m.sbi", prior=sim.prior)
    x_o = jnp.array([0.1, 0.2])
    np.testing.assert_array_equal(
        post.sample(jax.random.key(2), x_o, 50), loaded.sample(jax.random.key(2), x_o, 50)
    )


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
    import io as _io
    import json
    import struct

    import equinox as eqx

    import sbi_kit.io as skio

    posterior = _uniform_posterior()
    path = tmp_path / "v2.sbi"
    sk.save(path, posterior)
    header = read_header(path)
    body = _io.BytesIO()
    eqx.tree_serialise_leaves(body, posterior)  # the whole posterior, as version 1 wrote it
    header.update(
        format_version=1,
        body_length=len(body.getvalue()),
        body_sha256=__import__("hashlib").sha256(body.getvalue()).hexdigest(),
    )
    head = json.dumps(header).encode()
    v1 = tmp_path / "v1.sbi"
    v1.write_bytes(skio.MAGIC + b"\x01" + struct.pack("<Q", len(head)) + head + body.getvalue())
    x_o = jnp.array([0.5, 1.0])
    np.testing.assert_array_equal(
        sk.load(v1).sample(jax.random.key(3), x_o, 200),
        posterior.sample(jax.random.key(3), x_o, 200),
    )


def _rewrite_header(path, out, edit, *, forge_checksum=False):
    """Writes ``path`` to ``out`` with ``edit(header)`` applied. With ``forge_checksum`` the
    checksum is recomputed as docs/save-load.md describes it (SHA-256 over the 8-byte length of
    the canonical header without its checksum, that header, and the body)."""
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
    out.write_bytes(data[:prefix] + struct.pack("<Q", len(head)) + head + body)


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
    were taken from that posterior before it was saved."""
    from pathlib import Path

    data = Path(__file__).parent / "data"
    posterior = sk.load(data / "npe_two_moons_v2.sbi")
    expected = np.load(data / "npe_two_moons_v2_expected.npz")
    x_o = sk.tasks.get("two_moons").observation(1)
    samples = posterior.sample(jax.random.key(2), x_o, 500)
    np.testing.assert_array_equal(samples[:100], expected["samples"])
    log_prob = posterior.log_prob(samples[:50], x_o)[:10]  # evaluated on 50 rows, as saved
    np.testing.assert_allclose(log_prob, expected["log_prob"], rtol=1e-6)
    assert read_header(data / "npe_two_moons_v2.sbi")["format_version"] == 2
    assert posterior.history.stop_reason == sk.StopReason.MAX_EPOCHS
    assert posterior.ensemble_size == 2 and isinstance(
        posterior.method.support, sk.inference.Rejection
    )
