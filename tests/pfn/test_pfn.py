"""sk.PFN: the attention pattern, training towards an analytic posterior predictive, resume,
the .pfn file, the shipped models and the bad-input behaviour of predict."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sbi_kit as sk
from sbi_kit.pfn import AbstractDatasetPrior, Dataset, PFNTransformer
from sbi_kit.pfn._file import PFNFileError, load_pfn_file, save_pfn_file

PRIOR_SD, NOISE_SD = 1.0, 0.5


class GaussianMeanPrior(AbstractDatasetPrior):
    """y_i = mu + noise, mu ~ N(0, 1): the posterior predictive is Gaussian and known."""

    input_dim: int = 1

    @property
    def parameter_names(self):
        return ("mu",)

    def sample(self, key, num_points):
        k1, k2, k3 = jax.random.split(key, 3)
        mu = PRIOR_SD * jax.random.normal(k1)
        x = jax.random.uniform(k2, (num_points, 1))
        y = mu + NOISE_SD * jax.random.normal(k3, (num_points,))
        return Dataset(x, y, mu[None])


def exact(y_context):
    """Posterior of mu and posterior predictive of a new y given the context."""
    n = len(y_context)
    var = 1.0 / (1.0 / PRIOR_SD**2 + n / NOISE_SD**2)
    mean = var * np.sum(y_context) / NOISE_SD**2
    return mean, var, var + NOISE_SD**2


TINY = sk.PFN(
    width=16,
    depth=1,
    num_heads=2,
    hidden=32,
    num_buckets=16,
    num_parameter_buckets=8,
    max_context=6,
    batch_size=8,
    steps_per_call=10,
    border_samples=2000,
)


@pytest.fixture(scope="module")
def trained():
    """A small PFN trained on the Gaussian-mean prior (with the parameter head)."""
    config = sk.PFN(
        width=32,
        depth=2,
        num_heads=2,
        hidden=64,
        num_buckets=64,
        num_parameter_buckets=32,
        max_context=10,
        batch_size=64,
        steps_per_call=100,
        learning_rate=3e-3,
        border_samples=20_000,
    )
    return config.fit(jax.random.key(0), GaussianMeanPrior(), steps=600, progress=False)


def test_trained_pfn_approaches_the_analytic_posterior_predictive(trained):
    """Over 200 held-out datasets with 0-10 context points, the PFN's predictive NLL of a new
    point is within 0.05 nats of the exact predictive's, and its mean and sd are close (90 % of
    means within 0.25 predictive sd; a few datasets with |mu| > 2 lie where the 20,000 border
    samples put few buckets)."""
    rng = np.random.default_rng(1)
    gaps, mean_err, sd_ratio = [], [], []
    for i in range(200):
        n = i % 11  # padded to 10 points with a mask: one compiled shape
        mu = rng.normal() * PRIOR_SD
        y = mu + NOISE_SD * rng.normal(size=n + 1)
        x_pad, y_pad = rng.random((10, 1)), np.append(y[:n], np.zeros(10 - n))
        d = trained.predict(x_pad, y_pad, [[0.5]], context_mask=np.arange(10) < n)
        m, _, v = exact(y[:n])
        exact_nll = 0.5 * np.log(2 * np.pi * v) + (y[n] - m) ** 2 / (2 * v)
        gaps.append(-float(d.log_prob(jnp.asarray([y[n]]))[0]) - exact_nll)
        mean_err.append(abs(float(d.mean[0]) - m) / np.sqrt(v))
        sd_ratio.append(float(jnp.sqrt(d.variance[0])) / np.sqrt(v))
    gap = np.mean(gaps)
    stderr = np.std(gaps) / np.sqrt(len(gaps))
    assert gap < 0.05 + 3 * stderr, (gap, stderr)
    assert np.quantile(mean_err, 0.9) < 0.25, np.quantile(mean_err, 0.9)
    assert 0.8 < np.median(sd_ratio) < 1.25, np.median(sd_ratio)


def test_parameter_head_approaches_the_analytic_posterior_of_mu(trained):
    """Over 200 datasets, the parameter head's NLL of the true mu is within 0.25 nats of the
    exact posterior's (measured 0.17 ± 0.03: 32 buckets and 600 steps shared with the
    predictive head; the numpyro-model benchmark trains longer)."""
    rng = np.random.default_rng(2)
    gaps = []
    for i in range(200):
        n = 1 + i % 10
        mu = rng.normal() * PRIOR_SD
        y = np.append(mu + NOISE_SD * rng.normal(size=n), np.zeros(10 - n))
        post = trained.parameter_posterior(rng.random((10, 1)), y, context_mask=np.arange(10) < n)
        assert post.batch_shape == (1,)
        m, v, _ = exact(y[:n])
        exact_nll = 0.5 * np.log(2 * np.pi * v) + (mu - m) ** 2 / (2 * v)
        gaps.append(-float(post.log_prob(jnp.asarray([mu]))[0]) - exact_nll)
    gap, stderr = np.mean(gaps), np.std(gaps) / np.sqrt(len(gaps))
    assert gap < 0.25, (gap, stderr)


@pytest.fixture(scope="module")
def net():
    """A small network, called through jit (one compilation per shape)."""
    module = PFNTransformer(
        jax.random.key(0),
        input_dim=2,
        num_buckets=10,
        width=16,
        depth=2,
        num_heads=2,
        hidden=32,
        num_parameters=3,
    )
    return eqx.filter_jit(lambda *args: module(*args))


def _data(key, n, m):
    k1, k2, k3 = jax.random.split(key, 3)
    return (
        jax.random.normal(k1, (n, 2)),
        jax.random.normal(k2, (n,)),
        jax.random.normal(k3, (m, 2)),
    )


def test_queries_do_not_see_each_other(net):
    xc, yc, xq = _data(jax.random.key(1), 7, 4)
    mask = jnp.ones(7, bool)
    logits, _ = net(xc, yc, mask, xq)
    changed, _ = net(xc, yc, mask, xq.at[0].set(5.0))
    np.testing.assert_array_equal(changed[1:], logits[1:])
    assert np.abs(changed[0] - logits[0]).max() > 1e-3
    alone, _ = net(xc, yc, mask, xq[2:3])
    np.testing.assert_allclose(alone[0], logits[2], atol=1e-5)


def test_output_is_invariant_to_permuting_the_context(net):
    xc, yc, xq = _data(jax.random.key(2), 9, 3)
    mask = jnp.ones(9, bool)
    perm = np.random.default_rng(0).permutation(9)
    a, pa = net(xc, yc, mask, xq)
    b, pb = net(xc[perm], yc[perm], mask, xq)
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(pa, pb, atol=1e-5)


def test_masked_padding_equals_the_shorter_context_and_empty_context_works(net):
    xc, yc, xq = _data(jax.random.key(3), 5, 2)
    short, _ = net(xc, yc, jnp.ones(5, bool), xq)
    padded_x = jnp.concatenate([xc, jnp.full((3, 2), jnp.nan)])
    padded_y = jnp.concatenate([yc, jnp.full(3, jnp.nan)])
    mask = jnp.arange(8) < 5
    padded, _ = net(padded_x, padded_y, mask, xq)
    np.testing.assert_allclose(padded, short, atol=1e-5)
    masked_all, _ = net(xc, yc, jnp.zeros(5, bool), xq)
    empty, _ = net(xc[:0], yc[:0], jnp.zeros(0, bool), xq)
    np.testing.assert_allclose(masked_all, empty, atol=1e-5)
    assert np.isfinite(empty).all()
    # A batch of datasets with different context sizes, by vmap over the mask.
    batch = jax.vmap(lambda *a: net(*a), in_axes=(None, None, 0, None))(
        padded_x, padded_y, jnp.stack([mask, jnp.arange(8) < 2]), xq
    )[0]
    np.testing.assert_allclose(batch[0], short, atol=1e-5)
    two, _ = net(xc[:2], yc[:2], jnp.ones(2, bool), xq)
    np.testing.assert_allclose(batch[1], two, atol=1e-5)


def test_bfloat16_matmuls_stay_close_to_float32():
    args = dict(input_dim=2, num_buckets=10, width=16, depth=2, num_heads=2, hidden=32)
    f32 = PFNTransformer(jax.random.key(0), **args)
    bf16 = PFNTransformer(jax.random.key(0), matmul_dtype="bfloat16", **args)
    xc, yc, xq = _data(jax.random.key(4), 6, 3)
    call = eqx.filter_jit(lambda net, *a: net(*a))
    a, _ = call(f32, xc, yc, jnp.ones(6, bool), xq)
    b, _ = call(bf16, xc, yc, jnp.ones(6, bool), xq)
    assert b.dtype == jnp.float32
    np.testing.assert_allclose(a, b, atol=0.05)


@pytest.mark.slow
def test_resume_continues_bit_for_bit(tmp_path):
    key, prior = jax.random.key(5), GaussianMeanPrior()
    whole = TINY.fit(key, prior, steps=40, progress=False)
    path = tmp_path / "run.ckpt"
    first = TINY.fit(key, prior, steps=40, checkpoint=path, stop_after=20, progress=False)
    assert (first.steps_done, first.complete) == (20, False)
    resumed = TINY.fit(key, prior, steps=40, resume_from=path, progress=False)
    assert resumed.complete and resumed.steps_done == 40
    for a, b in zip(jax.tree.leaves(whole.net), jax.tree.leaves(resumed.net), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert [h[:2] for h in resumed.history] == [h[:2] for h in whole.history]
    with pytest.raises(ValueError, match="steps"):
        TINY.fit(key, prior, steps=50, resume_from=path, progress=False)
    with pytest.raises(ValueError, match="key"):
        TINY.fit(jax.random.key(6), prior, steps=40, resume_from=path, progress=False)


def test_file_round_trip_and_damage(tmp_path, trained):
    path = tmp_path / "m.pfn"
    save_pfn_file(path, trained)
    loaded = load_pfn_file(path).trained
    x, y, q = [[0.1], [0.7]], [0.4, 0.6], [[0.3], [0.9]]
    np.testing.assert_array_equal(
        np.asarray(loaded.predict(x, y, q).logits), np.asarray(trained.predict(x, y, q).logits)
    )
    assert loaded.config == trained.config and loaded.history == trained.history
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(PFNFileError, match="checksum"):
        load_pfn_file(path)
    path.write_bytes(b"not a pfn file at all")
    with pytest.raises(PFNFileError, match="magic"):
        load_pfn_file(path)


def test_checkpoint_settings_are_checked():
    """The predict/extrapolate/settings rows are in tests/test_bad_input.py (PFN_ROWS)."""
    with pytest.raises(ValueError, match="checkpoint_every must be a multiple of steps_per_call"):
        TINY.fit(jax.random.key(0), GaussianMeanPrior(), steps=10, checkpoint_every=15)
    with pytest.raises(ValueError, match="stop_after must be a positive integer"):
        TINY.fit(jax.random.key(0), GaussianMeanPrior(), steps=10, stop_after=0)


def test_context_values_outside_the_training_range_warn_and_far_queries_are_finite(trained):
    with pytest.warns(UserWarning, match="1 context value"):
        d = trained.predict([[0.1], [0.2]], [0.3, 50.0], [[0.5]])
    assert np.isfinite(np.asarray(d.mean)).all()
    far = trained.predict([[0.1]], [0.3], [[0.5]])
    assert np.isfinite(np.asarray(far.log_prob(jnp.asarray([1e4])))).all()


SHARDED = """
import jax, numpy as np, sys
sys.path.insert(0, sys.argv[2])
from tests.pfn.test_pfn import TINY, GaussianMeanPrior
assert len(jax.devices()) == 2, jax.devices()
import sbi_kit as sk
assert sk.training.data_sharding() is not None
trained = TINY.fit(jax.random.key(5), GaussianMeanPrior(), steps=20, progress=False)
leaves = [np.asarray(a) for a in jax.tree.leaves(trained.net)]
np.savez(sys.argv[1], *leaves, loss=np.array([h[1] for h in trained.history]))
"""


@pytest.mark.slow
def test_training_is_data_parallel_over_two_devices(tmp_path):
    """On 2 (host) devices each batch is sharded; losses and parameters match one device to
    float tolerance (reductions run in another order; Adam's normalised steps carry the
    differences of ~1e-6 in the gradients into parameter differences of up to ~5e-4 after 20
    steps of size 1e-3)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    out = tmp_path / "sharded.npz"
    subprocess.run(
        [sys.executable, "-c", SHARDED, str(out), str(repo)], check=True, env=env, cwd=repo
    )
    single = TINY.fit(jax.random.key(5), GaussianMeanPrior(), steps=20, progress=False)
    sharded = np.load(out)
    leaves = [np.asarray(a) for a in jax.tree.leaves(single.net)]
    assert len(leaves) == len(sharded.files) - 1
    np.testing.assert_allclose(sharded["loss"], [h[1] for h in single.history], rtol=1e-4)
    for i, leaf in enumerate(leaves):
        np.testing.assert_allclose(sharded[f"arr_{i}"], leaf, atol=2e-3)


