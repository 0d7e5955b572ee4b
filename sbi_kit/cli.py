"""The ``sbi-kit`` command.

``sbi-kit run [TASK] [--method npe] [--simulations N] [--observation I] [--out DIR]`` simulates,
trains (with progress bars), samples the posterior for one observation, compares it with the
task's reference posterior by C2ST, checks calibration (TARP, SBC, expected coverage), and
writes ``metrics.json``, ``pair_plot.png``, ``loss_curve.png``, ``tarp.png``,
``sbc_ranks.png``, ``coverage.png`` and the saved posterior ``posterior.sbi`` (with its
calibration report) to DIR. It refuses a DIR that holds a previous run's files unless given
``--overwrite`` (which then deletes them first).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

from . import __version__
from . import tasks as task_registry
from .diagnostics import c2st, calibrate
from .estimators import NSF
from .inference import NPE, AbstractMethod, AbstractSupport, Bijection, Rejection
from .io import save
from .plotting import coverage_plot, loss_curve, pair_plot, rank_histogram, tarp_plot
from .simulators import simulate
from .training import Training


@dataclasses.dataclass(frozen=True)
class _MethodEntry:
    """How the CLI offers one method: a help line, its own options, and how to build it."""

    help: str
    add_options: Callable[[argparse._ArgumentGroup], None]
    build: Callable[[argparse.Namespace, Training, AbstractSupport], AbstractMethod]


OUTPUTS = (
    "metrics.json",
    "pair_plot.png",
    "loss_curve.png",
    "tarp.png",
    "sbc_ranks.png",
    "coverage.png",
    "posterior.sbi",
)
"""Every file that ``sbi-kit run`` may write into its output folder."""

LIBRARIES = (
    "sbi_kit",
    "jax",
    "jaxlib",
    "numpy",
    "scipy",
    "numpyro",
    "equinox",
    "flowjax",
    "paramax",
    "optax",
    "diffrax",
    "scikit-learn",
    "matplotlib",
)
"""The installed libraries whose versions ``metrics.json`` records (those the numbers depend on,
and matplotlib for the plots)."""


def _flow_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--knot-temperature",
        type=float,
        default=1.0,
        help="NSF spline knot temperature (sqrt(50) is the sbi package's choice, which with "
        "--support rejection matched sbi on two_moons)",
    )


METHODS: dict[str, _MethodEntry] = {
    "npe": _MethodEntry(
        help="neural posterior estimation with a neural spline flow",
        add_options=_flow_options,
        build=lambda args, training, support: NPE(
            flow=NSF(knot_temperature=args.knot_temperature),
            training=training,
            ensemble_size=args.ensemble,
            support=support,
        ),
    ),
}
"""The one registry that turns a ``--method`` name into a configured method object."""


def _method(name: str, args: argparse.Namespace) -> AbstractMethod:
    """The configured method that ``--method name`` and the other options describe."""
    if name not in METHODS:
        raise SystemExit(f"sbi-kit: unknown method {name!r}; expected one of {sorted(METHODS)}.")
    training = Training(max_epochs=args.max_epochs)
    support = {"bijection": Bijection, "rejection": Rejection}[args.support]()
    return METHODS[name].build(args, training, support)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sbi-kit", description="Simulation-based inference in JAX."
    )
    parser.add_argument("--version", action="version", version=f"sbi_kit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        help="simulate, train, sample and diagnose on a benchmark task",
        description="Simulate, train, sample and diagnose on a benchmark task; writes "
        f"{', '.join(OUTPUTS)} to the output folder.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    run.add_argument(
        "task",
        nargs="?",
        default="two_moons",
        help=f"benchmark task, one of {task_registry.names()}",
    )
    run.add_argument(
        "--method",
        default="npe",
        metavar="{" + ",".join(sorted(METHODS)) + "}",
        help="inference method (an unknown name is refused with the list): "
        + "; ".join(f"{name}: {entry.help}" for name, entry in METHODS.items()),
    )
    run.add_argument("--simulations", type=int, default=10_000, help="simulation budget")
    run.add_argument("--observation", type=int, default=1, help="observation index 1..10")
    run.add_argument("--out", default="sbi-kit-run", help="output directory")
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the files of a previous run in the output directory (without it, such a "
        "directory is refused)",
    )
    run.add_argument("--seed", type=int, default=0, help="seed of all randomness")
    run.add_argument("--num-samples", type=int, default=10_000, help="posterior samples")
    run.add_argument("--max-epochs", type=int, default=1000, help="upper bound on epochs")
    run.add_argument("--ensemble", type=int, default=1, help="number of networks in the ensemble")
    run.add_argument(
        "--support",
        choices=("bijection", "rejection"),
        default="bijection",
        help="bounded priors: learn in unconstrained space (bijection) or on θ, rejecting "
        "draws outside the support (rejection)",
    )
    run.add_argument(
        "--calibration-simulations",
        type=int,
        default=200,
        help="simulations for TARP / SBC / coverage (0 switches calibration off)",
    )
    run.add_argument(
        "--calibration-samples",
        type=int,
        default=500,
        help="posterior samples per calibration simulation",
    )
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    for name, entry in METHODS.items():
        entry.add_options(run.add_argument_group(f"options of --method {name}"))
    run.add_argument(
        "--cache-dir",
        default=None,
        help="persistent XLA compilation cache, so a repeated run skips most JIT compilation "
        "(unset: $SBI_KIT_CACHE_DIR or ~/.cache/sbi_kit/xla; 'none' switches it off)",
    )
    return parser


def _compilation_cache(choice: str | None) -> Path | None:
    """Points JAX's persistent compilation cache at ``choice`` (None: the default folder)."""
    if choice is None:
        choice = os.environ.get("SBI_KIT_CACHE_DIR") or str(
            Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sbi_kit" / "xla"
        )
    if choice.lower() in ("", "none", "off"):
        return None
    path = Path(choice).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SystemExit(f"sbi-kit: --cache-dir {choice!r} cannot be created: {e}") from None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    return path


