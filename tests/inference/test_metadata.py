"""Training history and calibration report travel with a posterior but stay off its pytree."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import sbi_kit as sk


def _report(n: int = 300):
    """A calibration report with many SBC ranks (what made hashing expensive)."""
    names = ("θ1", "θ2")
    return sk.diagnostics.CalibrationReport(
        verdict="well calibrated",
        num_simulations=n,
        num_posterior_samples=100,
        significance=0.01,
        tarp_verdict="well calibrated",
        tarp_atc=0.0,
        tarp_pvalue=0.5,
        tarp_alpha=(0.0, 1.0),
        tarp_ecp=(0.0, 1.0),
        sbc_verdict="well calibrated",
        sbc_names=names,
        sbc_pvalues=(0.5, 0.5),
        sbc_bias=(0.0, 0.0),
        sbc_dispersion=(0.0, 0.0),
        sbc_ranks=tuple((i % 100, (7 * i) % 100) for i in range(n)),
    )


def test_metadata_is_not_part_of_the_pytree(gaussian_npe):
    with_report = _report().attach(gaussian_npe)
    assert with_report.calibration.num_simulations == 300
    assert with_report.history == gaussian_npe.history  # attaching keeps the history
    assert gaussian_npe.calibration is None  # the original is unchanged
    assert jax.tree_util.tree_structure(with_report) == jax.tree_util.tree_structure(gaussian_npe)
    other = gaussian_npe.with_metadata(history=sk.History(seconds=123.0))
    assert jax.tree_util.tree_structure(other) == jax.tree_util.tree_structure(gaussian_npe)
    assert other.history.seconds == 123.0 and gaussian_npe.history.seconds != 123.0


def test_posteriors_differing_only_in_metadata_share_compiled_code(gaussian_npe):
    traces = []

    @eqx.filter_jit
    def f(post, key):
        traces.append(1)  # runs once per compilation
        return post.sample(key, jnp.array([0.1, 0.2]), 10)

    variants = [
        gaussian_npe,
        _report().attach(gaussian_npe),
        _report(50).attach(gaussian_npe),
        gaussian_npe.with_metadata(history=sk.History(seconds=1.0)),
    ]
    outputs = [f(p, jax.random.key(0)) for p in variants]
    assert len(traces) == 1  # one compilation for all four
    for out in outputs[1:]:
        np.testing.assert_array_equal(out, outputs[0])


def test_a_pytree_transformation_gives_a_posterior_without_metadata(gaussian_npe):
    """A copy rebuilt from leaves carries no metadata rather than another posterior's."""
    copied = jax.tree_util.tree_map(lambda leaf: leaf, _report().attach(gaussian_npe))
    assert copied.history is None and copied.calibration is None
    x_o = jnp.array([0.1, 0.2])
    np.testing.assert_array_equal(
        copied.sample(jax.random.key(1), x_o, 5), gaussian_npe.sample(jax.random.key(1), x_o, 5)
    )
