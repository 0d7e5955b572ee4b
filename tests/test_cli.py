import dataclasses
import json

import jax
import numpy as np
import pytest

import sbi_kit as sk
from sbi_kit.cli import OUTPUTS, main, prepare_output

WELL, OVER, UNDER, MIXED = "well calibrated", "overconfident", "underconfident", "miscalibrated"


def _assert_verdicts_follow_the_numbers(cal: dict) -> None:
    """Each verdict in ``metrics.json`` is the one its own numbers call for (docs/calibration.md).

    A test passes at ``significance`` (KS p-value at or above it); a failing TARP curve is
    overconfident below the diagonal (ATC < 0) and underconfident above it; a failing HPD
    coverage curve likewise by the sign of its area; the overall verdict is "well calibrated"
    if every test passes, the one direction that the failing tests agree on, else
    "miscalibrated". Any verdict string at all no longer passes.
    """
    level = cal["significance"]
    assert 0.0 < level < 1.0
    tarp = cal["tarp_verdict"]
    assert tarp in (WELL, OVER, UNDER, MIXED), cal
    assert (tarp == WELL) == (cal["tarp_ks_pvalue"] >= level), cal
    if tarp == OVER:
        assert cal["tarp_atc"] < 0, cal
    elif tarp == UNDER:
        assert cal["tarp_atc"] > 0, cal
    coverage = cal["coverage_verdict"]  # NPE has a density, so HPD coverage runs
    assert coverage in (WELL, OVER, UNDER), cal
    assert (coverage == WELL) == (cal["coverage_ks_pvalue"] >= level), cal
    if coverage != WELL:
        assert (coverage == OVER) == (cal["coverage_area"] < 0), cal
    sbc = cal["sbc_verdict"]
    assert sbc in (WELL, OVER, UNDER, MIXED), cal
    k = len(cal["sbc_pvalues"])  # Bonferroni over the rank columns
    if any(p < level / k for p in cal["sbc_pvalues"].values()):
        assert sbc != WELL, cal  # a rank histogram that fails its χ² test fails SBC
    problems = {v for v in (tarp, sbc, coverage) if v != WELL}
    expected = WELL if not problems else problems.pop() if len(problems) == 1 else MIXED
    assert cal["calibration_verdict"] == expected, cal


