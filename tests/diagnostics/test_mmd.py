"""MMD estimators, kernels and the permutation test, against closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sbi_kit as sk
from sbi_kit.diagnostics import _mmd

D = sk.diagnostics
ELL = 1.0
U, V, LINEAR = D.UStatistic(), D.VStatistic(), D.LinearStatistic()


def exact_mmd2(mu_x, sd_x, mu_y, sd_y, d, ell=ELL):
    """MMD² between N(mu_x, sd_x² I_d) and N(mu_y, sd_y² I_d) for the Gaussian kernel."""

    def mean_k(mu_a, var_a, mu_b, var_b):
        s = ell**2 + var_a + var_b
        return (ell**2 / s) ** (d / 2) * np.exp(-np.sum((mu_a - mu_b) ** 2) / (2 * s))

    mu_x, mu_y = np.full(d, mu_x), np.full(d, mu_y)
    return (
        mean_k(mu_x, sd_x**2, mu_x, sd_x**2)
        + mean_k(mu_y, sd_y**2, mu_y, sd_y**2)
        - 2 * mean_k(mu_x, sd_x**2, mu_y, sd_y**2)
    )


@pytest.fixture(scope="module")
def repeats():
    """2,000 independent pairs of samples: x ~ N(0, I₂) (m = 20), y ~ N(0.5, 1.5² I₂) (n = 30)."""
    kx, ky = jax.random.split(jax.random.key(0))
    x = jax.random.normal(kx, (2000, 20, 2))
    y = 0.5 + 1.5 * jax.random.normal(ky, (2000, 30, 2))
    return x, y, exact_mmd2(0.0, 1.0, 0.5, 1.5, 2)


@pytest.mark.parametrize("estimator", [U, LINEAR], ids=["u", "linear"])
def test_unbiased_estimators(repeats, estimator):
    x, y, exact = repeats
    kernel = D.GaussianKernel(ELL)
    est = jax.vmap(lambda a, b: D.mmd(a, b, kernel=kernel, estimator=estimator))(x, y)
    est = np.asarray(est, dtype=np.float64)
    se = est.std(ddof=1) / np.sqrt(len(est))
    assert abs(est.mean() - exact) < 3 * se, (est.mean(), exact, se)


def test_v_statistic_is_biased_upward_by_its_diagonal(repeats):
    x, y, exact = repeats
    kernel = D.GaussianKernel(ELL)
    est = np.asarray(jax.vmap(lambda a, b: D.mmd(a, b, kernel=kernel, estimator=V))(x, y))
    # E[V] − MMD² = (1 − E k(x, x'))/m + (1 − E k(y, y'))/n
    bias = (1 - ELL**2 / (ELL**2 + 2)) / 20 + (1 - ELL**2 / (ELL**2 + 2 * 1.5**2)) / 30
    se = est.std(ddof=1) / np.sqrt(len(est))
    assert abs(est.mean() - exact - bias) < 3 * se
    assert est.mean() - exact > 10 * se


def _normal(rng, shape, shift=0.0):
    """Test data drawn with NumPy: an eager jax.random.normal compiles once per shape."""
    return jnp.asarray(rng.standard_normal(shape) + shift, dtype=jnp.float32)


def test_weighted_estimator_with_equal_weights_is_the_v_statistic():
    rng = np.random.default_rng(1)
    x, y = _normal(rng, (40, 3)), _normal(rng, (50, 3), 0.3)
    kernel = D.MaternKernel(2.5, lengthscale=1.3)
    v = D.mmd(x, y, kernel=kernel, estimator=V)
    w = D.mmd(x, y, kernel=kernel, estimator=V, weights=jnp.full(40, 1 / 40))
    np.testing.assert_allclose(float(w), float(v), rtol=1e-5)
    u = D.mmd(x, y, kernel=kernel, estimator=U)
    w_u = D.mmd(x, y, kernel=kernel, weights=jnp.full(40, 1 / 40))  # U-statistic y–y term
    # the two differ only in the x–x diagonal term: (k(0) − mean K_xx^{≠})/m
    gram = np.asarray(kernel.gram(x, x), dtype=np.float64)
    off = (gram.sum() - 40) / (40 * 39)
    np.testing.assert_allclose(float(w_u) - float(u), (1 - off) / 40, rtol=1e-4, atol=1e-6)


def test_blocked_sums_match_direct(monkeypatch):
    rng = np.random.default_rng(2)
    x, y = _normal(rng, (37, 2)), _normal(rng, (53, 2))
    wx = jnp.asarray(rng.uniform(size=37), dtype=jnp.float32)
    kernel = D.GaussianKernel(0.7)
    pairs = {
        "xx": (x, x, wx, wx),
        "yy": (y, y, jnp.ones(53), jnp.ones(53)),
        "xy": (x, y, wx, jnp.ones(53) / 53),
    }

    def reference(a, b, wa, wb):  # float64, from the closed form of the kernel
        a, b, wa, wb = (np.asarray(v, dtype=np.float64) for v in (a, b, wa, wb))
        sq = ((a[:, None] - b[None]) ** 2).sum(-1)
        return wa @ np.exp(-sq / (2 * 0.7**2)) @ wb

    direct = {k: float(_mmd.kernel_sum(kernel, *v)) for k, v in pairs.items()}
    # an estimate is within(x) + within(y) − 2·cross, kernel means of a few tenths each
    terms = {
        e: (
            float(e.within(kernel, x)),
            float(e.within(kernel, y)),
            float(_mmd.kernel_sum(kernel, x, y, jnp.ones(37) / 37, jnp.ones(53) / 53)),
        )
        for e in (U, V)
    }
    estimates = {e: float(e.estimate(kernel, x, y)) for e in (U, V)}
    # 150 entries per block: 4 rows of x against x, 2 rows against y (all with padding)
    monkeypatch.setattr(_mmd, "_DIRECT", 150)
    blocked = {k: float(_mmd.kernel_sum(kernel, *v)) for k, v in pairs.items()}
    # each sum is of positive terms, so a relative tolerance is meaningful: a block dropped,
    # counted twice or a padded row with non-zero weight shifts a sum by ≥ 1/53 of it
    for k, v in pairs.items():
        np.testing.assert_allclose(blocked[k], reference(*v), rtol=1e-5, err_msg=k)
        np.testing.assert_allclose(direct[k], reference(*v), rtol=1e-5, err_msg=k)
    # the estimates are differences of such terms and nearly 0 here (x and y from one
    # distribution): a relative tolerance on them is meaningless, so the tolerance is
    # relative to the size of the terms that make them up
    for e in (U, V):
        xx, yy, xy = terms[e]
        np.testing.assert_allclose(estimates[e], xx + yy - 2 * xy, rtol=0, atol=1e-6)
        np.testing.assert_allclose(
            float(e.estimate(kernel, x, y)),
            estimates[e],
            rtol=0,
            atol=1e-5 * (abs(xx) + abs(yy) + 2 * abs(xy)),
            err_msg=repr(e),
        )


def test_kernels_closed_forms():
    a, b = jnp.array([0.0, 0.0]), jnp.array([1.0, 2.0])  # ‖a − b‖² = 5
    np.testing.assert_allclose(float(D.GaussianKernel(2.0)(a, b)), np.exp(-5 / 8), rtol=1e-6)
    r = np.sqrt(5) / 2.0
    np.testing.assert_allclose(float(D.MaternKernel(0.5, 2.0)(a, b)), np.exp(-r), rtol=1e-6)
    np.testing.assert_allclose(
        float(D.MaternKernel(1.5, 2.0)(a, b)),
        (1 + np.sqrt(3) * r) * np.exp(-np.sqrt(3) * r),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        float(D.MaternKernel(2.5, 2.0)(a, b)),
        (1 + np.sqrt(5) * r + 5 * r**2 / 3) * np.exp(-np.sqrt(5) * r),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        float(D.IMQKernel(2.0, c=1.0, beta=0.5)(a, b)), (1 + 5 / 4) ** -0.5, rtol=1e-6
    )
    # gram agrees with pairwise calls; gradients are finite at zero distance
    pts = _normal(np.random.default_rng(0), (5, 2))
    for kern in (D.GaussianKernel(1.0), D.MaternKernel(1.5, 1.0), D.IMQKernel(1.0)):
        pair = jax.vmap(lambda p, k=kern: jax.vmap(lambda q: k(p, q))(pts))(pts)
        np.testing.assert_allclose(np.asarray(kern.gram(pts, pts)), np.asarray(pair), atol=1e-5)
        g = jax.grad(lambda p, k=kern: k(p, p))(pts[0])
        assert np.isfinite(np.asarray(g)).all()
    with pytest.raises(ValueError, match="nu"):
        D.MaternKernel(2.0)


def test_median_heuristic():
    z = np.random.default_rng(0).normal(size=(300, 3))
    sq = ((z[:, None] - z[None]) ** 2).sum(-1)[np.triu_indices(300, 1)]
    np.testing.assert_allclose(float(D.median_heuristic(z)), np.sqrt(np.median(sq) / 2), rtol=1e-5)
    # the default kernel in mmd uses it on the pooled sample
    x, y = z[:150], z[150:] + 1.0
    ell = float(D.median_heuristic(np.concatenate([x, y])))
    np.testing.assert_allclose(
        float(D.mmd(x, y)), float(D.mmd(x, y, kernel=D.GaussianKernel(ell))), rtol=1e-5
    )


def test_permutation_test():
    rng = np.random.default_rng(3)
    x, y = _normal(rng, (60, 2)), _normal(rng, (70, 2), 1.0)
    for est in (U, V, LINEAR):
        stat, p = D.mmd_test(jax.random.key(4), x, y, estimator=est, num_permutations=127)
        np.testing.assert_allclose(float(stat), float(D.mmd(x, y, estimator=est)), rtol=1e-5)
        if est != LINEAR:  # nothing permuted beats a shift of one standard deviation
            assert float(p) == pytest.approx(1 / 128)
        assert float(p) < 0.05
    # under the null the p-value is uniform: 100 independent null tests, vmapped
    data = _normal(np.random.default_rng(5), (100, 40, 2))
    ps = np.asarray(
        jax.vmap(lambda k, d: D.mmd_test(k, d[:20], d[20:], num_permutations=127)[1])(
            jax.random.split(jax.random.key(6), 100), data
        )
    )
    assert abs(ps.mean() - 0.5) < 3 * np.sqrt(1 / 12 / 100)
    assert np.mean(ps <= 0.05) <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 100)


def test_bad_inputs_raise_clear_errors():
    x = jnp.zeros((10, 2))
    with pytest.raises(ValueError, match="same dimension"):
        D.mmd(x, jnp.zeros((10, 3)))
    for old, new in (("u", "UStatistic"), ("v", "VStatistic"), ("linear", "LinearStatistic")):
        with pytest.raises(TypeError, match=rf"`estimator`.*got str '{old}'.*{new}\(\)"):
            D.mmd(x, x, estimator=old)
        with pytest.raises(TypeError, match=rf"`estimator`.*{new}\(\)"):
            D.mmd_test(jax.random.key(0), x, x, estimator=old)
    with pytest.raises(TypeError, match="estimator"):
        D.mmd(x, x, estimator=D.GaussianKernel())
    with pytest.raises(ValueError, match="NaN or inf"):
        D.mmd(x.at[0, 0].set(jnp.nan), x)
    with pytest.raises(ValueError, match="weights"):
        D.mmd(x, x, weights=jnp.ones(9))
    with pytest.raises(ValueError, match="LinearStatistic"):
        D.mmd(x, x, weights=jnp.ones(10), estimator=LINEAR)
    with pytest.raises(TypeError, match="kernel"):
        D.mmd(x, x, kernel="gaussian")
    with pytest.raises(ValueError, match="at least 2"):
        D.mmd(x[:1], x)
