"""Optimal (Bayesian-quadrature) weights: exact on the kernel's span, closed-form kernel means."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

import sbi_kit as sk

D = sk.diagnostics
BASES = {"uniform": sk.simulators.UniformBase(), "gaussian": sk.simulators.GaussianBase()}


def _gram(u, ell):
    """The Gram matrix in NumPy float64 (eager jnp would compile each op for each shape)."""
    u, ell = np.asarray(u, dtype=np.float64), float(ell)
    return np.exp(-np.sum((u[:, None] - u[None]) ** 2, axis=-1) / (2 * ell**2))


@pytest.mark.parametrize(
    ("name", "d", "m"), [("uniform", 1, 30), ("uniform", 2, 100), ("gaussian", 2, 100)]
)
def test_weights_integrate_the_kernel_span_exactly(name, d, m):
    # f = Σ_j a_j c(·, u_j) has ∫ f dU = Σ_j a_j z_j; the weights must reproduce it
    base = BASES[name]
    rng = np.random.default_rng(d * m)  # NumPy draws: no per-shape compilation
    with jax.enable_x64(True):
        u = jnp.asarray(
            rng.uniform(size=(m, d)) if name == "uniform" else rng.standard_normal((m, d)),
            dtype=jnp.float64,
        )
        w = D.optimal_weights(u, base=base)
        assert w.dtype == jnp.float64 and w.shape == (m,)
        ell = D.median_heuristic(u)
        a = rng.standard_normal(m)
        f_at_u = _gram(u, ell) @ a
        z = np.asarray(D.kernel_mean(u, ell, base))
        exact = z @ a
        w = np.asarray(w)
        np.testing.assert_allclose(float(w @ f_at_u), float(exact), rtol=1e-6, atol=1e-6)
        # also for a single kernel function c(·, u_k) at every node k
        np.testing.assert_allclose(w @ _gram(u, ell), z, atol=1e-6)
    # without x64 the solve still runs in float64 and the weights come back as float32
    w32 = D.optimal_weights(np.asarray(u, dtype=np.float32), base=base)
    assert w32.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(w32), np.asarray(w), rtol=1e-3, atol=1e-5)


def test_kernel_means_match_numerical_integration():
    ell = 0.3
    u = jnp.array([[0.0], [0.2], [0.9]])
    z = np.asarray(D.kernel_mean(u, ell, BASES["uniform"]))
    for i, ui in enumerate(np.asarray(u)[:, 0]):
        ref, _ = integrate.quad(lambda v, ui=ui: np.exp(-((v - ui) ** 2) / (2 * ell**2)), 0, 1)
        np.testing.assert_allclose(z[i], ref, rtol=1e-5)
    # Gaussian base in 2-d by a product Gauss–Hermite rule (exact to high order)
    nodes, weights = np.polynomial.hermite_e.hermegauss(60)
    weights = weights / weights.sum()
    v1, v2 = np.meshgrid(nodes, nodes, indexing="ij")
    ww = np.outer(weights, weights)
    pts = jnp.array([[0.0, 0.0], [1.0, -0.5], [2.0, 2.0]])
    z = np.asarray(D.kernel_mean(pts, 0.8, BASES["gaussian"]))
    for i, p in enumerate(np.asarray(pts)):
        ref = np.sum(ww * np.exp(-((v1 - p[0]) ** 2 + (v2 - p[1]) ** 2) / (2 * 0.8**2)))
        np.testing.assert_allclose(z[i], ref, rtol=1e-5)


def test_weights_are_reused_across_theta():
    # one set of weights from u serves every θ: the weighted mean of G_θ(u) estimates E[x]
    sim = sk.simulators.g_and_k()
    u = sim.sample_base(jax.random.key(0), 128)
    w = D.optimal_weights(u, base=sim.base)
    for theta in ([3.0, 1.0, 0.0, 0.0], [1.0, 2.0, 0.0, 0.0]):
        x = sim.generate(jnp.array(theta), u)[:, 0]
        # with g = k = 0, x = A + B z, so E[x] = A
        assert abs(float(w @ x) - theta[0]) < 0.02 * theta[1]


def test_bad_inputs():
    for old, new in (("uniform", "UniformBase"), ("gaussian", "GaussianBase")):
        with pytest.raises(TypeError, match=rf"optimal_weights: `base`.*{new}\(\).*got str"):
            D.optimal_weights(jnp.zeros((3, 1)) + 0.5, base=old)
        with pytest.raises(TypeError, match=rf"kernel_mean: `base`.*{new}\(\).*got str"):
            D.kernel_mean(jnp.zeros((3, 1)) + 0.5, 1.0, old)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        D.optimal_weights(jnp.array([[0.5], [1.5]]))
    # a Gaussian base takes any finite draws
    assert D.optimal_weights(jnp.array([[0.5], [1.5]]), base=BASES["gaussian"]).shape == (2,)
    with pytest.raises(ValueError, match="NaN or inf"):
        D.optimal_weights(jnp.array([[0.5], [jnp.nan]]))
    with pytest.raises(ValueError, match="lengthscale"):
        D.optimal_weights(jnp.array([[0.5], [0.2]]), lengthscale=-1.0)
