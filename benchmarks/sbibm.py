"""Every sbi_kit method on the sbibm tasks: C2ST against the reference posteriors, beside sbibm.

``--method`` picks the method (``npe``, ``nle``, ``nre``, ``snpe``, ``snle``, ``snre``, ``npse``,
``fmpe``), each with its library defaults. Amortised methods train one posterior per task,
budget and seed and draw for every observation; sequential ones run ``sk.sequential`` once per
observation (``--rounds`` rounds sharing the budget, sbibm used 10). 10,000 samples per
observation are compared with the task's 10,000 reference samples by C2ST (sbibm's classifier,
``sk.diagnostics.c2st``; 0.5 is ideal); the mean over observations is reported next to sbibm's
published mean for the same method and budget (Lueckmann et al., 2021; the table in
/work/shared/REFERENCES.md). NPE variants (flow size, knot temperature, embeddings) are
``benchmarks/sbibm_npe.py``'s job.

Run from the repository root (see benchmarks/README.md)::

    python benchmarks/sbibm.py --method nle                      # three tasks, 10^3 and 10^4
    python benchmarks/sbibm.py --method snpe --tasks two_moons --simulations 1000 \
        --observations 1-2 --out /tmp/sbibm_quick                # a quick check

Results go to ``benchmarks/results/sbibm_{method}.{json,md}`` after every C2ST; a rerun skips
what is there (``--fresh`` starts over) and retrains a run whose C2STs are incomplete with the
same key. A file whose runs used other settings (estimator, training configuration with its
defaults, sequential options) is refused rather than resumed: pass another ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import (  # noqa: E402
    RESULTS_DIR,
    add_c2st_and_resume_arguments,
    fmt,
    machine,
    parse_int_list,
    read_json,
    table,
    versions,
    write_json,
    write_markdown,
)

TASKS = ("two_moons", "gaussian_linear", "slcp")

# sbibm's published mean C2ST over 10 observations (REFERENCES.md, "Published mean C2ST"),
# 10^3 / 10^4 / 10^5 simulations; the sequential methods used 10 rounds.
_BUDGETS = (1000, 10_000, 100_000)
_TABLE = {
    "two_moons": {
        "nle": (0.77, 0.71, 0.67),
        "snle": (0.66, 0.57, 0.58),
        "npe": (0.73, 0.61, 0.54),
        "snpe": (0.64, 0.55, 0.53),
        "nre": (0.82, 0.76, 0.63),
        "snre": (0.65, 0.58, 0.56),
    },
    "slcp": {
        "nle": (0.95, 0.77, 0.70),
        "snle": (0.92, 0.71, 0.58),
        "npe": (0.98, 0.90, 0.83),
        "snpe": (0.97, 0.85, 0.67),
        "nre": (0.97, 0.95, 0.92),
        "snre": (0.97, 0.92, 0.72),
    },
    "gaussian_linear": {
        "nle": (0.65, 0.56, 0.52),
        "snle": (0.63, 0.55, 0.52),
        "npe": (0.69, 0.55, 0.51),
        "snpe": (0.65, 0.54, 0.51),
        "nre": (0.67, 0.56, 0.54),
        "snre": (0.67, 0.54, 0.52),
    },
    "sir": {
        "nle": (0.76, 0.75, 0.73),
        "snle": (0.75, 0.75, 0.65),
        "npe": (0.82, 0.68, 0.59),
        "snpe": (0.64, 0.56, 0.58),
        "nre": (0.84, 0.77, 0.69),
        "snre": (0.64, 0.65, 0.55),
    },
    "lotka_volterra": {
        "nle": (0.99, 0.96, 0.95),
        "snle": (0.91, 0.74, 0.70),
        "npe": (1.0, 1.0, 0.98),
        "snpe": (0.99, 0.95, 0.93),
        "nre": (1.0, 1.0, 1.0),
        "snre": (0.97, 0.85, 0.83),
    },
}


def published(task: str, method: str, n: int) -> float | None:
    """sbibm's mean C2ST for ``method`` on ``task`` at ``n`` simulations (None: not published;
    NPSE and FMPE are compared with sbibm's NPE)."""
    row = _TABLE.get(task, {}).get({"npse": "npe", "fmpe": "npe"}.get(method, method))
    return None if row is None or n not in _BUDGETS else row[_BUDGETS.index(n)]


