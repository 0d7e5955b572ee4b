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
    assert header["method"] == "NPE" and header["format_version"] == 2
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