def test_run_writes_metrics_plots_and_posterior(tmp_path, restore_compilation_cache):
    out, cache = tmp_path / "run", tmp_path / "xla"
    args = "run two_moons --simulations 600 --max-epochs 3 --num-samples 400 --observation 2"
    args += " --calibration-simulations 40 --calibration-samples 50 --no-progress"
    code = main([*args.split(), "--out", str(out), "--cache-dir", str(cache)])
    assert code == 0
    assert any(cache.iterdir()), "the compiled training program should be in the cache"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "two_moons" and metrics["observation"] == 2
    assert metrics["simulations_valid"] + metrics["simulations_dropped"] == 600
    assert metrics["epochs"] == 3 and metrics["stop_reason"] == "max_epochs"
    assert metrics["flow_choice"] == {} and metrics["flow_choice_rounds"] is None  # one NSF fit
    assert metrics["x_o_extremity_rounds"] is None
    assert 0.0 <= metrics["c2st"] <= 1.0
    cal = metrics["calibration"]
    assert cal["num_simulations"] == 40 and cal["num_posterior_samples"] == 50
    assert -1.0 <= cal["tarp_atc"] <= 1.0 and set(cal["sbc_pvalues"]) == {"θ1", "θ2", "-log q"}
    _assert_verdicts_follow_the_numbers(cal)
    ppc = metrics["predictive_check"]  # on by default: 200 replicates at the observation
    assert ppc["num_replicates"] == 200 and 1 / 201 <= ppc["p_value"] <= 1.0
    assert ppc["passed"] == (ppc["p_value"] >= ppc["level"] == 0.05)
    for name in ("pair_plot.png", "loss_curve.png", "tarp.png", "sbc_ranks.png", "coverage.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the closing message and metrics["files"] list every file written: all seven here
    assert sorted(metrics["files"]) == sorted(OUTPUTS) == sorted(p.name for p in out.iterdir())
    assert metrics["settings"]["simulations"] == 600 and metrics["settings"]["overwrite"] is False
    env = metrics["environment"]
    for library in ("jax", "jaxlib", "numpy", "numpyro", "equinox", "flowjax", "scikit-learn"):
        assert env["versions"][library], library
    assert env["python"] and env["machine"] and env["cpu_count"] >= 1 and env["jax_devices"]
    # a second run into the same folder is refused before any work, naming the way out
    with pytest.raises(SystemExit, match=r"already holds a previous run .*--overwrite"):
        main([*args.split(), "--out", str(out), "--cache-dir", "none"])
    posterior = sk.load(out / "posterior.sbi")
    assert posterior.calibration.verdict == cal["calibration_verdict"]
    task = sk.tasks.get("two_moons")
    samples = posterior.sample(jax.random.key(0), task.observation(2), 100)
    assert samples.shape == (100, 2)
    assert np.all(np.abs(np.asarray(samples)) <= 1.0)  # inside the U(-1, 1)² prior


@pytest.mark.filterwarnings("ignore:sk.mcmc.sample. the chains did not mix:RuntimeWarning")
@pytest.mark.parametrize(
    "method",
    [
        pytest.param(m, marks=pytest.mark.slow)
        for m in ("nle", "nre", "npse", "fmpe", "snpe", "snle", "snre")
    ],
)
def test_run_with_mcmc_and_sequential_methods_writes_the_same_outputs(tmp_path, method):
    """NLE (NUTS posterior, calibrated by NUTS for each simulation), NRE, NPSE, FMPE and the
    sequential methods (two rounds), in the slow set (≈ 16-35 s each): the same files as NPE;
    a sequential posterior is fitted to one observation, so its calibration over the prior
    predictive is skipped and metrics.json says why. (Four chains
    with 20 warm-up steps do not mix, and say so: that warning is expected here.)"""
    out = tmp_path / method
    args = f"run two_moons --method {method} --simulations 300 --max-epochs 2"
    args += " --num-samples 200 --calibration-simulations 2 --calibration-samples 20"
    args += " --mcmc-chains 4 --mcmc-warmup 20 --rounds 2 --no-progress --cache-dir none"
    assert main([*args.split(), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == method and 0.5 <= metrics["c2st"] <= 1.0
    assert metrics["snpe"] == ("apt" if method == "snpe" else None)  # the library's default
    assert metrics["simulations_valid"] + metrics["simulations_dropped"] == 300
    written = {"metrics.json", "pair_plot.png", "loss_curve.png", "posterior.sbi"}
    if metrics["calibration_skipped"] and method in ("npse", "fmpe"):
        # an ODE solve of log q failed for a calibration simulation (a field trained for two
        # epochs can be stiff): said in metrics.json, and the run's other outputs are written
        assert "calibration failed" in metrics["calibration_skipped"]
    elif not method.startswith("s"):
        assert metrics["rounds"] == 1 and metrics["calibration"]["num_simulations"] == 2
        if method in ("nle", "nre"):
            assert metrics["mcmc"]["max_r_hat"] > 1.0 and "4 chains" in metrics["mcmc"]["summary"]
        written |= {"tarp.png", "sbc_ranks.png", "coverage.png"}
    else:
        assert metrics["rounds"] == 2 and metrics["calibration"] is None
        assert "fitted to one observation" in metrics["calibration_skipped"]
    # NLE's default flow is BestOf((NSF(), MAF())): both candidates' scores are recorded, for
    # SNLE in every round (it chooses again in each)
    assert len(metrics["flow_choice"]) == (2 if method in ("nle", "snle") else 0)
    if method.startswith("s"):
        rounds = metrics["flow_choice_rounds"]
        assert [len(c) for c in rounds] == ([2, 2] if method == "snle" else [0, 0])
        assert rounds[-1] == metrics["flow_choice"]
        assert len(metrics["x_o_extremity_rounds"]) == 2
    else:
        assert metrics["flow_choice_rounds"] is None and metrics["x_o_extremity_rounds"] is None
    # the check that does apply to a sequential posterior, run for every method
    assert metrics["predictive_check"]["num_replicates"] == 200
    assert set(metrics["files"]) == written == {p.name for p in out.iterdir()}
    posterior = sk.load(out / "posterior.sbi")
    expected = {
        "npe": sk.NPEPosterior,
        "nle": sk.NLEPosterior,
        "nre": sk.NREPosterior,
        "npse": sk.NPSEPosterior,
        "fmpe": sk.FMPEPosterior,
    }
    assert isinstance(posterior, expected[method if method in expected else method[1:]])
    if method in ("nle", "nre", "snle", "snre"):
        assert posterior.method.mcmc.num_chains == 4


def test_run_rejects_unknown_task_and_bad_observation(tmp_path):
    with pytest.raises(SystemExit, match="unknown task 'nope'"):
        main(["run", "nope", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="--observation must be in 1..10"):
        main(["run", "two_moons", "--observation", "11", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="unknown method 'abc'"):
        main(["run", "two_moons", "--method", "abc", "--out", str(tmp_path)])


def test_run_options_configure_the_method():
    from sbi_kit.cli import _method, _parser

    args = _parser().parse_args(["run", "--knot-temperature", "3", "--support", "rejection"])
    method = _method("npe", args)
    assert method.flow == dataclasses.replace(sk.NPE().flow, knot_temperature=3.0)
    assert isinstance(method.support, sk.inference.Rejection)
    default = _method("npe", _parser().parse_args(["run"]))
    assert default.flow == sk.NPE().flow and default.flow.knot_temperature == 1.0
    assert _method("nle", _parser().parse_args(["run"])).flow == sk.NLE().flow
    # on NLE's BestOf default the knot temperature reaches the NSF candidate and leaves the MAF
    nle = _method("nle", args)
    nsf, maf = nle.flow.candidates
    assert nsf.knot_temperature == 3.0 and maf == sk.NLE().flow.candidates[1]


def test_overwrite_replaces_only_a_previous_runs_files(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    for name in ("metrics.json", "tarp.png", "notes.txt"):
        (out / name).write_text("old")
    with pytest.raises(SystemExit, match=r"holds a previous run \(metrics.json, tarp.png\)"):
        prepare_output(out, overwrite=False)
    assert (out / "tarp.png").exists()
    prepare_output(out, overwrite=True)  # the stale tarp.png could not mix with a new run
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    prepare_output(tmp_path / "fresh" / "nested", overwrite=False)  # a first run: created
    assert (tmp_path / "fresh" / "nested").is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(SystemExit, match="is not a directory"):
        prepare_output(tmp_path / "file", overwrite=True)


def test_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for default in (
        "(default: two_moons)",
        "(default: 10000)",
        "(default: sbi-kit-run)",
        "(default: bijection)",
        "unset: 200, 100 for npse and fmpe",
        "(default: 1.0)",
        "(default: nre-c)",
        "(default: 2)",
    ):
        assert default in text, default
    assert "--overwrite" in text


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:sk.mcmc.sample. the chains did not mix:RuntimeWarning")
@pytest.mark.parametrize("method", ["npse", "nle"])
def test_run_with_iid_observations_compares_with_a_nuts_reference(tmp_path, method):
    """``--num-iid 5``: five observations simulated at observation 1's true θ, the posterior
    conditioned on all of them (composed scores for NPSE, summed learned log-likelihoods for
    NLE) and a NUTS reference on the exact likelihood, whose R̂ metrics.json records
    (≈ 40-80 s each on 2 cores). Four chains of 50 kept draws can miss R̂ ≤ 1.01 by noise
    alone and warn: that warning is expected here."""
    out = tmp_path / method
    # a score network trained for a few epochs on 300 pairs composes into divergent draws
    # (refused as non-finite), so NPSE gets a budget that composes
    budget = "2000 --max-epochs 200" if method == "npse" else "300 --max-epochs 2"
    args = f"run gaussian_linear --method {method} --num-iid 5 --simulations {budget}"
    args += " --num-samples 200 --calibration-simulations 0 --mcmc-chains 4 --mcmc-warmup 200"
    args += " --no-progress --cache-dir none"
    assert main([*args.split(), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_iid"] == 5 and 0.5 <= metrics["c2st"] <= 1.0
    assert metrics["simulations_valid"] == (2000 if method == "npse" else 300)
    reference = metrics["reference_mcmc"]
    assert reference["max_r_hat"] < 1.1 and reference["num_divergent"] == 0
    assert "4 chains" in reference["summary"]
    assert metrics["predictive_check"]["num_replicates"] == 200  # stacks of 5 per draw
    assert set(metrics["files"]) == {
        "metrics.json",
        "pair_plot.png",
        "loss_curve.png",
        "posterior.sbi",
    }


def test_pair_plot_zooms_on_the_posterior_titles_it_and_keeps_every_set_visible():
    """Limits from the central 99 % of each set (not the prior, not the outliers), labelled
    diagonal, a title, a legend clear of every panel and of the true θ, and the sets drawn as
    translucent fills and contour lines (none hides another)."""
    import matplotlib.pyplot as plt
    from matplotlib.collections import PathCollection
    from matplotlib.contour import ContourSet

    rng = np.random.default_rng(0)
    reference = rng.normal([0.2, -0.4], 0.01, (4000, 2))
    estimate = rng.normal([0.21, -0.4], 0.012, (4000, 2))
    estimate[:3] = [[-0.9, 0.9], [0.9, -0.9], [0.0, 0.0]]  # outlying draws
    fig = sk.plotting.pair_plot(
        {"reference": reference, "NPE": estimate},
        labels=["a", "b"],
        true_parameters=[0.2, -0.4],
        title="two_moons, observation 1\nC2ST 0.55",
    )
    assert fig._suptitle.get_text() == "two_moons, observation 1\nC2ST 0.55"
    diag, lower = [fig.axes[0], fig.axes[3]], fig.axes[2]
    assert [ax.get_title() for ax in diag] == ["a", "b"]
    x0, x1 = lower.get_xlim()
    assert 0.14 < x0 < 0.2 < x1 < 0.27  # about ±4 sd around the posterior, not [-1, 1]
    y0, y1 = lower.get_ylim()
    assert -0.46 < y0 < -0.4 < y1 < -0.34
    contours = [c for c in lower.collections if isinstance(c, ContourSet)]
    filled = [c for c in contours if c.filled]
    assert len(filled) == 2 and all(0 < c.get_alpha() < 0.5 for c in filled)  # see-through
    assert len(contours) - len(filled) == 2  # and one set of lines per sample set, on top
    assert all(isinstance(c, PathCollection) for c in lower.collections[:2])  # faint scatter
    fig.canvas.draw()
    legend = fig.legends[0].get_window_extent()
    for ax in (*diag, lower):
        assert not legend.overlaps(ax.get_window_extent()), ax
    plt.close(fig)


@pytest.mark.slow
@pytest.mark.parametrize("task", ["sir", "lotka_volterra", "ornstein_uhlenbeck"])
def test_run_on_the_differential_equation_tasks(tmp_path, task):
    """`sbi-kit run sir` (and the other ODE/SDE tasks) simulate through diffrax, train, compare
    with the shipped reference and calibrate (≈ 20-30 s each). SIR's first count (day 0, one
    infected in 10⁶, 1000 tests) is 0 in nearly every simulation: the constant-column warning
    is expected there."""
    out = tmp_path / task
    args = f"run {task} --simulations 300 --max-epochs 2 --num-samples 200"
    args += " --calibration-simulations 2 --calibration-samples 20 --no-progress --cache-dir none"
    if task == "sir":
        with pytest.warns(UserWarning, match="column 0 of `x` is constant"):
            assert main([*args.split(), "--out", str(out)]) == 0
    else:
        assert main([*args.split(), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == task and 0.5 <= metrics["c2st"] <= 1.0
    assert metrics["simulations_valid"] + metrics["simulations_dropped"] == 300
    assert metrics["calibration"]["num_simulations"] == 2
