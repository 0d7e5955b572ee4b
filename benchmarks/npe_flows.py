"""Which flow fits best, for NPE or NLE: held-out log-density, and the exact KL where known.

For each task, seed and flow spec: ``sk.NPE(flow=spec)`` (or ``sk.NLE(flow=spec)`` with
``--method nle``) trained with its default training (optionally with
``Training(weight_decay=w)`` and a learning-rate schedule on plateaus,
``Training(lr_plateau_steps=p, lr_reductions=r)``) on ``sk.simulate(key(seed), task, n)`` — the
data of ``npe_vs_sbi.py``'s seeds — with fit key ``key(10_000 + seed)``, then scored on 5,000
fresh pairs from ``key(2**20 + seed)``: the mean held-out ``log q(θ | x)`` for NPE, ``log q(x | θ)``
for NLE (higher is better; the amortised average of what C2ST checks at single observations).
The KL divergence from the truth averaged over the fresh pairs, where the truth is known: for NPE
on gaussian_linear, whose posterior is exact (``N(x/2, 0.05·I)``), the mean of
``log p(θ | x) − log q(θ | x)``; for NLE on every task whose simulator has an exact likelihood
(two_moons, gaussian_linear, slcp, ...), the mean of ``log p(x | θ) − log q(x | θ)``.
No C2ST, no sampling and no MCMC: a cheap, low-noise screen for flow settings before a C2ST
benchmark.

Writes ``benchmarks/results/npe_flows.{json,md}`` (``nle_flows`` with ``--method nle``; resumes:
cells on disk are skipped)::

    python benchmarks/npe_flows.py --tasks gaussian_linear --seeds 0-1 --flows nsf,maf
        [--simulations 10000] [--weight-decay 0,1] [--lr-plateau-steps 0,1800 --lr-reductions 4]
    python benchmarks/npe_flows.py --method nle --tasks slcp --flows nsf,maf,affine_nsf
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import (  # noqa: E402
    RESULTS_DIR,
    fmt,
    machine,
    machine_line,
    parse_int_list,
    read_json,
    table,
    versions,
    write_json,
    write_markdown,
)

NAME = "npe_flows"
NUM_TEST = 5_000


def flow_specs() -> dict:
    """The flow specs this script knows, by the name used on its command line."""
    from sbi_kit.estimators import MAF, NSF

    t = math.sqrt(50)  # sbi's knot temperature for its 50-unit conditioners
    return {
        "nsf": NSF(),
        "maf": MAF(),
        "maf_l10": MAF(layers=10),
        "nsf_tanh": NSF(activation="tanh"),
        "nsf_gelu": NSF(activation="gelu"),
        "nsf_t7": NSF(knot_temperature=t),
        "nsf_t7tanh": NSF(knot_temperature=t, activation="tanh"),
        "nsf_k4": NSF(knots=4),
        "nsf_l2": NSF(layers=2),
        "nsf_w32": NSF(width=32),
        "nsf_d1": NSF(depth=1),
        "nsf_i3": NSF(interval=3.0),
        "nsf_i8": NSF(interval=8.0),
        "nsf_l8": NSF(layers=8),
        "nsf_w100": NSF(width=100),
        "affine_nsf": NSF(affine=True),
        "affine_nsf_gelu": NSF(affine=True, activation="gelu"),
        "nsf_gelu_k5": NSF(knots=5, activation="gelu"),
        "nsf_gelu_w32": NSF(width=32, activation="gelu"),
        "maf_gelu": MAF(activation="gelu"),
    }


def chosen_flows(text: str, script: str) -> tuple[dict, list[str]]:
    """:func:`flow_specs` and the names in the comma-separated ``text``; exits naming any
    unknown one."""
    specs = flow_specs()
    flows = [f.strip() for f in text.split(",") if f.strip()]
    unknown = [f for f in flows if f not in specs]
    if unknown:
        raise SystemExit(f"{script}: unknown flows {unknown}; known: {sorted(specs)}")
    return specs, flows


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--method", choices=("npe", "nle"), default="npe")
    p.add_argument("--tasks", default="gaussian_linear")
    p.add_argument("--simulations", type=int, default=10_000)
    p.add_argument("--seeds", default="0", help="e.g. 0-2 (default: %(default)s)")
    p.add_argument("--flows", default="nsf,maf", help="comma-separated names (see flow_specs)")
    p.add_argument("--weight-decay", default="0", help="comma-separated values (default: 0)")
    p.add_argument(
        "--lr-plateau-steps",
        default="0",
        help="comma-separated Training.lr_plateau_steps values, 0 for none (default: 0)",
    )
    p.add_argument("--lr-reductions", type=int, default=4, help="Training.lr_reductions")
    p.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help="Training.learning_rate (default: the method's)",
    )
    p.add_argument("--fresh", action="store_true", help="ignore results already on disk")
    p.add_argument("--out", type=Path, default=None, help="default: results/npe_flows or nle_flows")
    args = p.parse_args(argv)
    if args.out is None:
        args.out = RESULTS_DIR / f"{args.method}_flows"
    return args


def run_cell(sk, jax, method: str, task_name: str, n: int, seed: int, spec, changes: dict) -> dict:
    import dataclasses

    import equinox as eqx
    import numpyro.distributions as dist

    task = sk.tasks.get(task_name)
    theta, x = sk.simulate(jax.random.key(seed), task, n, progress=False)
    theta_test, x_test = sk.simulate(jax.random.key(2**20 + seed), task, NUM_TEST, progress=False)
    estimator = sk.NLE(flow=spec) if method == "nle" else sk.NPE(flow=spec)
    if changes:
        training = dataclasses.replace(estimator.training, **changes)
        estimator = dataclasses.replace(estimator, training=training)
    start = time.perf_counter()
    posterior = estimator.fit(
        jax.random.key(10_000 + seed), theta, x, prior=task.prior, progress=False
    )
    seconds = time.perf_counter() - start
    if method == "nle":
        lq = posterior.likelihood(theta_test).log_prob(x_test)
        exact_log_likelihood = task.simulator.log_likelihood
        exact = (
            None
            if exact_log_likelihood is None
            else jax.vmap(exact_log_likelihood)(theta_test, x_test)
        )
    else:
        log_q = eqx.filter_jit(jax.vmap(lambda t, xo: posterior.log_prob(t, xo)))
        lq = log_q(theta_test, x_test)
        exact = None
        if task_name == "gaussian_linear":  # exact posterior N(x/2, 0.05 I) (the task's docstring)
            exact = dist.Normal(x_test / 2, math.sqrt(0.05)).to_event(1).log_prob(theta_test)
    lq = np.asarray(lq, dtype=np.float64)
    history = posterior.history
    val = np.asarray(history.validation_loss)
    best = int(np.argmin(val))
    out = {
        "seconds": seconds,
        "epochs": len(val),
        "best_epoch": best + 1,
        "train_loss_at_best": float(history.train_loss[best]),
        "train_loss_last": float(history.train_loss[-1]),
        "validation_loss_best": float(val[best]),
        "validation_loss_last": float(val[-1]),
        "learning_rate_reductions": list(history.learning_rate_reductions),
        "heldout_log_q": float(lq.mean()),
        "heldout_se": float(lq.std() / math.sqrt(lq.size)),
    }
    if exact is not None:
        gap = np.asarray(exact, dtype=np.float64) - lq
        out["kl"] = float(gap.mean())
        out["kl_se"] = float(gap.std() / math.sqrt(gap.size))
    return out


def schedule_text(schedule: list[str], cell: dict) -> str:
    """``lr_plateau_steps`` × ``lr_reductions`` of a cell's key and the epochs at which its rate was
    reduced, and a learning rate other than the method's, or "-" without either."""
    if not schedule:
        return "-"
    text = []
    for part in schedule:
        if part.startswith("lrsteps"):
            steps, reductions = part.removeprefix("lrsteps").split("x")
            epochs = ", ".join(str(e + 1) for e in cell.get("learning_rate_reductions", []))
            text.append(f"{steps} steps × {reductions} ({epochs or 'none'})")
        else:  # "lr<learning rate>"
            text.append(f"learning rate {part.removeprefix('lr')}")
    return "; ".join(text)


