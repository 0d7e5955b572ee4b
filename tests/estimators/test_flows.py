import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sbi_kit as sk

SPECS = [
    sk.estimators.NSF(layers=2, width=16, knots=6),
    sk.estimators.MAF(layers=2, width=16),
    # the coupling flow's 2-d checks are slow (≈ 12 s each on a cold compilation cache); its
    # density still integrates to one in the default run (test_coupling_flow_handles_one_dimension)
    pytest.param(sk.estimators.CouplingNSF(layers=2, width=16, knots=6), marks=pytest.mark.slow),
    sk.estimators.NSF(layers=2, width=16, knots=6, knot_temperature=4.0),
    sk.estimators.NSF(layers=2, width=16, knots=6, affine=True),
    pytest.param(
        sk.estimators.CouplingNSF(layers=2, width=16, knots=6, knot_temperature=4.0),
        marks=pytest.mark.slow,
    ),
]


@pytest.mark.parametrize(
    "spec",
    SPECS,
    ids=lambda s: (
        f"{type(s).__name__}-T{getattr(s, 'knot_temperature', 1.0)}"
        + ("-affine" if getattr(s, "affine", False) else "")
    ),
)
def test_flow_density_integrates_to_one_and_inverts(spec):
    """∫ q(θ | c) dθ = 1 within 1 % on a grid, and sampling inverts the density's map."""
    flow = spec.build(jax.random.key(0), 2, 3)
    condition = jnp.array([0.3, -1.0, 2.0])
    grid = jnp.linspace(-7.0, 7.0, 201)
    points = jnp.stack(jnp.meshgrid(grid, grid), -1).reshape(-1, 2)
    density = jnp.exp(jax.vmap(lambda t: flow.log_prob(t, condition))(points))
    total = float(density.sum() * (grid[1] - grid[0]) ** 2)
    assert abs(total - 1.0) < 0.01
    base = jax.random.normal(jax.random.key(1), (50, 2))
    theta = jax.vmap(lambda u: flow.bijection.transform(u, condition))(base)
    back = jax.vmap(lambda t: flow.bijection.inverse(t, condition))(theta)
    np.testing.assert_allclose(back, base, atol=1e-4)


@pytest.mark.parametrize("dim", [1, 2, 4])
@pytest.mark.parametrize(
    "spec",
    [
        sk.estimators.NSF(layers=2, width=16, knots=6),
        sk.estimators.MAF(layers=2, width=16),
        sk.estimators.NSF(layers=2, width=16, knots=6, affine=True),
    ],
    ids=["NSF", "MAF", "NSF-affine"],
)
def test_autoregressive_inverse_matches_flowjax_on_random_parameters(spec, dim):
    """The one-coordinate-per-step inverse gives flowjax's samples, and inverts the density map.

    The parameters are perturbed so that every spline and affine map is far from the identity
    (at initialisation the conditioners' last layers are zero). Coordinate 0 is computed from
    the context alone (once per call), the others in a scan: dimension 1 has no scan steps.
    """
    from flowjax.bijections import Affine, Chain, RationalQuadraticSpline
    from flowjax.distributions import Normal
    from flowjax.flows import masked_autoregressive_flow

    cond_dim = 3
    ours = spec.build(jax.random.key(0), dim, cond_dim)
    reference = masked_autoregressive_flow(
        jax.random.key(0),
        base_dist=Normal(jnp.zeros(dim)),
        transformer=(
            Affine()
            if isinstance(spec, sk.estimators.MAF)
            else Chain([Affine(), RationalQuadraticSpline(knots=6, interval=5.0)])
            if spec.affine
            else RationalQuadraticSpline(knots=6, interval=5.0)
        ),
        cond_dim=cond_dim,
        flow_layers=2,
        nn_width=16,
        nn_depth=2,
    )

    def perturb(flow):
        leaves, tree = jax.tree_util.tree_flatten(eqx.filter(flow, eqx.is_inexact_array))
        keys = jax.random.split(jax.random.key(3), len(leaves))
        noisy = [a + 0.3 * jax.random.normal(k, a.shape) for a, k in zip(leaves, keys, strict=True)]
        return eqx.combine(jax.tree_util.tree_unflatten(tree, noisy), flow)

    ours, reference = perturb(ours), perturb(reference)
    condition = jnp.array([0.5, -1.0, 2.0])
    draws = ours.sample(jax.random.key(1), (200,), condition=condition)
    expected = reference.sample(jax.random.key(1), (200,), condition=condition)
    np.testing.assert_allclose(draws, expected, atol=1e-4)
    base = jax.vmap(lambda t: ours.bijection.inverse(t, condition))(draws)
    again = jax.vmap(lambda u: ours.bijection.transform(u, condition))(base)
    np.testing.assert_allclose(again, draws, atol=1e-4)


def test_coupling_flow_handles_one_dimension():
    flow = sk.estimators.CouplingNSF(layers=2, width=16).build(jax.random.key(0), 1, 2)
    grid = jnp.linspace(-7.0, 7.0, 1401)[:, None]
    density = jnp.exp(jax.vmap(lambda t: flow.log_prob(t, jnp.ones(2)))(grid))
    assert abs(float(density.sum() * (grid[1, 0] - grid[0, 0])) - 1.0) < 0.01