def test_pretrained_models_load_offline_and_predict():
    """The shipped files load from the package (no network) and predict sensibly: the GP-PFN's
    NLL on 20 datasets of its prior with 10 context points is within 0.2 nats of the exact GP's
    (benchmarks/results/pfn_gp.md has the full comparison)."""
    assert sk.pfn.pretrained_names() == ("gp", "lc")
    gp = sk.PFN.pretrained("gp")
    assert gp.input_dim == 1 and gp.max_context == 50
    assert gp.metadata["script"] == "benchmarks/train_pfn.py" and gp.metadata["seed"] == 0
    kernel = sk.pfn.RBF(lengthscale=0.2, outputscale=1.0)
    prior = sk.pfn.GPPrior(kernel, noise_std=0.1)
    data = jax.vmap(lambda k: prior.sample(k, 15))(jax.random.split(jax.random.key(3), 20))
    gaps = []
    for x, y in zip(np.asarray(data.x), np.asarray(data.y), strict=True):
        d = gp.predict(x[:10], y[:10], x[10:])
        m, v = sk.pfn.gp_predictive(kernel, 0.1, x[:10], y[:10], x[10:])
        exact = np.mean(0.5 * np.log(2 * np.pi * v) + (y[10:] - m) ** 2 / (2 * v))
        gaps.append(-float(d.log_prob(jnp.asarray(y[10:])).mean()) - exact)
    assert np.mean(gaps) < 0.2, np.mean(gaps)
    lc = sk.PFN.pretrained("lc")
    curve = 0.8 - 0.5 * np.arange(1, 31) ** -0.7
    e = sk.pfn.extrapolate(lc, curve, horizon=60)
    assert e.epochs.tolist() == list(range(31, 61))
    assert np.all(np.diff(e.quantiles, axis=0) >= 0)
    assert abs(float(e.mean[-1]) - (0.8 - 0.5 * 60**-0.7)) < 0.1


