"""The bar distribution of PFNs and its bucket borders: numbers against quadrature, Monte Carlo
and an independent NumPy/SciPy implementation of the density (float32, JAX's default)."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest
from numpyro.infer.util import log_density
from scipy import stats

from sbi_kit.pfn._bar import BarDistribution, bucket_borders

PHI_INV_075 = stats.norm.ppf(0.75)


def random_bar(seed: int, num_buckets: int = 10, batch: tuple[int, ...] = ()):
    """Logits and borders with unequal widths (borders shared by the batch)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.5, (*batch, num_buckets)).astype(np.float32)
    widths = rng.uniform(0.2, 2.0, num_buckets)
    borders = (np.concatenate([[0.0], np.cumsum(widths)]) - 3.0).astype(np.float32)
    return logits, borders


def reference_log_prob(logits, borders, y):
    """The density written out independently (one example, float64): uniform inner buckets,
    scipy's half-normal for the tails."""
    logits, b, y = (np.asarray(a, dtype=np.float64) for a in (logits, borders, y))
    log_p = logits - np.logaddexp.reduce(logits)
    k = len(logits)
    s_left, s_right = (b[1] - b[0]) / PHI_INV_075, (b[-1] - b[-2]) / PHI_INV_075
    out = np.empty_like(y)
    for i, v in enumerate(y):
        if v < b[1]:
            out[i] = log_p[0] + stats.halfnorm.logpdf(b[1] - v, scale=s_left)
        elif v >= b[k - 1]:
            out[i] = log_p[-1] + stats.halfnorm.logpdf(v - b[k - 1], scale=s_right)
        else:
            j = np.searchsorted(b, v, side="right") - 1
            out[i] = log_p[j] - np.log(b[j + 1] - b[j])
    return out


def quadrature(borders: np.ndarray):
    """Gauss-Legendre nodes and weights on every bucket and on the tails out to 40 scales
    (float64), so that the piecewise density is integrated piece by piece."""
    b = np.asarray(borders, dtype=np.float64)
    s_left, s_right = (b[1] - b[0]) / PHI_INV_075, (b[-1] - b[-2]) / PHI_INV_075
    reach = np.array([40.0, 12.0, 5.0, 2.0])
    cuts = np.concatenate([b[1] - s_left * reach, b[1:-1], b[-2] + s_right * reach[::-1]])
    x_ref, w_ref = np.polynomial.legendre.leggauss(32)
    lo, hi = cuts[:-1, None], cuts[1:, None]
    x = (0.5 * (hi - lo) * x_ref + 0.5 * (hi + lo)).ravel()
    w = (0.5 * (hi - lo) * w_ref).ravel()
    return x, w


# ----------------------------------------------------------------------------------------------
# the density
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed, num_buckets", [(1, 2), (2, 3), (3, 50)])
def test_density_integrates_to_one_and_moments_match_quadrature(seed, num_buckets):
    """Quadrature over every bucket and the tails: mass 1, and the analytic mean, variance and
    entropy equal their integrals (tolerance 1e-4, float32 densities)."""
    logits, borders = random_bar(seed, num_buckets)
    d = BarDistribution(logits, borders)
    x, w = quadrature(borders)
    log_f = np.asarray(d.log_prob(jnp.asarray(x, dtype=jnp.float32)), dtype=np.float64)
    f = np.exp(log_f)
    mass = np.sum(w * f)
    mean = np.sum(w * f * x)
    var = np.sum(w * f * (x - mean) ** 2)
    entropy = -np.sum(w * f * log_f)
    analytic = jax.jit(lambda d: (d.mean, d.variance, d.entropy()))(d)  # one compilation
    assert mass == pytest.approx(1.0, abs=1e-4)
    assert float(analytic[0]) == pytest.approx(mean, abs=1e-4 * np.sqrt(var))
    assert float(analytic[1]) == pytest.approx(var, rel=1e-4)
    assert float(analytic[2]) == pytest.approx(entropy, abs=1e-4)


def test_log_prob_matches_an_independent_implementation():
    """Against the density written with scipy's half-normal: inner buckets, both tails, values
    exactly on every border (tolerance 1e-5 relative, float32)."""
    logits, borders = random_bar(4, 8)
    d = BarDistribution(logits, borders)
    y = np.concatenate([np.linspace(-12.0, 16.0, 301), borders]).astype(np.float32)
    got = np.asarray(d.log_prob(y))
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, reference_log_prob(logits, borders, y), rtol=1e-5, atol=1e-5)


