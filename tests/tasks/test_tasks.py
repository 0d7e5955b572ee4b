"""Tests of the benchmark tasks: definitions, shipped data and reference posteriors."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from scipy import stats

import sbi_kit as sk
from sbi_kit.tasks import _bernoulli_glm, _gaussian_linear

# name: (dim_theta, dim_x, box bound of a uniform prior or None)
TASKS = {
    "bernoulli_glm": (10, 10, None),
    "gaussian_linear": (10, 10, None),
    "gaussian_linear_uniform": (10, 10, 1.0),
    "gaussian_mixture": (2, 2, 10.0),
    "lotka_volterra": (4, 20, None),
    "ornstein_uhlenbeck": (3, 20, None),
    "sir": (2, 10, None),
    "slcp": (5, 8, 3.0),
    "two_moons": (2, 2, 1.0),
}
NUM_REFERENCE = 10_000


def test_names_and_unknown_name():
    assert sk.tasks.names() == sorted(TASKS)
    with pytest.raises(ValueError, match="unknown task 'nope'.*two_moons"):
        sk.tasks.get("nope")


def test_ode_tasks_expose_the_ode_their_simulator_solves():
    """``Task.ode`` is the ODE behind the simulator: at the true θ of observation 1 its
    solution, through the task's observation model, gives the simulator's exact likelihood
    (sir: the binomial counts' density); other tasks have none."""
    task = sk.tasks.get("sir")
    theta, x = task.true_parameters(1), task.observation(1)
    infected = jnp.clip(task.ode.solve(theta)[:, 1], 0.0, 1.0)
    expected = dist.Binomial(1000, infected).log_prob(x).sum()
    np.testing.assert_allclose(task.simulator.log_likelihood(theta, x), expected, rtol=1e-5)
    assert sk.tasks.get("lotka_volterra").ode.ts.shape == (10,)
    assert sk.tasks.get("two_moons").ode is None


@pytest.mark.parametrize("bad", [0, 11, -1, 1.0, "1"])
def test_observation_index_out_of_range(bad):
    task = sk.tasks.get("two_moons")
    for method in (task.observation, task.true_parameters, task.reference_samples):
        with pytest.raises(ValueError, match=r"1\.\.10"):
            method(bad)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_shapes_and_support(name):
    dim_theta, dim_x, bound = TASKS[name]
    task = sk.tasks.get(name)
    assert (task.dim_theta, task.dim_x) == (dim_theta, dim_x)
    assert task.prior.event_shape == (dim_theta,) and task.prior.batch_shape == ()
    log_prior = jax.jit(task.prior.log_prob)
    for i in (1, 10):
        x_o, theta_o = task.observation(i), task.true_parameters(i)
        ref = task.reference_samples(i)
        assert x_o.shape == (dim_x,) and theta_o.shape == (dim_theta,)
        assert ref.shape == (NUM_REFERENCE, dim_theta) and ref.dtype == np.float32
        assert np.isfinite(ref).all()
        # every reference sample and the true parameters lie in the prior's support
        assert np.isfinite(np.asarray(log_prior(ref))).all()
        assert np.isfinite(float(log_prior(theta_o)))
        # samples are not all the same point
        assert np.all(ref.std(axis=0) > 1e-3)
    if bound is not None:  # uniform prior on [-bound, bound]^d
        expected = -dim_theta * np.log(2 * bound)
        np.testing.assert_allclose(float(task.prior.log_prob(jnp.zeros(dim_theta))), expected)
        outside = jnp.zeros(dim_theta).at[0].set(1.01 * bound)
        assert not bool(task.prior.support(outside))


@pytest.mark.parametrize("name", sorted(TASKS))
def test_simulator_jit_vmap_and_finite(name):
    dim_theta, dim_x, _ = TASKS[name]
    task = sk.tasks.get(name)
    theta, x = sk.simulate(jax.random.key(0), task, 64)
    assert theta.shape == (64, dim_theta) and x.shape == (64, dim_x)
    assert np.isfinite(np.asarray(x)).all()
    # same key, same result; another key, another result
    simulate = jax.jit(task.simulator.simulate)
    theta_o = jnp.asarray(task.true_parameters(1))
    x1, x2 = simulate(jax.random.key(3), theta_o), simulate(jax.random.key(3), theta_o)
    np.testing.assert_array_equal(np.asarray(x1), np.asarray(x2))
    assert not np.array_equal(np.asarray(x1), np.asarray(simulate(jax.random.key(4), theta_o)))


@pytest.mark.parametrize("name", sorted(set(TASKS) - {"ornstein_uhlenbeck"}))
def test_observations_are_typical_under_the_simulator(name):
    """sbibm's observation is a typical draw at its true parameters (log-likelihood PIT).

    Not for ornstein_uhlenbeck: its observations are this project's own simulations (and its
    40,000 SDE paths would cost 50 s); its paths are checked against the exact transitions.
    """
    task = sk.tasks.get(name)
    sim = task.simulator

    @jax.jit
    def pit_of(key, theta_o, x_o):
        xs = jax.vmap(sim.simulate, in_axes=(0, None))(jax.random.split(key, 4000), theta_o)
        ll_sim = jax.vmap(sim.log_likelihood, in_axes=(None, 0))(theta_o, xs)
        return jnp.mean(ll_sim < sim.log_likelihood(theta_o, x_o))

    for i in range(1, 11):
        x_o, theta_o = jnp.asarray(task.observation(i)), jnp.asarray(task.true_parameters(i))
        pit = float(pit_of(jax.random.key(i), theta_o, x_o))
        # two-sided tail probability 2e-4 per observation (deterministic keys). Not tighter:
        # sbibm's sir observation 10 itself lies at PIT 5e-4 to 7e-4 (40,000 draws, with
        # numpyro's and with jax.random's binomial sampler), i.e. 2 or 3 of these 4,000 draws.
        assert 0.0001 < pit < 0.9999, (name, i, pit)


def test_gaussian_linear_simulator_mean():
    task = sk.tasks.get("gaussian_linear")
    theta_o = task.true_parameters(1)
    n = 4000
    _, x = sk.simulate(jax.random.key(1), task, n, theta=jnp.tile(theta_o, (n, 1)))
    se = np.sqrt(0.1 / n)
    assert np.all(np.abs(np.asarray(x).mean(axis=0) - theta_o) < 4 * se)
    # variance 0.1 per component, within 4 standard errors (se of a variance ≈ σ² √(2/n))
    assert np.all(np.abs(np.asarray(x).var(axis=0) - 0.1) < 4 * 0.1 * np.sqrt(2 / n))


@pytest.mark.parametrize("i", [1, 5, 10])
def test_gaussian_linear_reference_matches_analytic_posterior(i):
    task = sk.tasks.get("gaussian_linear")
    ref = task.reference_samples(i).astype(np.float64)
    mean, cov = _gaussian_linear.posterior_moments(task.observation(i).astype(np.float64))
    mean, cov = np.asarray(mean), np.asarray(cov)
    np.testing.assert_allclose(mean, task.observation(i) / 2, rtol=1e-6)
    np.testing.assert_allclose(np.diag(cov), 0.05)
    se = np.sqrt(0.05 / NUM_REFERENCE)
    assert np.all(np.abs(ref.mean(axis=0) - mean) < 4 * se)
    # covariance entries: se of a variance ≈ 0.05 √(2/n), of a covariance ≈ 0.05 / √n
    emp = np.cov(ref, rowvar=False)
    assert np.all(np.abs(np.diag(emp) - 0.05) < 4 * 0.05 * np.sqrt(2 / NUM_REFERENCE))
    off = emp[~np.eye(10, dtype=bool)]
    assert np.all(np.abs(off) < 5 * 0.05 / np.sqrt(NUM_REFERENCE))


@pytest.mark.parametrize("i", [1, 2, 3])
def test_gaussian_linear_uniform_reference_matches_truncated_normal(i):
    task = sk.tasks.get("gaussian_linear_uniform")
    ref = task.reference_samples(i).astype(np.float64)
    x_o = task.observation(i).astype(np.float64)
    sd = np.sqrt(0.1)
    for d in range(10):  # the posterior factorises into truncated normals N(x_d, 0.1) on [-1, 1]
        truncated = stats.truncnorm((-1 - x_o[d]) / sd, (1 - x_o[d]) / sd, loc=x_o[d], scale=sd)
        se = truncated.std() / np.sqrt(NUM_REFERENCE)
        assert abs(ref[:, d].mean() - truncated.mean()) < 4 * se
        assert stats.kstest(ref[:, d], truncated.cdf).pvalue > 1e-4


def _grid_posterior_moments(task, i, bound, n=1501):
    """Posterior mean and covariance of a 2-d uniform-prior task by quadrature on a grid."""
    g = np.linspace(-bound, bound, n)
    t1, t2 = np.meshgrid(g, g, indexing="ij")
    grid = jnp.asarray(np.stack([t1.ravel(), t2.ravel()], axis=1))
    x_o = jnp.asarray(task.observation(i))
    log_lik = jax.jit(jax.vmap(task.simulator.log_likelihood, in_axes=(0, None)))(grid, x_o)
    log_lik = np.asarray(log_lik, dtype=np.float64)
    w = np.exp(log_lik - log_lik.max())
    w /= w.sum()
    grid = np.asarray(grid, dtype=np.float64)
    mean = w @ grid
    cov = (grid - mean).T @ ((grid - mean) * w[:, None])
    return mean, cov


@pytest.mark.parametrize(("name", "bound"), [("two_moons", 1.0), ("gaussian_mixture", 10.0)])
@pytest.mark.parametrize("i", [1, 4, 7])
def test_2d_reference_matches_likelihood_on_a_grid(name, bound, i):
    """Reference samples agree with quadrature of prior × exact likelihood (mean, covariance)."""
    task = sk.tasks.get(name)
    ref = task.reference_samples(i).astype(np.float64)
    mean, cov = _grid_posterior_moments(task, i, bound)
    sd = np.sqrt(np.diag(cov))
    assert np.all(np.abs(ref.mean(axis=0) - mean) < 4 * sd / np.sqrt(NUM_REFERENCE))
    # second moments: relative error of a variance within 4 √(2/n) (≈ 6 %), with room for tails
    np.testing.assert_allclose(np.diag(np.cov(ref, rowvar=False)), np.diag(cov), rtol=0.08)


def test_two_moons_likelihood_is_normalised():
    """∫ p(x | θ) dx = 1 (the 1/(π r) Jacobian of the polar noise is included)."""
    task = sk.tasks.get("two_moons")
    theta = jnp.array([0.3, -0.2])
    centre = np.asarray(task.simulator.simulate(jax.random.key(0), theta))
    g1 = np.linspace(centre[0] - 0.3, centre[0] + 0.3, 1201)
    g2 = np.linspace(centre[1] - 0.3, centre[1] + 0.3, 1201)
    x1, x2 = np.meshgrid(g1, g2, indexing="ij")
    xs = jnp.asarray(np.stack([x1.ravel(), x2.ravel()], axis=1), dtype=jnp.float32)
    log_lik = jax.jit(jax.vmap(task.simulator.log_likelihood, (None, 0)))(theta, xs)
    dens = np.exp(np.asarray(log_lik, dtype=np.float64))
    integral = dens.sum() * (g1[1] - g1[0]) * (g2[1] - g2[0])
    assert abs(integral - 1.0) < 0.01


@functools.cache
def _log_posterior_gradient(name, bound):
    """∂ log p(θ | x) for rows of θ and one x, compiled once per task (x is an argument)."""
    simulator = sk.tasks.get(name).simulator

    def log_post(theta, x_o):
        log_prior = simulator.prior.log_prob(theta) if bound is None else 0.0
        return simulator.log_likelihood(theta, x_o) + log_prior

    return jax.jit(jax.vmap(jax.grad(log_post), (0, None)))


def _stein_statistics(task, i, bound):
    """Per component, samples of a function whose posterior mean is zero (Stein's identity).

    For a Gaussian prior (no boundary): ∂ᵢ log p(θ | x) · θᵢ + 1. For a uniform prior on
    [−b, b]^d: ∂ᵢ log p · (b² − θᵢ²) − 2θᵢ (the weight vanishes on the boundary).
    """
    ref = jnp.asarray(task.reference_samples(i), dtype=jnp.float32)
    x_o = jnp.asarray(task.observation(i))
    grad = np.asarray(_log_posterior_gradient(task.name, bound)(ref, x_o), dtype=np.float64)
    theta = np.asarray(ref, dtype=np.float64)
    if bound is None:
        return grad * theta + 1.0
    return grad * (bound**2 - theta**2) - 2.0 * theta


@pytest.mark.parametrize(
    ("name", "bound"),
    [
        ("bernoulli_glm", None),
        ("gaussian_linear", None),
        ("gaussian_linear_uniform", 1.0),
        ("gaussian_mixture", 10.0),
        ("ornstein_uhlenbeck", None),
        ("slcp", 3.0),
    ],
)
@pytest.mark.parametrize("i", [1, 2, 3, 8])
def test_reference_satisfies_stein_identity(name, bound, i):
    """Reference samples are consistent with the exact likelihood: E[Stein statistic] = 0."""
    task = sk.tasks.get(name)
    f = _stein_statistics(task, i, bound)
    assert np.isfinite(f).all()
    mean, se = f.mean(axis=0), f.std(axis=0) / np.sqrt(len(f))
    # 5 standard errors (NUTS samples are thinned; their ESS is close to their number)
    assert np.all(np.abs(mean) < 5 * se), (mean / se).round(2)


@pytest.mark.parametrize(("name", "i"), [("sir", 1), ("sir", 7), ("lotka_volterra", 4)])
def test_ode_reference_satisfies_stein_identity(name, i):
    """The importance-sampled ODE references against the likelihood through the diffrax solve.

    The prior is log-normal on (0, ∞), where θ·p(θ | x) vanishes at both ends, so the Gaussian
    form ∂ᵢ log p · θᵢ + 1 of the statistic applies. The references are resampled from importance
    weights (a few repeated rows), hence 5 standard errors as for the thinned NUTS samples.
    """
    task = sk.tasks.get(name)
    f = _stein_statistics(task, i, None)
    assert np.isfinite(f).all()
    mean, se = f.mean(axis=0), f.std(axis=0) / np.sqrt(len(f))
    assert np.all(np.abs(mean) < 5 * se), (mean / se).round(2)


def test_stein_check_has_power():
    """The same check rejects samples from a slightly wrong posterior (scale 10 % too wide)."""
    task = sk.tasks.get("gaussian_linear")
    mean, _ = _gaussian_linear.posterior_moments(task.observation(1))
    wrong = np.asarray(mean) + 1.1 * (task.reference_samples(1) - np.asarray(mean))

    class _Wrong:
        name = task.name
        simulator = task.simulator

        def reference_samples(self, i):
            return wrong

        def observation(self, i):
            return task.observation(i)

    f = _stein_statistics(_Wrong(), 1, None)
    z = f.mean(axis=0) / (f.std(axis=0) / np.sqrt(len(f)))
    assert np.all(np.abs(z) > 5)


def test_slcp_likelihood_matches_numpyro_and_is_sign_symmetric():
    sim = sk.tasks.get("slcp").simulator
    theta = jnp.array([0.5, -1.0, 1.3, -0.7, 0.8])
    x = jax.jit(sim.simulate)(jax.random.key(0), theta)

    @jax.jit
    def numpyro_log_likelihood(theta, x):
        s1, s2, rho = theta[2] ** 2, theta[3] ** 2, jnp.tanh(theta[4])
        cov = jnp.array([[s1**2, rho * s1 * s2], [rho * s1 * s2, s2**2]]) + 1e-6 * jnp.eye(2)
        return dist.MultivariateNormal(theta[:2], cov).log_prob(x.reshape(4, 2)).sum()

    log_likelihood = jax.jit(sim.log_likelihood)
    expected = float(numpyro_log_likelihood(theta, x))
    np.testing.assert_allclose(float(log_likelihood(theta, x)), expected, rtol=1e-5)
    for flip in ([1, 1, -1, 1, 1], [1, 1, 1, -1, 1], [1, 1, -1, -1, 1]):
        flipped = theta * jnp.array(flip, dtype=theta.dtype)
        np.testing.assert_allclose(float(log_likelihood(flipped, x)), expected, rtol=1e-6)


def test_slcp_simulator_moments():
    sim = sk.tasks.get("slcp").simulator
    theta = jnp.array([0.5, -1.0, 1.3, -0.9, 0.8])
    n = 5000
    x = jax.jit(jax.vmap(sim.simulate, (0, None)))(jax.random.split(jax.random.key(2), n), theta)
    points = np.asarray(x, dtype=np.float64).reshape(n * 4, 2)
    s1, s2, rho = 1.3**2, 0.9**2, np.tanh(0.8)
    cov = np.array([[s1**2, rho * s1 * s2], [rho * s1 * s2, s2**2]])
    se = np.sqrt(np.diag(cov) / len(points))
    assert np.all(np.abs(points.mean(axis=0) - np.array([0.5, -1.0])) < 4 * se)
    emp = np.cov(points, rowvar=False)
    np.testing.assert_allclose(np.diag(emp), np.diag(cov), rtol=4 * np.sqrt(2 / len(points)))
    assert abs(emp[0, 1] / np.sqrt(emp[0, 0] * emp[1, 1]) - rho) < 0.01


@pytest.mark.parametrize("i", [1, 6])
def test_slcp_reference_covers_the_four_sign_modes(i):
    ref = sk.tasks.get("slcp").reference_samples(i)
    n = len(ref)
    for quadrant in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
        frac = np.mean((np.sign(ref[:, 2]) == quadrant[0]) & (np.sign(ref[:, 3]) == quadrant[1]))
        assert abs(frac - 0.25) < 4 * np.sqrt(0.25 * 0.75 / n)


def test_bernoulli_glm_design_prior_and_likelihood():
    stim = _bernoulli_glm.stimulus()
    np.testing.assert_allclose(stim[:3], np.random.RandomState(42).randn(3), rtol=1e-6)
    design = _bernoulli_glm.design_matrix()
    assert design.shape == (100, 10)
    assert np.all(design[:, 0] == 1.0)
    assert design[5, 1 + 2] == stim[3] and design[1, 1 + 2] == 0.0
    precision = _bernoulli_glm.prior_precision()
    assert precision[0, 0] == 0.5 and np.all(precision[0, 1:] == 0.0)
    # F = D² + diag(√(i/9)): (FᵀF)[0, 0] = 1 + 4 + 1, (FᵀF)[8, 8] = (1 + √(8/9))²
    np.testing.assert_allclose(precision[1, 1], 6.0)
    np.testing.assert_allclose(precision[9, 9], (1 + np.sqrt(8 / 9)) ** 2)
    assert np.all(np.linalg.eigvalsh(precision) > 0)
    # the log-likelihood of x = Xᵀy is the Bernoulli log-likelihood of the spike train y
    sim = sk.tasks.get("bernoulli_glm").simulator
    theta = jnp.asarray(sk.tasks.get("bernoulli_glm").true_parameters(1))
    y = np.random.default_rng(0).random(100) < 0.3
    z = 1 / (1 + np.exp(-(design.astype(np.float64) @ np.asarray(theta))))
    expected = np.sum(np.where(y, np.log(z), np.log1p(-z)))
    x = jnp.asarray(design.T @ y.astype(np.float32))
    np.testing.assert_allclose(float(sim.log_likelihood(theta, x)), expected, rtol=1e-4)


def test_bernoulli_glm_simulator_mean():
    task = sk.tasks.get("bernoulli_glm")
    theta_o = jnp.asarray(task.true_parameters(1))
    n = 4000
    xs = jax.jit(jax.vmap(task.simulator.simulate, (0, None)))(
        jax.random.split(jax.random.key(5), n), theta_o
    )
    xs = np.asarray(xs, dtype=np.float64)
    design = _bernoulli_glm.design_matrix().astype(np.float64)
    z = 1 / (1 + np.exp(-(design @ np.asarray(theta_o, dtype=np.float64))))
    expected_mean = design.T @ z
    expected_sd = np.sqrt((design**2).T @ (z * (1 - z)))
    assert np.all(np.abs(xs.mean(axis=0) - expected_mean) < 4 * expected_sd / np.sqrt(n))
    # sbibm's observation 1 has 56 spikes, typical at its true parameters
    assert task.observation(1)[0] == 56.0
    assert abs(56.0 - expected_mean[0]) < 3 * expected_sd[0]


def test_generate_writes_the_data_file(tmp_path):
    """`generate_task` reads sbibm's CSV files from the wheel and writes the npz (tiny run)."""
    import zipfile

    from sbi_kit.tasks import generate

    task = sk.tasks.get("two_moons")
    wheel_path = tmp_path / "sbibm-1.1.0-py2.py3-none-any.whl"
    with zipfile.ZipFile(wheel_path, "w") as wheel:  # a stand-in with sbibm's file layout
        for k in range(1, 11):
            folder = f"sbibm/tasks/two_moons/files/num_observation_{k}"
            x, theta = task.observation(k), task.true_parameters(k)
            wheel.writestr(f"{folder}/observation.csv", "data_1,data_2\n" + ",".join(map(str, x)))
            wheel.writestr(
                f"{folder}/true_parameters.csv",
                "parameter_1,parameter_2\n" + ",".join(map(str, theta)),
            )
    path = generate.generate_task("two_moons", wheel_path, num_samples=50, out_dir=tmp_path)
    with np.load(path) as data:
        assert data["observations"].shape == (10, 2) and data["observations"].dtype == np.float32
        np.testing.assert_array_equal(data["observations"][3], task.observation(4))
        np.testing.assert_array_equal(data["true_parameters"][9], task.true_parameters(10))
        ref = data["reference_samples"]
        assert ref.shape == (10, 50, 2) and ref.dtype == np.float32
        assert np.all(np.abs(ref) < 1.0)


@pytest.mark.parametrize("i", [1, 6])
def test_ornstein_uhlenbeck_reference_matches_quadrature(i):
    """NUTS references of the SDE task against the exact posterior by quadrature on a 3-d grid."""
    task = sk.tasks.get("ornstein_uhlenbeck")
    ref = task.reference_samples(i).astype(np.float64)
    centre, spread = ref.mean(axis=0), ref.std(axis=0)
    axes = [np.linspace(c - 7 * s, c + 7 * s, 56) for c, s in zip(centre, spread, strict=True)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    sim, x_o = task.simulator, jnp.asarray(task.observation(i))
    log_post = jax.jit(jax.vmap(lambda t: sim.prior.log_prob(t) + sim.log_likelihood(t, x_o)))
    lp = np.asarray(log_post(jnp.asarray(grid, jnp.float32)), np.float64)
    w = np.exp(lp - lp.max())
    w /= w.sum()
    mean = w @ grid
    var = w @ (grid - mean) ** 2
    sd = np.sqrt(var)
    assert np.all(np.abs(ref.mean(axis=0) - mean) < 4 * sd / np.sqrt(NUM_REFERENCE))
    np.testing.assert_allclose(ref.var(axis=0), var, rtol=0.08)


def test_ornstein_uhlenbeck_paths_follow_the_exact_transitions():
    """Euler–Maruyama paths standardised by the exact Gaussian transitions are N(0, 1)."""
    task = sk.tasks.get("ornstein_uhlenbeck")
    theta = jnp.asarray(task.true_parameters(1))
    xs = jax.jit(jax.vmap(task.simulator.simulate, (0, None)))(
        jax.random.split(jax.random.key(0), 1000), theta
    )
    kappa, mu, sigma = float(np.exp(theta[0])), float(theta[1]), float(np.exp(theta[2]))
    xs = np.asarray(xs, np.float64)
    previous = np.concatenate([np.zeros((len(xs), 1)), xs[:, :-1]], axis=1)
    decay = np.exp(-kappa * 0.5)
    sd = sigma * np.sqrt(-np.expm1(-kappa)) / np.sqrt(2 * kappa)
    z = (xs - (mu + (previous - mu) * decay)) / sd
    # 20,000 values: the mean's standard error is 0.007 and the variance's 0.01; the
    # Euler–Maruyama step (0.01) biases the variance by about κ·dt/2 (0.5 % at κ = 1)
    assert abs(z.mean()) < 0.025
    assert abs(z.var() - 1.0) < 0.035
    # consecutive standardised transitions are uncorrelated (the Markov property)
    assert abs(np.corrcoef(z[:, :-1].ravel(), z[:, 1:].ravel())[0, 1]) < 0.03