def markdown(result: dict) -> str:
    if result.get("method", "npe") == "nle":
        lines = [
            "# NLE flows: held-out log-likelihood and the KL from the exact likelihood",
            "",
            "Each row: `sk.NLE(flow=...)` with its default training (and the weight decay and "
            "learning-rate schedule shown) on "
            f"`sk.simulate(key(seed), task, n)`, fit key `key(10000 + seed)`, scored on "
            f"{NUM_TEST:,} fresh pairs (θ from the prior). Held-out: mean `log q(x | θ)` ± its "
            "standard error (higher is better). KL: mean `log p(x | θ) − log q(x | θ)` under the "
            "task's exact likelihood (0 is perfect; tasks without one: -). Best epoch: the kept "
            "one (lowest validation loss) of those run.",
            "",
        ]
    else:
        lines = [
            "# NPE flows: held-out log-density and, on gaussian_linear, the KL from the exact "
            "posterior",
            "",
            "Each row: `sk.NPE(flow=...)` with its default training (and the weight decay and "
            "learning-rate schedule shown) on "
            f"`sk.simulate(key(seed), task, n)`, fit key `key(10000 + seed)`, scored on "
            f"{NUM_TEST:,} fresh pairs. Held-out: mean `log q(θ | x)` ± its standard error "
            "(higher is better). KL: mean `log p(θ | x) − log q(θ | x)` under the exact "
            "posterior (gaussian_linear only; 0 is perfect). Best epoch: the kept one (lowest "
            "validation loss) of those run.",
            "",
        ]
    head = [
        "task",
        "n",
        "seed",
        "flow",
        "weight decay",
        "lr plateau × reductions (reduced after epochs); learning rate",
        "held-out log q",
        "KL",
        "best epoch / epochs",
        "train loss at best → last",
        "validation loss best → last",
        "s",
    ]
    rows = []
    for key in sorted(result["cells"]):
        c = result["cells"][key]
        task, n, seed, flow, wd, *schedule = key.split("/")
        kl = f"{fmt(c['kl'])} ± {fmt(c['kl_se'])}" if "kl" in c else "-"
        rows.append(
            [
                task,
                n,
                seed,
                f"`{flow}`",
                wd,
                schedule_text(schedule, c),
                f"{fmt(c['heldout_log_q'])} ± {fmt(c['heldout_se'])}",
                kl,
                f"{c['best_epoch']} / {c['epochs']}",
                f"{fmt(c['train_loss_at_best'])} → {fmt(c['train_loss_last'])}",
                f"{fmt(c['validation_loss_best'])} → {fmt(c['validation_loss_last'])}",
                fmt(c["seconds"], 1),
            ]
        )
    specs = ", ".join(f"`{k}`: `{v}`" for k, v in result["specs"].items())
    lines += [table(head, rows), "", f"Flows: {specs}.", "", machine_line(result), ""]
    return "\n".join(lines)