def test_tails_are_half_normals_with_median_at_the_outer_borders():
    """Each tail carries its bucket's probability and its median is the outer border: the
    quantile at half a tail's mass is b_0 (left) or b_K (right) (tolerance 1e-5 relative)."""
    logits, borders = random_bar(5, 6)
    d = BarDistribution(logits, borders)
    p = np.asarray(jax.nn.softmax(logits), dtype=np.float64)
    assert float(d.cdf(borders[1])) == pytest.approx(p[0], rel=1e-5)
    assert 1.0 - float(d.cdf(borders[-2])) == pytest.approx(p[-1], rel=1e-4)
    q = jnp.array([p[0] / 2, 1.0 - p[-1] / 2], dtype=jnp.float32)
    np.testing.assert_allclose(d.icdf(q), [borders[0], borders[-1]], rtol=1e-5, atol=1e-5)


def test_icdf_inverts_cdf_including_the_tails():
    """icdf(cdf(y)) = y from deep in the left tail to the right tail (to 2e-4 of the borders'
    range), and cdf(icdf(q)) = q for q from 1e-30 to 1 - 1e-6 (tolerances per line)."""
    logits, borders = random_bar(6, 12)
    d = BarDistribution(logits, borders)
    s = (borders[1] - borders[0]) / PHI_INV_075
    s_right = (borders[-1] - borders[-2]) / PHI_INV_075
    y = np.concatenate(
        [
            borders[1] - s * np.linspace(10.0, 0.0, 50),  # left tail, down to cdf ~ 1e-23
            np.linspace(borders[1], borders[-2], 200),  # inner buckets
            borders[-2] + s_right * np.linspace(0.0, 2.0, 50),  # right tail
        ]
    ).astype(np.float32)
    np.testing.assert_allclose(d.icdf(d.cdf(y)), y, atol=2e-4 * (borders[-1] - borders[0]))

    # all q in one array of the same length as y: one compiled program for each method
    extremes = [1e-37, 1.0 - 2.0**-24, 0.0, 1.0]
    q = np.concatenate(
        [np.logspace(-30, -1, 96), np.linspace(0.01, 0.99, 100), 1.0 - np.logspace(-6, -1, 100)]
    )
    y_q = np.asarray(d.icdf(np.concatenate([q, extremes]).astype(np.float32)))
    back = np.asarray(d.cdf(y_q[:-4]), dtype=np.float64)
    np.testing.assert_allclose(back[:96], q[:96], rtol=1e-4)  # left tail: relative
    np.testing.assert_allclose(back[96:], q[96:], atol=1e-6)  # float32 steps near 1: 6e-8
    assert np.all(np.isfinite(y_q[-4:-2]))  # q = 1e-37 and the largest float32 below 1
    assert y_q[-2] == -np.inf and y_q[-1] == np.inf
    np.testing.assert_array_equal(d.quantile(np.concatenate([q, extremes])), y_q)


def test_far_outside_the_borders_log_prob_is_finite_and_cdf_monotone():
    """log_prob at ±1e6 bucket widths is finite (and matches the Gaussian log density to 1e-5
    relative); the cdf over a grid from -1e7 to 1e7 stays in [0, 1] and never decreases."""
    logits, borders = random_bar(7, 10)
    d = BarDistribution(logits, borders)
    width_left, width_right = borders[1] - borders[0], borders[-1] - borders[-2]
    far = np.array([borders[0] - 1e6 * width_left, borders[-1] + 1e6 * width_right], np.float32)
    lp = np.asarray(d.log_prob(far))
    assert np.all(np.isfinite(lp))
    np.testing.assert_allclose(lp, reference_log_prob(logits, borders, far), rtol=1e-5)

    y = np.concatenate([-np.logspace(7, -3, 400), [0.0], np.logspace(-3, 7, 400), borders]).astype(
        np.float32
    )
    y = np.sort(y)
    c = np.asarray(d.cdf(y))
    assert np.all((c >= 0.0) & (c <= 1.0))
    assert np.all(np.diff(c) >= 0.0)
    assert c[0] == 0.0 and c[-1] == 1.0
    assert float(d.log_prob(jnp.inf)) == -np.inf and float(d.cdf(-jnp.inf)) == 0.0


