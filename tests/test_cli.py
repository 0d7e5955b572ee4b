import json

import jax
import numpy as np
import pytest

import sbi_kit as sk
from sbi_kit.cli import main


@pytest.fixture
def restore_compilation_cache():
    """The CLI switches on JAX's persistent cache; switch it off again for later tests."""
    yield
    from jax._src import compilation_cache

    jax.config.update("jax_compilation_cache_dir", None)
    compilation_cache.reset_cache()


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
    assert 0.0 <= metrics["c2st"] <= 1.0
    cal = metrics["calibration"]
    assert cal["num_simulations"] == 40 and cal["num_posterior_samples"] == 50
    assert cal["calibration_verdict"] in (
        "well calibrated",
        "overconfident",
        "underconfident",
        "miscalibrated",
    )
    assert -1.0 <= cal["tarp_atc"] <= 1.0 and set(cal["sbc_pvalues"]) == {"θ1", "θ2", "-log q"}
    for name in ("pair_plot.png", "loss_curve.png", "tarp.png", "sbc_ranks.png", "coverage.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    posterior = sk.load(out / "posterior.sbi")
    assert posterior.calibration.verdict == cal["calibration_verdict"]
    task = sk.tasks.get("two_moons")
    samples = posterior.sample(jax.random.key(0), task.observation(2), 100)
    assert samples.shape == (100, 2)
    assert np.all(np.abs(np.asarray(samples)) <= 1.0)  # inside the U(-1, 1)² prior


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
    assert method.flow == sk.estimators.NSF(knot_temperature=3.0)
    assert isinstance(method.support, sk.inference.Rejection)
    default = _method("npe", _parser().parse_args(["run"]))
    assert default.flow == sk.estimators.NSF() and default.flow.knot_temperature == 1.0