def main(argv=None) -> None:
    args = parse_args(argv)
    import jax

    import sbi_kit as sk

    specs, flows = chosen_flows(args.flows, "npe_flows.py")
    decays = [float(w) for w in args.weight_decay.split(",")]
    plateaus = [int(v) for v in args.lr_plateau_steps.split(",")]
    json_path = args.out.with_suffix(".json")
    result = (None if args.fresh else read_json(json_path)) or {"cells": {}, "method": args.method}
    if result.get("method", "npe") != args.method:
        raise SystemExit(
            f"npe_flows.py: {json_path} holds {result.get('method', 'npe')} cells, not "
            f"{args.method}; pass another --out"
        )
    result.update(
        benchmark=NAME,
        method=args.method,
        machine=machine(),
        versions=versions(["sbi_kit", "jax", "flowjax", "optax"]),
    )
    result.setdefault("specs", {})
    ran = 0
    for task in args.tasks.split(","):
        for seed in parse_int_list(args.seeds):
            for flow in flows:
                for wd, lp in itertools.product(decays, plateaus):
                    key = f"{task}/{args.simulations}/{seed}/{flow}/{wd:g}"
                    changes: dict = {"weight_decay": wd} if wd else {}
                    if lp:  # keys of runs without a schedule are as before it existed
                        key += f"/lrsteps{lp}x{args.lr_reductions}"
                        changes.update(lr_plateau_steps=lp, lr_reductions=args.lr_reductions)
                    if args.learning_rate is not None:
                        key += f"/lr{args.learning_rate:g}"
                        changes["learning_rate"] = args.learning_rate
                    if key in result["cells"]:
                        continue
                    print(f"[{key}]", flush=True)
                    cell = run_cell(
                        sk, jax, args.method, task, args.simulations, seed, specs[flow], changes
                    )
                    print(
                        "  "
                        + ", ".join(
                            f"{k} {v:.4g}" for k, v in cell.items() if not isinstance(v, list)
                        ),
                        flush=True,
                    )
                    result["cells"][key] = cell
                    result["specs"][flow] = repr(specs[flow])
                    write_json(json_path, result)  # after every cell, so a stopped run resumes
                    write_markdown(args.out.with_suffix(".md"), markdown(result))
                    ran += 1
    print(f"{ran} new cells; results in {json_path} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