def test_nan_in_gives_nan_out():
    """NaN in value (or q) is propagated, never turned into a number or an exception."""
    logits, borders = random_bar(8, 5)
    d = BarDistribution(logits, borders)
    values = jnp.array([jnp.nan, 0.0])
    assert np.isnan(d.log_prob(values)[0]) and np.isfinite(d.log_prob(values)[1])
    assert np.isnan(d.cdf(values)[0]) and np.isnan(d.icdf(jnp.array([jnp.nan, 1.5]))).all()
    assert np.isnan(jax.jit(d.log_prob)(values)[0])


def test_gradient_of_the_nll_with_respect_to_logits():
    """The PFN loss -log_prob(y) has gradient softmax(logits) - onehot(bucket of y) in the
    logits, for inner values, tail values far out and values on borders (tolerance 1e-6)."""
    logits, borders = random_bar(19, 6)
    y = np.array([-1e4, borders[0], borders[1], 0.3, borders[-2], 1e4], dtype=np.float32)
    grads = jax.vmap(jax.grad(lambda lg, v: -BarDistribution(lg, borders).log_prob(v)), (None, 0))(
        jnp.asarray(logits), jnp.asarray(y)
    )
    bucket = np.clip(np.searchsorted(borders, y, side="right") - 1, 0, 5)
    want = np.asarray(jax.nn.softmax(logits))[None, :] - np.eye(6)[bucket]
    np.testing.assert_allclose(grads, want, atol=1e-6)


# ----------------------------------------------------------------------------------------------
# moments and sampling
# ----------------------------------------------------------------------------------------------


def test_mean_and_variance_match_monte_carlo():
    """200 000 draws: the sample mean within 4 standard errors of the analytic mean, the sample
    variance within 4 standard errors (from the fourth central moment) of the analytic one."""
    logits, borders = random_bar(9, 10)
    d = BarDistribution(logits, borders)
    n = 200_000
    draws = np.asarray(d.sample(jax.random.key(0), (n,)), dtype=np.float64)
    assert draws.shape == (n,) and np.all(np.isfinite(draws))
    mean, var = float(d.mean), float(d.variance)
    assert abs(draws.mean() - mean) < 4 * np.sqrt(var / n)
    m4 = np.mean((draws - draws.mean()) ** 4)
    assert abs(draws.var() - var) < 4 * np.sqrt((m4 - var**2) / n)


def test_sample_histogram_matches_bucket_probabilities():
    """The share of draws in each bucket (tails: beyond the inner borders) equals softmax(logits)
    within 4 binomial standard errors."""
    logits, borders = random_bar(10, 6)
    d = BarDistribution(logits, borders)
    n = 100_000
    draws = np.asarray(d.sample(jax.random.key(1), (n,)))
    inner = borders[1:-1]
    counts = np.bincount(np.searchsorted(inner, draws, side="right"), minlength=6)
    p = np.asarray(jax.nn.softmax(logits), dtype=np.float64)
    assert np.all(np.abs(counts / n - p) < 4 * np.sqrt(p * (1 - p) / n))


# ----------------------------------------------------------------------------------------------
# batches
# ----------------------------------------------------------------------------------------------


def test_per_parameter_borders_and_logits():
    """Borders (p, K + 1) with logits (p, K): batch shape (p,), and every method equals the
    one-parameter distribution of that row (tolerance 1e-6 relative)."""
    p, k = 3, 7
    rng = np.random.default_rng(11)
    y = rng.normal(size=(5000, p)) * np.array([1.0, 10.0, 0.1]) + np.array([0.0, 5.0, -2.0])
    borders = np.asarray(bucket_borders(y, k, axis=0))
    assert borders.shape == (p, k + 1)
    logits = rng.normal(size=(p, k)).astype(np.float32)
    d = BarDistribution(logits, borders)
    assert d.batch_shape == (p,) and d.event_shape == ()
    values = y[:4].astype(np.float32)  # (4, p): sample shape (4,)
    q = np.array([[0.01], [0.5], [0.999]], dtype=np.float32)  # (3, 1) broadcasts to (3, p)
    names = ("log_prob", "cdf", "icdf", "mean", "variance")
    # one compiled program for the batch and one for the rows (which share their shapes)
    methods = jax.jit(lambda d, v, q: (d.log_prob(v), d.cdf(v), d.icdf(q), d.mean, d.variance))
    got = methods(d, values, q)
    assert got[0].shape == (4, p) and got[2].shape == (3, p) and got[3].shape == (p,)
    for j in range(p):
        want = methods(BarDistribution(logits[j], borders[j]), values[:, j], q[:, 0])
        for name, batched, row in zip(names, got, want, strict=True):
            np.testing.assert_allclose(batched[..., j], row, rtol=1e-6, atol=1e-7, err_msg=name)
    assert d.sample(jax.random.key(2), (5,)).shape == (5, p)