def prepare_output(out: Path, overwrite: bool) -> None:
    """Creates ``out``; refuses one that holds a previous run's files unless ``overwrite``.

    With ``overwrite`` those files (any of :data:`OUTPUTS`) are deleted first, so that the
    folder never mixes two runs (a run without calibration writes no ``tarp.png``). Other files
    in the folder are left alone.
    """
    if out.exists() and not out.is_dir():
        raise SystemExit(f"sbi-kit: --out {str(out)!r} exists and is not a directory.")
    previous = [name for name in OUTPUTS if (out / name).exists()]
    if previous and not overwrite:
        raise SystemExit(
            f"sbi-kit: {out}/ already holds a previous run ({', '.join(previous)}); pass "
            "--overwrite to replace it, or --out DIR to write elsewhere."
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name in previous:
            (out / name).unlink()
    except OSError as e:
        raise SystemExit(f"sbi-kit: cannot prepare --out {str(out)!r}: {e}") from None


def _environment() -> dict:
    """The software and machine that produced the numbers (for ``metrics.json``)."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    versions["sbi_kit"] = __version__
    cpu = platform.processor() or None
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu
            )
    except OSError:
        pass
    return {
        "versions": versions,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "jax_backend": jax.default_backend(),
        "jax_devices": [f"{d.platform}:{d.device_kind}" for d in jax.devices()],
        "jax_enable_x64": bool(jax.config.read("jax_enable_x64")),
        "xla_flags": os.environ.get("XLA_FLAGS"),
    }


def run(args: argparse.Namespace) -> dict:
    """Runs the main job and returns the metrics it wrote."""
    try:
        task = task_registry.get(args.task)
    except ValueError as e:
        raise SystemExit(f"sbi-kit: {e}") from None
    method = _method(args.method, args)
    out = Path(args.out)
    prepare_output(out, getattr(args, "overwrite", False))
    written: list[str] = []
    progress = not args.no_progress
    key_sim, key_fit, key_sample, key_cal = jax.random.split(jax.random.key(args.seed), 4)
    log = print if progress else (lambda *a, **k: None)

    log(f"[sbi-kit] {args.task}: simulating {args.simulations} pairs")
    t0 = time.perf_counter()
    simulations = simulate(key_sim, task, args.simulations, progress=progress)
    theta, x = simulations
    t_sim = time.perf_counter() - t0

    log(f"[sbi-kit] training {type(method).__name__}")
    t0 = time.perf_counter()
    posterior = method.fit(key_fit, theta, x, prior=task.prior, progress=progress)
    t_fit = time.perf_counter() - t0

    x_o = task.observation(args.observation)
    t0 = time.perf_counter()
    samples = np.asarray(posterior.sample(key_sample, x_o, args.num_samples))
    t_sample = time.perf_counter() - t0
    reference = task.reference_samples(args.observation)[: args.num_samples]

    log("[sbi-kit] C2ST against the reference posterior")
    t0 = time.perf_counter()
    score = c2st(samples, reference)
    t_c2st = time.perf_counter() - t0

    calibration, t_cal = None, 0.0
    if args.calibration_simulations > 0:
        log(
            f"[sbi-kit] calibration: TARP, SBC and coverage on "
            f"{args.calibration_simulations} simulations"
        )
        t0 = time.perf_counter()
        calibration = calibrate(
            key_cal,
            posterior,
            task,
            args.calibration_simulations,
            num_posterior_samples=args.calibration_samples,
        )
        t_cal = time.perf_counter() - t0
        posterior = calibration.attach(posterior)
        _save_figure(tarp_plot(calibration), out, "tarp.png", written)
        _save_figure(rank_histogram(calibration), out, "sbc_ranks.png", written)
        if calibration.coverage is not None:
            _save_figure(coverage_plot(calibration), out, "coverage.png", written)

    fig = pair_plot(
        {"reference": reference, type(method).__name__: samples},
        labels=task.simulator.labels(),
        true_parameters=task.true_parameters(args.observation),
        title=f"{args.task}, observation {args.observation}, {args.simulations} simulations\n"
        f"C2ST {score:.3f} (0.5: indistinguishable from the reference)",
    )
    _save_figure(fig, out, "pair_plot.png", written)
    _save_figure(loss_curve(posterior.history), out, "loss_curve.png", written)
    save(out / "posterior.sbi", posterior)
    written.append("posterior.sbi")

    metrics = {
        "task": args.task,
        "method": args.method,
        "simulations": args.simulations,
        "simulations_valid": simulations.num_valid,
        "simulations_dropped": simulations.num_dropped,
        "observation": args.observation,
        "seed": args.seed,
        "num_samples": args.num_samples,
        "c2st": score,
        "epochs": len(posterior.history.train_loss),
        "best_epoch": posterior.history.best_epoch,
        "stop_reason": str(posterior.history.stop_reason),
        "best_validation_loss": min(posterior.history.validation_loss),
        "calibration": None if calibration is None else calibration.metrics(),
        "seconds": {
            "simulate": t_sim,
            "train": t_fit,
            "sample": t_sample,
            "c2st": t_c2st,
            "calibration": t_cal,
        },
        "sbi_kit_version": __version__,
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
        "settings": {k: v for k, v in vars(args).items() if k != "command"},
        "environment": _environment(),
    }
    written.insert(0, "metrics.json")
    metrics["files"] = list(written)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    log(f"[sbi-kit] C2ST = {score:.3f} (0.5 is ideal); wrote {out}/: {', '.join(written)}")
    return metrics


def _save_figure(fig, out: Path, name: str, written: list[str]) -> None:
    """Saves ``fig`` as ``out / name``, closes it and records the name."""
    import matplotlib.pyplot as plt

    fig.savefig(out / name, dpi=100)
    plt.close(fig)
    written.append(name)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sbi-kit`` console script."""
    args = _parser().parse_args(argv)
    if args.command == "run":
        import matplotlib

        matplotlib.use("Agg")  # a batch job: files only, whatever the display
        if not 1 <= args.observation <= 10:
            raise SystemExit(f"sbi-kit: --observation must be in 1..10, got {args.observation}.")
        if args.simulations < 10:
            raise SystemExit(f"sbi-kit: --simulations must be at least 10, got {args.simulations}.")
        minimum = {
            "num_samples": 5,  # C2ST's 5-fold cross-validation
            "max_epochs": 1,
            "ensemble": 1,
            "calibration_simulations": 0,
            "calibration_samples": 1,
        }
        for name, least in minimum.items():
            if getattr(args, name) < least:
                option = "--" + name.replace("_", "-")
                raise SystemExit(
                    f"sbi-kit: {option} must be at least {least}, got {getattr(args, name)}."
                )
        _compilation_cache(args.cache_dir)
        run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