@dataclass(frozen=True)
class _Entry:
    build: Callable  # () -> an sbi_kit method with its defaults
    sequential: bool = False


def _methods() -> dict[str, _Entry]:
    import sbi_kit as sk

    return {
        "npe": _Entry(sk.NPE),
        "nle": _Entry(sk.NLE),
        "nre": _Entry(sk.NRE),
        "npse": _Entry(sk.NPSE),
        "fmpe": _Entry(sk.FMPE),
        "snpe": _Entry(sk.NPE, sequential=True),
        "snle": _Entry(sk.NLE, sequential=True),
        "snre": _Entry(sk.NRE, sequential=True),
    }


METHOD_NAMES = ("npe", "nle", "nre", "npse", "fmpe", "snpe", "snle", "snre")
FLOW_METHODS = ("npe", "nle", "snpe", "snle")
VECTOR_FIELD_METHODS = ("npse", "fmpe")
RATIO_METHODS = ("nre", "snre")
# --flow: the estimators' flow specs by their class names and the settings that differ from
# the class's defaults
FLOWS = {
    "nsf": ("NSF", {}),
    "maf": ("MAF", {}),
    "coupling_nsf": ("CouplingNSF", {}),
    "affine_nsf": ("NSF", {"affine": True}),
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--method", choices=METHOD_NAMES, required=True, help="inference method")
    p.add_argument("--tasks", default=",".join(TASKS), help="comma-separated task names")
    p.add_argument("--simulations", default="1000,10000", help="budgets (default: %(default)s)")
    p.add_argument("--observations", default="1-10", help="e.g. 1-10 or 1,4 (default: %(default)s)")
    p.add_argument("--seeds", default="0", help="seeds, e.g. 0-2 (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=10, help="sequential rounds (default: 10)")
    p.add_argument(
        "--snpe",
        choices=("apt", "tsnpe"),
        default="apt",
        help="snpe: APT's atomic loss (default, as sk.sequential's for NPE since 2026-12-06) or "
        "truncated proposals (the default before; its result files say tsnpe)",
    )
    p.add_argument(
        "--apt-patience",
        type=int,
        default=None,
        help="snpe apt: early-stopping patience of the atomic rounds (round 2 on; "
        "APT(training=...)), default: the method's, as in round 1",
    )
    p.add_argument(
        "--quantile-samples",
        type=int,
        default=None,
        help="snpe tsnpe: posterior draws that estimate the HPD threshold (default: TSNPE's)",
    )
    p.add_argument(
        "--no-warm-start",
        dest="warm_start",
        action="store_false",
        help="sequential methods: new networks every round (default: continue the previous)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="training batch size (default: the method's; sbibm's sequential runs used 10000, "
        "i.e. the whole data set at these budgets)",
    )
    p.add_argument(
        "--patience",
        type=int,
        default=None,
        help="early-stopping patience in epochs (default: the method's)",
    )
    p.add_argument(
        "--lr-plateau-steps",
        type=int,
        default=None,
        help="Training.lr_plateau_steps: reduce the learning rate after this many steps without "
        "a better validation loss (default: the method's)",
    )
    p.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help="Training.learning_rate (default: the method's)",
    )
    p.add_argument(
        "--ema-decay",
        type=float,
        default=None,
        help="Training.ema_decay: validate, keep and return a moving average of the "
        "parameters with this decay per step (default: the method's)",
    )
    p.add_argument(
        "--lr-reductions",
        type=int,
        default=None,
        help="Training.lr_reductions (default: the method's)",
    )
    p.add_argument(
        "--flow",
        choices=tuple(FLOWS),
        default=None,
        help="npe/nle and their sequential variants: the flow, at its defaults (default: the "
        "method's: NSF for NPE, for NLE the better of NSF and MAF by validation loss)",
    )
    p.add_argument(
        "--activation",
        default=None,
        help="npe/nle (and sequential): the flow's conditioner activation; npse/fmpe: the "
        "network's (e.g. gelu; default: the method's)",
    )
    p.add_argument(
        "--nre-classes",
        type=int,
        default=None,
        help="nre/snre: K of the default NRE_C loss (default: NRE_C's, 5)",
    )
    p.add_argument(
        "--width",
        type=int,
        default=None,
        help="nre/snre: hidden units of the classifier (default: NRE's, 100)",
    )
    p.add_argument(
        "--ensemble-size",
        type=int,
        default=None,
        help="independently initialised networks per posterior (default: the method's, 1)",
    )
    p.add_argument("--num-samples", type=int, default=10_000, help="samples per observation")
    p.add_argument(
        "--ppc",
        type=int,
        default=0,
        metavar="M",
        help="also run sk.diagnostics.posterior_predictive_check with M replicates on every "
        "posterior and record its p-value beside the C2ST (default: 0, not run)",
    )
    add_c2st_and_resume_arguments(p)
    p.add_argument("--out", type=Path, default=None, help="output path without suffix")
    args = p.parse_args(argv)
    if args.apt_patience is not None and args.snpe != "apt":
        p.error("--apt-patience sets APT's later rounds: give it with --snpe apt")
    if args.quantile_samples is not None and args.snpe != "tsnpe":
        p.error("--quantile-samples sets TSNPE's threshold: give it with --snpe tsnpe")
    if args.flow is not None and args.method not in FLOW_METHODS:
        p.error(f"--flow applies to {', '.join(FLOW_METHODS)}, not --method {args.method}")
    if args.activation is not None and args.method not in FLOW_METHODS + VECTOR_FIELD_METHODS:
        p.error(
            f"--activation applies to {', '.join(FLOW_METHODS + VECTOR_FIELD_METHODS)}, "
            f"not --method {args.method}"
        )
    ratio = args.method in RATIO_METHODS
    if (args.nre_classes is not None or args.width is not None) and not ratio:
        p.error(f"--nre-classes and --width apply to {', '.join(RATIO_METHODS)}")
    if args.out is None:
        args.out = RESULTS_DIR / f"sbibm_{args.method}"
    return args


def summarise(results: dict) -> list[dict]:
    method = results["settings"]["method"]
    groups: dict[tuple, list] = {}
    for run in results["runs"].values():
        groups.setdefault((run["task"], run["num_simulations"]), []).append(run)
    rows = []
    for (task, n), runs in sorted(groups.items()):
        values = [v for r in runs for v in r["c2st"].values() if v is not None]
        reference = published(task, method, n)
        mean = statistics.mean(values) if values else None
        seconds = [s for r in runs for s in r["seconds"].values()]
        rows.append(
            {
                "task": task,
                "num_simulations": n,
                "c2st_mean": mean,
                "c2st_sd": statistics.stdev(values) if len(values) > 1 else None,
                "num_c2st": len(values),
                "sbibm": reference,
                "at_or_below_sbibm": None
                if reference is None or mean is None
                else bool(mean <= reference),
                "seconds_mean": statistics.mean(seconds) if seconds else None,
                "max_r_hat": max(
                    (v for r in runs for v in r.get("max_r_hat", {}).values()), default=None
                ),
            }
        )
    return rows


def without_training(estimator: str) -> str:
    """An estimator's repr without its ``training=Training(...)`` argument."""
    import re

    text = re.sub(r"training=Training\([^()]*\)(, )?", "", estimator)
    return text.replace(", )", ")")


def training_text(recorded: str) -> str:
    """A recorded ``repr(Training(...))`` with only the fields that differ from
    ``sk.Training()``'s, so that a file says which training its runs used even after a method's
    default changes."""
    import re

    from sbi_kit import Training

    defaults = {f.name: repr(f.default) for f in dataclasses.fields(Training)}
    pairs = re.findall(r"(\w+)=([^,()]+)", recorded)
    changed = [f"{k}={v}" for k, v in pairs if defaults.get(k) != v]
    return f"Training({', '.join(changed)})"


def markdown(results: dict) -> str:
    s, m, v = results["settings"], results["machine"], results["versions"]
    method = s["method"]
    recorded = s.get("training") not in (None, "None")
    # the training is printed once, from its record, where the file has one
    estimator = without_training(s["estimator"]) if recorded else s["estimator"]
    compared = {"npse": "NPE", "fmpe": "NPE"}.get(method, method.upper())
    lines = [
        f"# sbi_kit {method.upper()} on the sbibm tasks",
        "",
        f"sbi_kit {v.get('sbi_kit')} (jax {v.get('jax')}), {m['cpu']} ({m['cpu_count']} cores), "
        f"CPU. Measured {m['date']}. `{estimator}` "
        "(settings not shown: the library defaults)"
        + (f", training `{training_text(s['training'])}`" if recorded else "")
        + (f", {s['rounds']} rounds sharing each budget" if s["sequential"] else "")
        + (_WARM_START.get(s.get("warm_start"), "") if s["sequential"] else "")
        + (f" ({_SNPE_TEXT.get(s['snpe'], s['snpe'])})" if s.get("snpe") else "")
        + f"; {s['num_samples']:,} samples per observation, C2ST against 10,000 reference "
        f"samples (sbibm's classifier); observations {s['observations']}, seeds {s['seeds']}.",
        "",
    ]
    head = ["task", "simulations", "C2ST mean", "sd", "n", f"sbibm {compared}", "≤ sbibm"]
    head += ["seconds per posterior", "max R̂"]
    body = []
    for r in results["summary"]:
        ok = {None: "", True: "yes", False: "**no**"}[r["at_or_below_sbibm"]]
        body.append(
            [
                r["task"],
                f"{r['num_simulations']:,}",
                fmt(r["c2st_mean"]),
                fmt(r["c2st_sd"]),
                str(r["num_c2st"]),
                fmt(r["sbibm"], 2) if r["sbibm"] is not None else "n/a",
                ok,
                fmt(r["seconds_mean"], 0),
                fmt(r["max_r_hat"], 3) if r["max_r_hat"] is not None else "",
            ]
        )
    lines += [table(head, body), ""]
    lines += [
        "Seconds per posterior: training (amortised: once per task, budget and seed) or the "
        "whole sequential run (per observation), plus sampling. Max R̂: the worst split-R̂ of "
        "the MCMC runs (NLE/NRE and their sequential variants).",
        "",
        "## Per observation",
        "",
    ]
    obs = s["observations"]
    body = [
        [run["task"], f"{run['num_simulations']:,}", str(run["seed"])]
        + [fmt(run["c2st"].get(str(i))) for i in obs]
        for run in sorted(
            results["runs"].values(), key=lambda r: (r["task"], r["num_simulations"], r["seed"])
        )
    ]
    lines += [table(["task", "simulations", "seed"] + [str(i) for i in obs], body)]
    checked = [run for run in results["runs"].values() if run.get("ppc_p")]
    if checked:
        lines += [
            "",
            "## Posterior predictive check",
            "",
            "p-value of `sk.diagnostics.posterior_predictive_check` (replicates: "
            f"{s.get('ppc')}) per observation, **bold** where it fails at its default level 0.05; "
            "the C2ST of the same posterior in brackets.",
            "",
        ]
        body = [
            [run["task"], f"{run['num_simulations']:,}", str(run["seed"])]
            + [_ppc_cell(run, i) for i in obs]
            for run in sorted(checked, key=lambda r: (r["task"], r["num_simulations"], r["seed"]))
        ]
        lines += [table(["task", "simulations", "seed"] + [str(i) for i in obs], body)]
    return "\n".join(lines)


def _ppc_cell(run: dict, i: int) -> str:
    p = run["ppc_p"].get(str(i))
    if p is None:
        return "–"
    text = f"**{p:.3f}**" if p < 0.05 else f"{p:.3f}"
    return f"{text} ({fmt(run['c2st'].get(str(i)))})"


_WARM_START = {
    True: ", each round continuing the previous round's networks (warm start)",
    False: ", new networks every round",
}


def _draw(sk, posterior, key, x_o, num_samples, run, i):
    """Samples for observation ``i``, recording R̂ for MCMC posteriors."""
    if isinstance(posterior, sk.inference.AbstractPotentialPosterior):
        samples, result = posterior.sample(key, x_o, num_samples, return_diagnostics=True)
        run["max_r_hat"][str(i)] = result.max_r_hat
        return samples
    return posterior.sample(key, x_o, num_samples)


_SNPE_TEXT = {"apt": "APT, atomic loss", "tsnpe": "TSNPE"}


def _snpe(sk, args, training) -> tuple[object, str]:
    """The SNPE strategy for ``sk.sequential`` (always explicit, so a change of the library's
    default cannot change what a label means) and how the settings and the table name it:
    "apt", "tsnpe", or a description when it is not at its defaults. ``training``: the
    method's, which ``--apt-patience`` changes for the atomic rounds."""
    if args.snpe == "apt":
        if args.apt_patience is not None:
            later = dataclasses.replace(training, patience=args.apt_patience)
            label = f"apt, patience {args.apt_patience} from round 2"
            return sk.inference.APT(training=later), label
        return sk.inference.APT(), "apt"
    if args.quantile_samples is not None:
        strategy = sk.inference.TSNPE(num_quantile_samples=args.quantile_samples)
        return strategy, repr(strategy)
    return sk.inference.TSNPE(), "tsnpe"


def main(argv=None) -> None:
    args = parse_args(argv)
    import jax
    from threadpoolctl import threadpool_limits

    import sbi_kit as sk

    entry = _methods()[args.method]
    method = entry.build()
    changes = {
        "batch_size": args.batch_size,
        "patience": args.patience,
        "lr_plateau_steps": args.lr_plateau_steps,
        "learning_rate": args.learning_rate,
        "lr_reductions": args.lr_reductions,
        "ema_decay": args.ema_decay,
    }
    changes = {k: v for k, v in changes.items() if v is not None}
    if changes:
        training = dataclasses.replace(method.training, **changes)
        method = dataclasses.replace(method, training=training)
    snpe, snpe_label = _snpe(sk, args, method.training)
    if args.flow is not None:
        name, flow_settings = FLOWS[args.flow]
        method = dataclasses.replace(method, flow=getattr(sk.estimators, name)(**flow_settings))
    if args.activation is not None:
        field = "flow" if args.method in FLOW_METHODS else "network"
        if isinstance(getattr(method, field), sk.estimators.BestOf):
            raise SystemExit("sbibm.py: --activation needs one flow; pass --flow as well")
        spec = dataclasses.replace(getattr(method, field), activation=args.activation)
        method = dataclasses.replace(method, **{field: spec})
    if args.nre_classes is not None:
        loss = dataclasses.replace(method.loss_fn, num_classes=args.nre_classes)
        method = dataclasses.replace(method, loss_fn=loss)
    if args.width is not None:
        method = dataclasses.replace(method, width=args.width)
    if args.ensemble_size is not None:
        method = dataclasses.replace(method, ensemble_size=args.ensemble_size)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    budgets = parse_int_list(args.simulations)
    observations = parse_int_list(args.observations)
    seeds = parse_int_list(args.seeds)
    json_path, md_path = args.out.with_suffix(".json"), args.out.with_suffix(".md")
    settings = {
        "method": args.method,
        "estimator": repr(method),
        # the whole training configuration, defaults included: repr(method) omits fields at
        # their defaults, so it stays the same when a default changes
        "training": repr(getattr(method, "training", None)),
        "sequential": entry.sequential,
        "rounds": args.rounds if entry.sequential else 1,
        "warm_start": args.warm_start if entry.sequential else None,
        "snpe": snpe_label if args.method == "snpe" else None,
        "tasks": tasks,
        "simulations": budgets,
        "observations": observations,
        "seeds": seeds,
        "num_samples": args.num_samples,
        "ppc": args.ppc,
    }
    results = {
        "benchmark": f"sbibm_{args.method}",
        "machine": machine(),
        "versions": versions(["sbi_kit", "jax", "jaxlib", "flowjax", "numpyro", "scikit-learn"]),
        "settings": settings,
        "runs": {},
    }
    previous = None if args.fresh else read_json(json_path)
    if previous:
        # files written before "training" was recorded resume on the other keys only; where it
        # was, it is compared in full and the estimator without it (whose repr shows the
        # training only where it differs from the method's default of the day)
        recorded = "training" in previous["settings"]
        keys = ["estimator", "warm_start", "snpe"] + (["training"] if recorded else [])

        def value(where: dict, key: str):
            if key == "estimator" and recorded:
                return without_training(where[key])
            if key == "training" and where.get(key) not in (None, "None"):
                # the fields that differ from sk.Training()'s: a file written before a field
                # existed (e.g. weight_decay) ran with that field's default
                return training_text(where[key])
            return where.get(key)

        differ = [k for k in keys if value(previous["settings"], k) != value(settings, k)]
        if differ:
            raise SystemExit(
                f"{json_path} holds runs with other settings ({', '.join(differ)}: "
                f"{[previous['settings'].get(k) for k in differ]} against "
                f"{[settings[k] for k in differ]}); pass another --out, or --fresh to replace "
                "them."
            )
        results["runs"] = previous["runs"]
        old = previous["settings"]
        settings["observations"] = sorted(set(observations) | set(old["observations"]))
        settings["seeds"] = sorted(set(seeds) | set(old["seeds"]))

    def save():
        results["summary"] = summarise(results)
        write_json(json_path, results)
        write_markdown(md_path, markdown(results))

    def ppc(posterior, task, i, run):
        if not args.ppc:
            return
        check = sk.diagnostics.posterior_predictive_check(
            jax.random.fold_in(jax.random.key(17), i),
            posterior,
            task,
            task.observation(i),
            num_simulations=args.ppc,
            warn=False,
        )
        run.setdefault("ppc_p", {})[str(i)] = check.p_value
        print(f"  obs {i}: predictive check p = {check.p_value:.3f}", flush=True)

    def c2st(samples, reference, run, i):
        try:
            with threadpool_limits(limits=args.blas_threads):
                run["c2st"][str(i)] = sk.diagnostics.c2st(np.asarray(samples), reference)
        except ValueError as err:  # non-finite samples
            run["c2st"][str(i)], run["errors"][str(i)] = None, str(err)
        print(f"  obs {i}: C2ST {fmt(run['c2st'][str(i)])}", flush=True)
        save()

    for task_name in tasks:
        task = sk.tasks.get(task_name)
        for n in budgets:
            for seed in seeds:
                key = f"{task_name}/{n}/seed{seed}"
                run = results["runs"].setdefault(
                    key,
                    {
                        "task": task_name,
                        "num_simulations": n,
                        "seed": seed,
                        "c2st": {},
                        "seconds": {},
                        "errors": {},
                        "max_r_hat": {},
                    },
                )
                missing = [i for i in observations if str(i) not in run["c2st"]]
                if not missing:
                    print(f"[skip] {key}", flush=True)
                    continue
                key_sim, key_fit, key_sample = jax.random.split(jax.random.key(seed), 3)
                if entry.sequential:
                    for i in missing:
                        print(f"[sequential] {key} obs {i}", flush=True)
                        start = time.perf_counter()
                        result = sk.sequential(
                            jax.random.fold_in(key_fit, i),
                            method,
                            task,
                            task.observation(i),
                            rounds=args.rounds,
                            simulations_per_round=n // args.rounds,
                            warm_start=args.warm_start,
                            snpe=snpe,
                            progress=False,
                        )
                        if any(h is not None and h.choice for h in result.histories):
                            # a BestOf flow: the flow each round kept, round by round
                            run.setdefault("flow_choice", {})[str(i)] = [
                                repr(p.method.flow) for p in result.posteriors
                            ]
                        samples = _draw(
                            sk,
                            result.posterior,
                            jax.random.fold_in(key_sample, i),
                            task.observation(i),
                            args.num_samples,
                            run,
                            i,
                        )
                        run["seconds"][str(i)] = time.perf_counter() - start
                        ppc(result.posterior, task, i, run)
                        c2st(samples, task.reference_samples(i), run, i)
                    continue
                print(f"[train] {key}", flush=True)
                start = time.perf_counter()
                sims = sk.simulate(key_sim, task, n, progress=False)
                posterior = method.fit(
                    key_fit, sims.theta, sims.x, prior=task.prior, progress=False
                )
                train_s = time.perf_counter() - start
                if posterior.history is not None and posterior.history.choice:
                    # a BestOf flow (NLE's default): each candidate's lowest validation loss
                    run["flow_choice"] = dict(posterior.history.choice)
                for i in missing:
                    start = time.perf_counter()
                    samples = _draw(
                        sk,
                        posterior,
                        jax.random.fold_in(key_sample, i),
                        task.observation(i),
                        args.num_samples,
                        run,
                        i,
                    )
                    run["seconds"][str(i)] = train_s + time.perf_counter() - start
                    ppc(posterior, task, i, run)
                    c2st(samples, task.reference_samples(i), run, i)
    save()
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