def test_shared_borders_broadcast_against_batched_logits():
    """Borders (K + 1,) shared by logits (2, 3, K): batch shape (2, 3); a scalar value
    broadcasts (log_prob against the independent implementation, 1e-5 relative)."""
    logits, borders = random_bar(12, 5, batch=(2, 3))
    d = BarDistribution(logits, borders)
    assert d.batch_shape == (2, 3) and d.borders.shape == (2, 3, 6)
    got = np.asarray(d.log_prob(0.7))
    want = [reference_log_prob(row, borders, [0.7])[0] for row in logits.reshape(-1, 5)]
    np.testing.assert_allclose(got.ravel(), want, rtol=1e-5)


# ----------------------------------------------------------------------------------------------
# bucket borders
# ----------------------------------------------------------------------------------------------


def test_bucket_borders_give_equal_counts_on_a_normal_sample():
    """On 100 000 normal draws, every one of 20 buckets holds n / K draws up to 2 (the borders
    are the sample's own quantiles); the outer borders are the sample's min and max."""
    y = np.random.default_rng(13).normal(size=100_000)
    k = 20
    borders = np.asarray(bucket_borders(y, k))
    assert borders.shape == (k + 1,) and np.all(np.diff(borders) > 0)
    counts, _ = np.histogram(y, bins=borders.astype(np.float64))
    assert np.all(np.abs(counts - len(y) / k) <= 2), counts
    assert borders[0] == np.float32(y.min()) and borders[-1] == np.float32(y.max())


def test_bucket_borders_drop_non_finite_values_and_break_ties():
    """Non-finite values change nothing; a sample with 40 % zeros still gives strictly increasing
    borders (ties nudged by 1e-6 of the range); any shape of y is flattened."""
    rng = np.random.default_rng(14)
    y = rng.exponential(size=(200, 5))
    with_bad = np.concatenate([y.ravel(), [np.nan, np.inf, -np.inf]])
    np.testing.assert_array_equal(bucket_borders(with_bad, 10), bucket_borders(y, 10))

    ties = np.concatenate([np.zeros(400), rng.uniform(0.0, 1.0, 600)])
    borders = np.asarray(bucket_borders(ties, 10))
    steps = np.diff(borders)
    assert np.all(steps > 0)
    assert borders[0] == 0.0 and np.max(borders[:4]) < 1e-5  # 3 tiny buckets at the zeros
    BarDistribution(np.zeros(10), borders)  # accepted as borders


def test_bucket_borders_per_column():
    """axis=0 on (n, p) equals the flat borders of each column; other axes move to the front."""
    rng = np.random.default_rng(15)
    y = rng.normal(size=(1000, 3)) * np.array([1.0, 5.0, 0.2])
    per_column = bucket_borders(y, 8, axis=0)
    assert per_column.shape == (3, 9)
    for j in range(3):
        np.testing.assert_array_equal(per_column[j], bucket_borders(y[:, j], 8))
    np.testing.assert_array_equal(bucket_borders(y.T, 8, axis=-1), per_column)


# ----------------------------------------------------------------------------------------------
# numpyro, jit, vmap
# ----------------------------------------------------------------------------------------------


def test_numpyro_log_density_of_an_observed_site():
    """numpyro.sample(..., obs=y) in a model scores the sum of the independent implementation's
    log densities (tolerance 1e-5 relative)."""
    logits, borders = random_bar(16, 6, batch=(4,))
    y = np.array([-9.0, 0.1, 1.7, 12.0], dtype=np.float32)

    def model(y=None):
        with numpyro.plate("data", 4):
            numpyro.sample("y", BarDistribution(logits, borders), obs=y)

    got, _ = log_density(model, (), {"y": y}, {})
    want = sum(reference_log_prob(logits[i], borders, y[i : i + 1])[0] for i in range(4))
    assert float(got) == pytest.approx(want, rel=1e-5)