@pytest.mark.slow
def test_npe_with_coupling_flow_recovers_gaussian_posterior(gaussian_simulator):
    """Posterior mean within 0.15 posterior sds and sd within 15 % of the analytic values."""
    from tests.conftest import gaussian_posterior

    theta, x = sk.simulate(jax.random.key(0), gaussian_simulator, 3000)
    npe = sk.NPE(
        flow=sk.estimators.CouplingNSF(layers=2, width=32, blocks=1, knots=6),
        training=sk.Training(max_epochs=60, patience=10, batch_size=100, learning_rate=2e-3),
    )
    posterior = npe.fit(jax.random.key(1), theta, x, prior=gaussian_simulator.prior, progress=False)
    x_o = jnp.array([0.5, -0.3])
    mean, sd = gaussian_posterior(x_o)
    samples = posterior.sample(jax.random.key(2), x_o, 20_000)
    np.testing.assert_allclose(samples.mean(0), mean, atol=0.15 * sd)
    np.testing.assert_allclose(samples.std(0), sd, rtol=0.15)


def _spline_constructor(spline):
    from flowjax.utils import get_ravelled_pytree_constructor

    return get_ravelled_pytree_constructor(spline, filter_spec=eqx.is_inexact_array)


@pytest.mark.parametrize("scale", [0.3, 2.0])
def test_spline_matches_flowjax_spline(scale):
    """The same parameters give flowjax's map, inverse, log-determinants and gradients.

    The parameter scale 2.0 makes bins as narrow as the 1e-3 floor (float32 rounding there is
    the tolerance's reason).
    """
    from flowjax.bijections import RationalQuadraticSpline

    from sbi_kit.estimators._spline import rational_quadratic_spline

    ours, n = _spline_constructor(rational_quadratic_spline(6, 3.0))
    theirs, m = _spline_constructor(RationalQuadraticSpline(knots=6, interval=3.0))
    assert n == m
    params = scale * jax.random.normal(jax.random.key(0), (500, n))
    values = 2.5 * jax.random.normal(jax.random.key(1), (500,))  # about 23 % outside [-3, 3]
    for method in ("transform_and_log_det", "inverse_and_log_det"):
        a = jax.vmap(lambda p, v, method=method: getattr(ours(p), method)(v))(params, values)
        b = jax.vmap(lambda p, v, method=method: getattr(theirs(p), method)(v))(params, values)
        np.testing.assert_allclose(a[0], b[0], atol=1e-5)
        np.testing.assert_allclose(a[1], b[1], atol=1e-3, rtol=1e-4)

    def total_log_det(constructor, p):
        log_det = jax.vmap(lambda q, v: constructor(q).transform_and_log_det(v)[1])
        return log_det(p, values).sum()

    np.testing.assert_allclose(
        jax.grad(lambda p: total_log_det(ours, p))(params),
        jax.grad(lambda p: total_log_det(theirs, p))(params),
        atol=1e-3,
        rtol=1e-4,
    )
    identity = ours(jnp.zeros(n))  # zero parameters: the identity
    np.testing.assert_allclose(jax.vmap(identity.transform)(values), values, atol=1e-5)


def test_knot_temperature_divides_the_conditioner_outputs():
    """With temperature T the spline for outputs u is the T = 1 spline for u / T."""
    from sbi_kit.estimators._spline import rational_quadratic_spline

    u = jax.random.normal(jax.random.key(0), (5 + 5 + 6,)) * 3.0
    tempered, n = _spline_constructor(rational_quadratic_spline(4, 3.0, knot_temperature=2.5))
    plain, m = _spline_constructor(rational_quadratic_spline(4, 3.0))
    assert n == m == u.size  # the temperature is not a trainable parameter
    scaled = u.at[:10].divide(2.5)  # widths and heights are scaled, derivatives are not
    values = jnp.linspace(-3.5, 3.5, 41)
    for method in ("transform_and_log_det", "inverse_and_log_det"):
        a = jax.vmap(getattr(tempered(u), method))(values)
        b = jax.vmap(getattr(plain(scaled), method))(values)
        np.testing.assert_allclose(a[0], b[0], atol=1e-5)
        np.testing.assert_allclose(a[1], b[1], atol=1e-5)
    # T > 1 keeps the map nearer to the identity: smaller spread of log-derivatives
    spread = jnp.ptp(jax.vmap(tempered(u).transform_and_log_det)(values)[1])
    untempered = jnp.ptp(jax.vmap(plain(u).transform_and_log_det)(values)[1])
    assert float(spread) < float(untempered)


def test_bad_knot_temperature_raises():
    with pytest.raises(ValueError, match="knot_temperature"):
        sk.estimators.NSF(knot_temperature=0.0).build(jax.random.key(0), 2, 3)


def test_bad_affine_raises():
    with pytest.raises(TypeError, match="NSF: affine must be True or False, got 'yes'"):
        sk.estimators.NSF(affine="yes").build(jax.random.key(0), 2, 3)
