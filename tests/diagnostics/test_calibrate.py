"""calibrate(): verdicts on exact and mis-scaled Gaussian posteriors, the report's round trips
(dict, JSON, sk.save / sk.load), and the calibration plots."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import pytest

import sbi_kit as sk
import sbi_kit.plotting as skp

from .conftest import GaussianPosterior, GaussianPotentialPosterior, SamplesOnlyPosterior

D = sk.diagnostics
NUM_SIMS, NUM_SAMPLES = 500, 200  # per report below; seeded


@pytest.fixture(scope="module")
def reports(conjugate_simulator):
    return {
        scale: D.calibrate(
            jax.random.key(5),
            GaussianPosterior(jnp.asarray(scale)),
            conjugate_simulator,
            NUM_SIMS,
            num_posterior_samples=NUM_SAMPLES,
        )
        for scale in (1.0, 0.5, 2.0)
    }


@pytest.mark.parametrize(
    ("scale", "verdict"),
    [(1.0, "well calibrated"), (0.5, "overconfident"), (2.0, "underconfident")],
    ids=["exact", "x0.5", "x2"],
)
def test_verdicts(reports, scale, verdict):
    r = reports[scale]
    assert r.verdict == verdict
    assert r.tarp_verdict == r.sbc_verdict == r.coverage_verdict == verdict
    assert r.num_simulations == NUM_SIMS and r.num_posterior_samples == NUM_SAMPLES
    assert r.sbc_names == ("θ1", "θ2", "-log q")
    assert r.ranks.shape == (NUM_SIMS, 3)
    if verdict == "well calibrated":
        assert r.tarp_pvalue >= 0.01 and abs(r.tarp_atc) < 0.02
        assert min(r.sbc_pvalues) >= 0.01 / 3 and abs(r.coverage_area) < 0.02
    elif verdict == "overconfident":
        assert r.tarp_atc < -0.03 and r.coverage_area < -0.1
        assert min(r.sbc_dispersion[:2]) > 5
    else:
        assert r.tarp_atc > 0.03 and r.coverage_area > 0.1
        assert max(r.sbc_dispersion[:2]) < -5


def test_matches_the_array_functions(reports, conjugate_simulator):
    """The batched pass gives what the per-array diagnostics give on the same draws."""
    r = reports[0.5]
    key_sim, key_run = jax.random.split(jax.random.key(5))
    theta, x = sk.simulate(key_sim, conjugate_simulator, NUM_SIMS, progress=False)
    key_sample, _ = jax.random.split(key_run)
    keys = jax.random.split(key_sample, NUM_SIMS)
    post = GaussianPosterior(jnp.asarray(0.5))
    samples = jnp.stack(
        [post.sample(k, xi, NUM_SAMPLES) for k, xi in zip(keys[:20], x[:20], strict=True)], 1
    )
    ranks = D.sbc_ranks(samples, theta[:20])
    np.testing.assert_array_equal(np.asarray(ranks), r.ranks[:20, :2])


def test_report_round_trips_and_is_hashable(reports):
    r = reports[0.5]
    d = json.loads(json.dumps(r.to_dict()))
    back = D.CalibrationReport.from_dict(d)
    assert back == r and hash(back) == hash(r)
    assert isinstance(back.sbc_ranks, tuple) and isinstance(back.sbc_ranks[0], tuple)
    m = r.metrics()
    assert m["calibration_verdict"] == "overconfident"
    assert set(m["sbc_pvalues"]) == {"θ1", "θ2", "-log q"}
    json.dumps(m)
    assert "overconfident" in r.summary() and "TARP" in r.summary()
    with pytest.raises(ValueError, match="unknown fields"):
        D.CalibrationReport.from_dict(d | {"extra": 1})
    with pytest.raises(ValueError, match="verdict"):
        dataclasses.replace(r, verdict="fine")


def test_posterior_without_density_skips_coverage(conjugate_simulator):
    # the sizes of `reports`, so that sk.simulate's program for them is reused
    r = D.calibrate(
        jax.random.key(6),
        SamplesOnlyPosterior(jnp.asarray(0.5)),
        conjugate_simulator,
        NUM_SIMS,
        num_posterior_samples=NUM_SAMPLES,
    )
    assert r.coverage is None and r.coverage_verdict is None
    assert r.sbc_names == ("θ1", "θ2")
    assert r.verdict == "overconfident"
    assert "coverage_verdict" not in r.metrics()


def test_unnormalised_log_prob_gives_the_same_report(reports, conjugate_simulator):
    # an AbstractPotentialPosterior's log_prob is off by a constant per x: ranks of −log q and
    # HPD coverage compare values given the same x only, so nothing changes. The exact report
    # is the one `reports` made with the same key and sizes.
    exact = reports[0.5]
    shifted = D.calibrate(
        jax.random.key(5),
        GaussianPotentialPosterior(jnp.asarray(0.5)),
        conjugate_simulator,
        NUM_SIMS,
        num_posterior_samples=NUM_SAMPLES,
    )
    assert shifted.sbc_names == ("θ1", "θ2", "-log q") and shifted.coverage is not None
    assert shifted == exact


def test_combine_verdicts():
    assert D.combine_verdicts(["well calibrated", None]) == "well calibrated"
    assert D.combine_verdicts(["well calibrated", "overconfident"]) == "overconfident"
    assert D.combine_verdicts(["underconfident", "overconfident"]) == "miscalibrated"


def test_bad_arguments(conjugate_simulator):
    post = GaussianPosterior(jnp.asarray(1.0))
    with pytest.raises(ValueError, match="num_simulations"):
        D.calibrate(jax.random.key(0), post, conjugate_simulator, 0)
    with pytest.raises(ValueError, match="significance"):
        D.calibrate(jax.random.key(0), post, conjugate_simulator, 10, significance=2.0)
    with pytest.raises(TypeError, match="Simulator"):
        D.calibrate(jax.random.key(0), post, "two_moons", 10)
    with pytest.raises(TypeError, match="`posterior` must be .*AbstractPosterior.*got dict"):
        D.calibrate(jax.random.key(0), {"sample": None}, conjugate_simulator, 10)
    with pytest.raises(TypeError, match=r"`metric`.*EuclideanDistance\(\)"):
        D.calibrate(jax.random.key(0), post, conjugate_simulator, 10, metric="euclidean")


def test_saved_and_loaded_with_the_posterior(tmp_path, reports, conjugate_simulator):
    npe = sk.NPE(flow=sk.estimators.NSF(layers=1, width=8, depth=1, knots=4))
    untrained = npe.init(jax.random.key(0), 2, (2,), conjugate_simulator.prior)
    report = reports[2.0]
    posterior = report.attach(untrained)
    assert posterior.calibration is report and untrained.calibration is None
    assert type(posterior) is type(untrained) and posterior.net is untrained.net
    with pytest.raises(TypeError, match="posterior"):
        report.attach({"net": None})
    sk.save(tmp_path / "p.sbi", posterior)
    loaded = sk.load(tmp_path / "p.sbi")
    assert loaded.calibration == report
    assert loaded.calibration.verdict == "underconfident"
    np.testing.assert_array_equal(loaded.calibration.ranks, report.ranks)


@pytest.mark.slow
def test_calibrate_a_trained_npe(gaussian_npe, gaussian_simulator):
    # NPE from tests/conftest.py (3,000 simulations of the same conjugate problem)
    report = D.calibrate(
        jax.random.key(2),
        gaussian_npe,
        gaussian_simulator,
        300,
        num_posterior_samples=100,
        batch_size=50,
    )
    assert report.sbc_names == ("θ1", "θ2", "-log q") and report.ranks.shape == (300, 3)
    assert report.ranks.max() <= 100
    assert abs(report.tarp_atc) < 0.05 and abs(report.coverage_area) < 0.1


def test_plots_draw_the_report(reports):
    r = reports[0.5]
    fig = skp.tarp_plot(r)
    curve = [ln for ln in fig.axes[0].lines if ln.get_label().startswith("TARP")][0]
    np.testing.assert_allclose(curve.get_ydata(), r.tarp_ecp)
    fig = skp.coverage_plot(r)
    curve = [ln for ln in fig.axes[0].lines if ln.get_label().startswith("HPD")][0]
    np.testing.assert_allclose(curve.get_ydata(), r.coverage)
    fig = skp.rank_histogram(r)
    assert len(fig.axes) == 3
    bars = fig.axes[0].patches
    assert (
        sum(b.get_height() for b in bars if isinstance(b, matplotlib.patches.Rectangle)) == NUM_SIMS
    )
    ecp, alpha = D.tarp(
        jax.random.key(0), jnp.zeros((5, 20, 1)), jnp.ones((20, 1)), num_bootstrap=10
    )
    fig = skp.tarp_plot(ecp, alpha)
    assert len(fig.axes[0].collections) == 1  # the bootstrap band
    matplotlib.pyplot.close("all")