def test_jit_and_vmap_over_the_distribution():
    """The distribution is a pytree: jit of log_prob / cdf / icdf / sample equals the eager
    values (1e-6 relative), and vmap over a batched distribution equals its batched log_prob."""
    logits, borders = random_bar(17, 9, batch=(5,))
    d = BarDistribution(logits, borders)
    y = jnp.linspace(-4.0, 9.0, 5)
    q = jnp.linspace(0.05, 0.95, 5)
    key = jax.random.key(3)
    jitted = jax.jit(lambda d, y, q, k: (d.log_prob(y), d.cdf(y), d.icdf(q), d.sample(k, (2,))))
    eager = (d.log_prob(y), d.cdf(y), d.icdf(q), d.sample(key, (2,)))
    for a, b in zip(jitted(d, y, q, key), eager, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(lambda d, y: d.log_prob(y))(d, y), eager[0], rtol=1e-6)
    made_in_jit = jax.jit(lambda lg, b, y: BarDistribution(lg, b).log_prob(y))(logits, borders, y)
    np.testing.assert_allclose(made_in_jit, eager[0], rtol=1e-6)


def test_validate_args_keeps_numpyro_semantics():
    """validate_args=True rejects a non-finite logit with numpyro's message; False accepts it."""
    logits = np.array([0.0, np.nan, 1.0], dtype=np.float32)
    borders = np.array([0.0, 1.0, 2.0, 3.0], dtype=np.float32)
    with pytest.raises(ValueError, match="invalid logits parameter"):
        BarDistribution(logits, borders, validate_args=True)
    assert np.isnan(BarDistribution(logits, borders, validate_args=False).log_prob(1.5))


# ----------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------

Y = np.random.default_rng(18).normal(size=(200, 2))
GOOD_BORDERS = np.arange(4.0)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: bucket_borders(Y, 1), ValueError, "`num_buckets` must be an int >= 2, got 1"),
        (lambda: bucket_borders(Y, 4.0), TypeError, "`num_buckets` must be an int >= 2, got float"),
        (lambda: bucket_borders(Y, True), TypeError, "`num_buckets`.*got bool"),
        (lambda: bucket_borders(np.arange(7.0), 4), ValueError, "`y` must hold at least 2 \\*"),
        (lambda: bucket_borders(np.full(50, np.nan), 4), ValueError, "`y` must.*got 0 \\(of 50\\)"),
        (lambda: bucket_borders(np.ones(50), 4), ValueError, "`y` must.*two distinct"),
        (lambda: bucket_borders(["a"] * 50, 4), TypeError, "`y` must hold real numbers"),
        (lambda: bucket_borders(Y + 1j, 4), TypeError, "`y` must hold real numbers"),
        (lambda: jax.jit(lambda y: bucket_borders(y, 4))(Y), TypeError, "`y` must hold concrete"),
        (lambda: bucket_borders(Y, 4, axis=2), ValueError, "`axis` must be in \\[-2, 2\\)"),
        (lambda: bucket_borders(Y, 4, axis="0"), TypeError, "`axis` must be an int or None"),
        (
            lambda: bucket_borders(np.c_[Y[:, 0], np.ones(200)], 4, axis=0),
            ValueError,
            "`y` \\(at position 1 of the axes other than axis=0\\)",
        ),
        (lambda: BarDistribution(np.zeros(3), np.arange(3.0)), ValueError, "`borders` must have"),
        (lambda: BarDistribution(np.zeros(1), np.arange(2.0)), ValueError, "`logits`.*K >= 2"),
        (lambda: BarDistribution(0.0, np.arange(2.0)), ValueError, "`logits` must have shape"),
        (lambda: BarDistribution(np.zeros(3), 0.0), ValueError, "`borders` must have shape"),
        (
            lambda: BarDistribution(np.zeros(3), [0.0, 1.0, 1.0, 2.0]),
            ValueError,
            "`borders` must be strictly increasing",
        ),
        (
            lambda: BarDistribution(np.zeros(3), [0.0, 1.0, np.inf, 2.0]),
            ValueError,
            "`borders` must be finite",
        ),
        (
            lambda: BarDistribution(np.zeros((2, 3)), np.tile(GOOD_BORDERS, (3, 1))),
            ValueError,
            "batch shapes of `logits` \\(2,\\) and `borders` \\(3,\\)",
        ),
        (lambda: BarDistribution("abc", GOOD_BORDERS), TypeError, "`logits` must"),
        (lambda: BarDistribution(np.zeros(3) + 1j, GOOD_BORDERS), TypeError, "`logits` must hold"),
        (lambda: BarDistribution(np.zeros(3), [object()] * 4), TypeError, "`borders` must"),
    ],
)
def test_bad_input_is_refused_with_the_argument_named(call, error, match):
    with pytest.raises(error, match=match):
        call()
