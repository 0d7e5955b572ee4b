"""The ``sbi-kit`` command.

``sbi-kit run [TASK] [--method npe] [--simulations N] [--observation I] [--out DIR]`` simulates,
trains (with progress bars), samples the posterior for one observation, compares it with the
task's reference posterior by C2ST, checks calibration (TARP, SBC, expected coverage), and
writes ``metrics.json``, ``pair_plot.png``, ``loss_curve.png``, ``tarp.png``,
``sbc_ranks.png``, ``coverage.png`` and the saved posterior ``posterior.sbi`` (with its
calibration report) to DIR. It refuses a DIR that holds a previous run's files unless given
``--overwrite`` (which then deletes them first).

``--method`` picks NPE, NLE, NRE, NPSE, FMPE or the sequential variants (``snpe``, ``snle``,
``snre``: ``--rounds`` rounds for the one observation, through ``sk.sequential``). The
sequential ones are fitted to that observation, so calibration over the prior predictive is
skipped for them (``metrics.json`` says why).

``--num-iid N`` (npse, nle, nre) conditions on N i.i.d. observations simulated at the true
parameters of ``--observation`` instead of the task's one observation: NPSE composes its
per-observation scores, NLE and NRE sum their learned log-likelihoods (log-ratios), and the C2ST
is taken against a NUTS reference on the task's exact likelihood (``sk.mcmc.reference_posterior``
with ``iid=True``), whose R̂ and ESS ``metrics.json`` records under ``reference_mcmc``.
Calibration still checks the trained single-observation posterior over the prior predictive.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import equinox as eqx
import jax
import numpy as np

from . import __version__
from . import tasks as task_registry
from ._compilation_cache import OFF_VALUES, set_compilation_cache
from .diagnostics import c2st, calibrate, posterior_predictive_check
from .estimators import NSF, AbstractFlow, BestOf
from .inference import (
    APT,
    FMPE,
    NLE,
    NPE,
    NPSE,
    NRE,
    NRE_A,
    NRE_B,
    NRE_C,
    TSNPE,
    AbstractMethod,
    AbstractPotentialPosterior,
    AbstractSupport,
    BalancedNRE,
    Bijection,
    Rejection,
    sequential,
)
from .io import save
from .mcmc import MCMCConfig, MCMCResult, reference_posterior
from .plotting import coverage_plot, loss_curve, pair_plot, rank_histogram, tarp_plot
from .simulators import simulate


@dataclasses.dataclass(frozen=True)
class _MethodEntry:
    """How the CLI offers one method: a help line, how to build it, and whether it runs in
    rounds (``sk.sequential``) for the one observation instead of amortised."""

    help: str
    build: Callable[[argparse.Namespace, AbstractSupport], AbstractMethod]
    sequential: bool = False
    calibration_simulations: int = 200
    iid: bool = False  # its posterior conditions on a stack of i.i.d. observations (--num-iid)


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
        "--support rejection matched sbi on two_moons); for NLE, whose default chooses between "
        "an NSF and a MAF, it applies to the NSF",
    )


def _with_knot_temperature(flow: AbstractFlow | BestOf, temperature: float):
    """``flow`` with the run's knot temperature on its spline flows (a BestOf's NSFs)."""
    if isinstance(flow, BestOf):
        return BestOf(tuple(_with_knot_temperature(f, temperature) for f in flow.candidates))
    if isinstance(flow, NSF):
        return dataclasses.replace(flow, knot_temperature=temperature)
    return flow


RATIO_LOSSES = {"nre-c": NRE_C, "nre-a": NRE_A, "nre-b": NRE_B, "balanced": BalancedNRE}
"""``--ratio-loss`` names and the loss classes they stand for (defaults of each class)."""


def _ratio_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--ratio-loss",
        choices=tuple(RATIO_LOSSES),
        default="nre-c",
        help="classifier loss: contrastive NRE-C (Miller et al. 2022), NRE-A, NRE-B, or "
        "balanced NRE (conservative)",
    )


REFERENCE_WARMUP = 500
"""Warm-up steps of the ``--num-iid`` NUTS reference unless ``--mcmc-warmup`` is given (its
draws are pooled, not resampled, so it warms up longer than the posteriors)."""


def _mcmc_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--mcmc-chains", type=int, default=20, help="NUTS chains (vectorised)")
    group.add_argument(
        "--mcmc-warmup",
        type=int,
        default=None,
        help="NUTS warm-up steps per chain (default: the posteriors' own, 50, with "
        f"resampling; {REFERENCE_WARMUP} for the --num-iid reference)",
    )


def _sequential_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="rounds; each simulates --simulations / --rounds pairs where the current "
        "posterior of the observation puts its mass",
    )
    group.add_argument(
        "--snpe",
        choices=("tsnpe", "apt"),
        default=None,
        help="snpe only: the posterior as proposal with APT's atomic loss (apt, sbi's SNPE-C; "
        "default) or truncated prior proposals (tsnpe: cheaper training)",
    )


OPTION_GROUPS: tuple[tuple[str, Callable[[argparse._ArgumentGroup], None]], ...] = (
    ("flow options (npe, nle, snpe, snle)", _flow_options),
    ("ratio options (nre, snre)", _ratio_options),
    ("MCMC options (nle, nre, snle, snre)", _mcmc_options),
    ("sequential options (snpe, snle, snre)", _sequential_options),
)
"""The options that configure the methods, grouped by the methods that read them."""


def _mcmc(args: argparse.Namespace) -> MCMCConfig:
    config = MCMCConfig(num_chains=args.mcmc_chains)
    if args.mcmc_warmup is None:
        return config
    return dataclasses.replace(config, num_warmup=args.mcmc_warmup)


def _npe(args: argparse.Namespace, support: AbstractSupport) -> NPE:
    # the method's default flow with the run's knot temperature
    flow = _with_knot_temperature(NPE().flow, args.knot_temperature)
    return NPE(flow=flow, ensemble_size=args.ensemble, support=support)


def _nle(args: argparse.Namespace, support: AbstractSupport) -> NLE:
    return NLE(
        flow=_with_knot_temperature(NLE().flow, args.knot_temperature),
        ensemble_size=args.ensemble,
        support=support,
        mcmc=_mcmc(args),
    )


def _nre(args: argparse.Namespace, support: AbstractSupport) -> NRE:
    return NRE(
        loss_fn=RATIO_LOSSES[args.ratio_loss](),
        ensemble_size=args.ensemble,
        support=support,
        mcmc=_mcmc(args),
    )


def _npse(args: argparse.Namespace, support: AbstractSupport) -> NPSE:
    return NPSE(ensemble_size=args.ensemble, support=support)


def _fmpe(args: argparse.Namespace, support: AbstractSupport) -> FMPE:
    return FMPE(ensemble_size=args.ensemble, support=support)


METHODS: dict[str, _MethodEntry] = {
    "npe": _MethodEntry("neural posterior estimation with a neural spline flow", _npe),
    # an MCMC posterior runs NUTS for every calibration simulation (seconds each): fewer
    "nle": _MethodEntry(
        "neural likelihood estimation (flow for x | θ) with NUTS", _nle, False, 50, iid=True
    ),
    "nre": _MethodEntry(
        "neural ratio estimation (classifier, --ratio-loss) with NUTS", _nre, False, 50, iid=True
    ),
    # calibration draws AND evaluates log q by an ODE solve per sample: fewer simulations
    "npse": _MethodEntry(
        "score-based posterior estimation (VP SDE, probability-flow ODE; composes the scores "
        "of i.i.d. observations)",
        _npse,
        False,
        100,
        iid=True,
    ),
    "fmpe": _MethodEntry("flow-matching posterior estimation (ODE sampling)", _fmpe, False, 100),
    "snpe": _MethodEntry(
        "sequential NPE (APT, or TSNPE with --snpe tsnpe), --rounds rounds", _npe, True
    ),
    "snle": _MethodEntry("sequential NLE: later rounds simulate from the posterior", _nle, True),
    "snre": _MethodEntry("sequential NRE: later rounds simulate from the posterior", _nre, True),
}
"""The one registry that turns a ``--method`` name into a configured method object."""

IID_METHODS = tuple(name for name, entry in METHODS.items() if entry.iid)
"""The methods whose posterior conditions on a stack of i.i.d. observations (``--num-iid``)."""


def _method(name: str, args: argparse.Namespace) -> AbstractMethod:
    """The configured method that ``--method name`` and the other options describe."""
    if name not in METHODS:
        raise SystemExit(f"sbi-kit: unknown method {name!r}; expected one of {sorted(METHODS)}.")
    support = {"bijection": Bijection, "rejection": Rejection}[args.support]()
    method = METHODS[name].build(args, support)
    # --max-epochs changes only the epoch cap of the method's own default training (NPSE and
    # FMPE wait longer and average their noisy validation loss)
    training = dataclasses.replace(method.training, max_epochs=args.max_epochs)
    return dataclasses.replace(method, training=training)


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
    run.add_argument(
        "--num-iid",
        type=int,
        default=0,
        help="condition on N i.i.d. observations simulated at the true parameters of "
        "--observation (methods "
        + ", ".join(IID_METHODS)
        + "), compared by C2ST with a NUTS reference on the task's exact likelihood (sk.mcmc, "
        "with the MCMC options); 0: the task's observation and its shipped reference samples",
    )
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
        default=None,
        help="simulations for TARP / SBC / coverage (0 switches calibration off; unset: 200, "
        "100 for npse and fmpe (an ODE solve per draw and density), 50 for nle and nre "
        "(NUTS for each simulation))",
    )
    run.add_argument(
        "--calibration-samples",
        type=int,
        default=500,
        help="posterior samples per calibration simulation",
    )
    run.add_argument(
        "--predictive-simulations",
        type=int,
        default=200,
        help="replicates of the posterior predictive check at the observation (0 switches it "
        "off; it applies to sequential posteriors too)",
    )
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    for title, add_options in OPTION_GROUPS:
        add_options(run.add_argument_group(title))
    run.add_argument(
        "--cache-dir",
        default=None,
        help="persistent XLA compilation cache, so a repeated run skips most JIT compilation "
        "(unset: $SBI_KIT_CACHE_DIR or ~/.cache/sbi_kit/xla; 'none' switches it off)",
    )
    return parser


def _compilation_cache(choice: str | None) -> Path | None:
    """Points JAX's persistent compilation cache at ``choice`` (None: sbi_kit's default, already
    set on import; 'none' / 'off' switches it off)."""
    if choice is None:
        current = jax.config.jax_compilation_cache_dir
        return Path(current) if current else None
    if choice.strip().lower() in OFF_VALUES:
        return set_compilation_cache(None)
    try:
        return set_compilation_cache(choice)
    except ValueError as e:
        raise SystemExit(f"sbi-kit: --cache-dir {choice!r} cannot be used: {e}") from None


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

    entry = METHODS[args.method]
    if args.num_iid:
        x_o, reference, reference_mcmc = _iid_problem(
            jax.random.fold_in(jax.random.key(args.seed), 1), task, args, log
        )
    else:
        x_o, reference_mcmc = task.observation(args.observation), None
        reference = task.reference_samples(args.observation)[: args.num_samples]
    if entry.sequential:
        per_round = args.simulations // args.rounds
        log(
            f"[sbi-kit] {args.task}: {args.rounds} rounds of {per_round} simulations, "
            f"training {type(method).__name__} in each (sequential, for observation "
            f"{args.observation})"
        )
        t0 = time.perf_counter()
        result = sequential(
            key_fit,
            method,
            task,
            x_o,
            rounds=args.rounds,
            simulations_per_round=per_round,
            snpe=APT() if args.snpe == "apt" else TSNPE() if args.snpe == "tsnpe" else None,
            progress=progress,
        )
        posterior, snpe_used = result.posterior, result.snpe
        round_histories = result.histories
        # NaN (a round with fewer than two simulations to compare with) as null: strict JSON
        extremity = [v if math.isfinite(v) else None for v in result.x_o_extremity]
        num_simulated, num_valid = per_round * args.rounds, int(result.theta.shape[0])
        t_sim, t_fit = None, time.perf_counter() - t0  # rounds interleave the two
    else:
        snpe_used, round_histories, extremity = None, None, None
        log(f"[sbi-kit] {args.task}: simulating {args.simulations} pairs")
        t0 = time.perf_counter()
        simulations = simulate(key_sim, task, args.simulations, progress=progress)
        theta, x = simulations
        t_sim = time.perf_counter() - t0
        num_simulated, num_valid = args.simulations, simulations.num_valid

        log(f"[sbi-kit] training {type(method).__name__}")
        t0 = time.perf_counter()
        posterior = method.fit(key_fit, theta, x, prior=task.prior, progress=progress)
        t_fit = time.perf_counter() - t0

    t0 = time.perf_counter()
    mcmc = None
    if isinstance(posterior, AbstractPotentialPosterior):
        draws, result = posterior.sample(key_sample, x_o, args.num_samples, return_diagnostics=True)
        mcmc = _mcmc_metrics(result)
    else:
        draws = posterior.sample(key_sample, x_o, args.num_samples)
    samples = np.asarray(draws)
    t_sample = time.perf_counter() - t0

    log("[sbi-kit] C2ST against the reference posterior")
    t0 = time.perf_counter()
    score = c2st(samples, reference)
    t_c2st = time.perf_counter() - t0

    calibration, t_cal, calibration_skipped = None, 0.0, None
    if entry.sequential and args.calibration_simulations > 0:
        # TARP, SBC and coverage average over x from the prior predictive; a sequential
        # posterior is trained to be right at x_o only, so they would flag it by design.
        calibration_skipped = (
            "a sequential posterior is fitted to one observation; calibration over the "
            "prior predictive does not apply"
        )
        log(f"[sbi-kit] calibration skipped: {calibration_skipped}")
    elif args.calibration_simulations > 0:
        log(
            f"[sbi-kit] calibration: TARP, SBC and coverage on "
            f"{args.calibration_simulations} simulations"
        )
        t0 = time.perf_counter()
        try:
            calibration = calibrate(
                key_cal,
                posterior,
                task,
                args.calibration_simulations,
                num_posterior_samples=args.calibration_samples,
            )
        except eqx.EquinoxRuntimeError as err:
            # a solve inside the posterior (e.g. the probability-flow ODE of NPSE/FMPE's
            # log q) failed for some simulation: report it and keep the run's other outputs
            lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
            ours = [ln for ln in lines if "EquinoxRuntimeError: " in ln and "stack" not in ln]
            reason = ours[0].split("EquinoxRuntimeError: ", 1)[1] if ours else lines[0]
            calibration_skipped = f"calibration failed: {reason}"
            log(f"[sbi-kit] {calibration_skipped}")
        t_cal = time.perf_counter() - t0
        if calibration is not None:
            posterior = calibration.attach(posterior)
            _save_figure(tarp_plot(calibration), out, "tarp.png", written)
            _save_figure(rank_histogram(calibration), out, "sbc_ranks.png", written)
            if calibration.coverage is not None:
                _save_figure(coverage_plot(calibration), out, "coverage.png", written)

    predictive, t_ppc = None, 0.0
    if args.predictive_simulations > 0:
        log(f"[sbi-kit] posterior predictive check ({args.predictive_simulations} replicates)")
        t0 = time.perf_counter()
        check = posterior_predictive_check(
            jax.random.fold_in(key_cal, 1),
            posterior,
            task,
            x_o,
            num_simulations=args.predictive_simulations,
            warn=False,
        )
        t_ppc = time.perf_counter() - t0
        predictive = check.metrics()
        verdict = "passed" if check.passed else "FAILED"
        log(f"[sbi-kit] predictive check {verdict}: {check.message()}")

    fig = pair_plot(
        {"reference": reference, type(method).__name__: samples},
        labels=task.simulator.labels(),
        true_parameters=task.true_parameters(args.observation),
        title=f"{args.task}, "
        + (
            f"{args.num_iid} i.i.d. observations at observation {args.observation}'s θ"
            if args.num_iid
            else f"observation {args.observation}"
        )
        + f", {args.simulations} simulations\nC2ST {score:.3f} (0.5: indistinguishable from "
        + ("the NUTS reference)" if args.num_iid else "the reference)"),
    )
    _save_figure(fig, out, "pair_plot.png", written)
    _save_figure(loss_curve(posterior.history), out, "loss_curve.png", written)
    save(out / "posterior.sbi", posterior)
    written.append("posterior.sbi")

    metrics = {
        "task": args.task,
        "method": args.method,
        "simulations": args.simulations,
        "simulations_valid": num_valid,
        "simulations_dropped": num_simulated - num_valid,
        "rounds": args.rounds if entry.sequential else 1,
        # the strategy that ran (SNPE only): "apt" or "tsnpe"
        "snpe": None if snpe_used is None else type(snpe_used).__name__.lower(),
        "observation": args.observation,
        "num_iid": args.num_iid,
        "reference_mcmc": reference_mcmc,
        "seed": args.seed,
        "num_samples": args.num_samples,
        "c2st": score,
        "mcmc": mcmc,
        "epochs": len(posterior.history.train_loss),
        "best_epoch": posterior.history.best_epoch,
        "stop_reason": str(posterior.history.stop_reason),
        "best_validation_loss": min(posterior.history.validation_loss),
        # a BestOf flow (NLE's default): each candidate's score, the lowest kept (its lowest
        # validation loss; in a sequential run's later rounds the held-out loss of its previous
        # round's networks on the new simulations); {} otherwise. Sequential: every round's
        "flow_choice": dict(posterior.history.choice),
        "flow_choice_rounds": None
        if round_histories is None
        else [{} if h is None else dict(h.choice) for h in round_histories],
        # sequential: how far out x_o lies among each round's simulations (sk.sequential warns
        # above 2 in the last round); None for one fit
        "x_o_extremity_rounds": extremity,
        "calibration": None if calibration is None else calibration.metrics(),
        "calibration_skipped": calibration_skipped,
        "predictive_check": predictive,
        "seconds": {
            "simulate": t_sim,
            "train": t_fit,
            "sample": t_sample,
            "c2st": t_c2st,
            "calibration": t_cal,
            "predictive_check": t_ppc,
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


def _mcmc_metrics(result: MCMCResult) -> dict:
    """What ``metrics.json`` records of an MCMC run (R̂, ESS, divergences, the importance
    ESS when the draws were resampled, the summary)."""
    return {
        "max_r_hat": result.max_r_hat,
        "min_ess": result.min_ess,
        "num_divergent": result.num_divergent,
        "importance_ess": result.importance_ess,
        "summary": result.summary(),
    }


def _iid_problem(key, task, args: argparse.Namespace, log) -> tuple[jax.Array, np.ndarray, dict]:
    """``--num-iid N``: N observations simulated at the true θ of ``--observation``, and their
    exact posterior ``p(θ) Π_j p(x_j | θ)`` by NUTS on the task's likelihood (the MCMC options
    set its chains and warm-up). Returns the stack, the reference samples and what
    ``metrics.json`` records of the reference run."""
    if task.simulator.log_likelihood is None:
        raise SystemExit(
            f"sbi-kit: --num-iid needs a task with an exact likelihood for the NUTS reference; "
            f"{args.task} has none."
        )
    key_x, key_ref = jax.random.split(key)
    theta = task.true_parameters(args.observation)
    keys = jax.random.split(key_x, args.num_iid)
    x_o = jax.vmap(task.simulator.simulate, in_axes=(0, None))(keys, theta)
    bad = int(np.sum(~np.isfinite(np.asarray(x_o)).reshape(args.num_iid, -1).all(axis=1)))
    if bad:
        raise SystemExit(
            f"sbi-kit: {bad} of the {args.num_iid} i.i.d. simulations at observation "
            f"{args.observation}'s true parameters are not finite; they cannot be conditioned on."
        )
    log(f"[sbi-kit] NUTS reference posterior given {args.num_iid} i.i.d. observations")
    result = reference_posterior(
        key_ref,
        task,
        x_o,
        args.num_samples,
        iid=True,
        num_chains=args.mcmc_chains,
        num_warmup=REFERENCE_WARMUP if args.mcmc_warmup is None else args.mcmc_warmup,
        check=False,  # warns with the R̂; metrics.json records it
        progress=not args.no_progress,
    )
    return x_o, np.asarray(result.samples), _mcmc_metrics(result)


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
        entry = METHODS.get(args.method)  # None: refused with the list by _method
        if args.calibration_simulations is None:
            args.calibration_simulations = 200 if entry is None else entry.calibration_simulations
        if not 1 <= args.observation <= 10:
            raise SystemExit(f"sbi-kit: --observation must be in 1..10, got {args.observation}.")
        if args.simulations < 10:
            raise SystemExit(f"sbi-kit: --simulations must be at least 10, got {args.simulations}.")
        minimum = {
            "num_samples": 5,  # C2ST's 5-fold cross-validation
            "max_epochs": 1,
            "ensemble": 1,
            "rounds": 1,
            "mcmc_chains": 1,
            "mcmc_warmup": 1,
            "calibration_simulations": 0,
            "calibration_samples": 1,
            "predictive_simulations": 0,
            "num_iid": 0,
        }
        for name, least in minimum.items():
            if getattr(args, name) is not None and getattr(args, name) < least:
                option = "--" + name.replace("_", "-")
                raise SystemExit(
                    f"sbi-kit: {option} must be at least {least}, got {getattr(args, name)}."
                )
        if args.predictive_simulations == 1:
            raise SystemExit(
                "sbi-kit: --predictive-simulations must be 0 (off) or at least 2 (the check "
                "compares x_o with its replicates), got 1."
            )
        if args.num_iid > 0 and entry is not None and not entry.iid:
            raise SystemExit(
                f"sbi-kit: --num-iid needs a method whose posterior conditions on a stack of "
                f"i.i.d. observations ({', '.join(IID_METHODS)}); {args.method}'s posterior "
                "takes one observation (npe and fmpe learn q(θ | x) for single x; a sequential "
                "posterior is fitted to one observation)."
            )
        if args.snpe is not None and args.method != "snpe":
            raise SystemExit(
                f"sbi-kit: --snpe chooses how --method snpe spends its rounds; got --method "
                f"{args.method}."
            )
        if args.simulations // args.rounds < 10:
            raise SystemExit(
                f"sbi-kit: --simulations / --rounds must be at least 10 per round, got "
                f"{args.simulations} / {args.rounds}."
            )
        _compilation_cache(args.cache_dir)
        run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