def test_predict_batched_equals_predict_per_dataset():
    gp = sk.PFN.pretrained("gp")
    rng = np.random.default_rng(4)
    x, y, q = rng.random((3, 6, 1)), rng.normal(size=(3, 6)), rng.random((3, 2, 1))
    mask = np.arange(6) < np.array([[6], [3], [0]])
    y_padded = np.where(mask, y, np.nan)
    batched = gp.predict_batched(x, y_padded, q, context_mask=mask)
    assert batched.batch_shape == (3, 2)
    for b in range(3):
        n = int(mask[b].sum())
        single = gp.predict(x[b, :n], y[b, :n], q[b])
        np.testing.assert_allclose(
            np.asarray(batched.logits[b]), np.asarray(single.logits), atol=1e-4
        )
    with pytest.raises(ValueError, match="a context has 51 points"):
        gp.predict_batched(np.zeros((2, 51, 1)), np.zeros((2, 51)), np.zeros((2, 1, 1)))
    with pytest.raises(ValueError, match="must hold the same number of points for every dataset"):
        gp.predict_batched(np.zeros((2, 5, 1)), np.zeros((3, 5)), np.zeros((2, 1, 1)))


def test_extrapolation_probability_above_is_the_final_epochs_upper_tail():
    lc = sk.PFN.pretrained("lc")
    e = sk.pfn.extrapolate(lc, 0.8 - 0.5 * np.arange(1, 21) ** -0.7, levels=(0.1, 0.5, 0.9))
    final = e.predictive.cdf(jnp.full(len(e.epochs), 0.75, jnp.float32))[-1]
    assert e.probability_above(0.75) == pytest.approx(1.0 - float(final), abs=1e-6)
    # Its own quantiles: P(y_100 > q_0.1) = 0.9 and P(y_100 > q_0.9) = 0.1.
    assert e.probability_above(float(e.quantiles[0, -1])) == pytest.approx(0.9, abs=1e-3)
    assert e.probability_above(float(e.quantiles[2, -1])) == pytest.approx(0.1, abs=1e-3)
    assert e.probability_above(float(e.quantiles[1, 9]), epoch=30) == pytest.approx(0.5, abs=1e-3)
    with pytest.raises(ValueError, match="`epoch` must be one of the predicted epochs 21..100"):
        e.probability_above(0.5, epoch=5)
