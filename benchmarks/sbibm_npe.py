"""sbi_kit NPE on the sbibm tasks, C2ST against the reference posteriors, beside sbibm's numbers.

NPE is amortised: for each task, simulation budget and seed one posterior is trained, then
10,000 samples are drawn for each observation and compared with the task's 10,000 reference
samples by C2ST (sbibm's classifier, ``sk.diagnostics.c2st``; 0.5 is ideal). The mean over the
observations is reported next to the published NPE results of sbibm (Lueckmann et al., 2021).

Run from the repository root (see benchmarks/README.md)::

    python benchmarks/sbibm_npe.py                                   # six tasks, 10^3 and 10^4
    python benchmarks/sbibm_npe.py --tasks two_moons --simulations 1000 --observations 1-2 \
        --out /tmp/sbibm_quick                                       # a quick check

Results are written after every C2ST to ``benchmarks/results/sbibm_npe.{json,md}``; a rerun
skips what is already there (``--fresh`` starts over). A (task, budget, seed) whose C2STs are
incomplete is retrained with the same key (training is deterministic on CPU) and only the
missing observations are evaluated. ``--ensemble-size``, ``--layers``, ``--width``,
``--knots`` and ``--max-epochs`` change the estimator (use another ``--out`` for such variants).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
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

NAME = "sbibm_npe"
TASKS = (
    "two_moons",
    "gaussian_linear",
    "gaussian_linear_uniform",
    "gaussian_mixture",
    "slcp",
    "bernoulli_glm",
    "sir",
    "lotka_volterra",
)

# Mean C2ST over the 10 observations of sbibm's NPE (an NSF trained by `sbi`), by simulations.
# "published": two_moons, slcp and gaussian_linear are the paper's figures (Lueckmann et al.,
# 2021) as listed in /work/shared/REFERENCES.md; gaussian_mixture is sbibm's re-run after the
# task fix of sbibm v1.1.0 (github.com/sbi-benchmark/results,
# gaussian_mixture_rerun/results/gaussian_mixture_rerun.csv, mean of its 10 NPE rows per budget).
# "rerun_sbi023": sbibm's re-run with sbi >= 0.23 (same repository,
# benchmarking_sbi_023/results/re-sbibm_sbi_023.csv, mean of the 10 NPE rows per budget; only
# the tasks whose rows were read are filled in). None: not found.
PUBLISHED: dict[str, dict] = {
    "two_moons": {
        "published": {1000: 0.73, 10000: 0.61},
        "rerun_sbi023": {1000: 0.667, 10000: 0.578},
        "source": "sbibm paper (REFERENCES.md); re-run: sbibm results repo, sbi 0.23",
    },
    "gaussian_linear": {
        "published": {1000: 0.69, 10000: 0.55},
        "rerun_sbi023": None,
        "source": "sbibm paper (REFERENCES.md)",
    },
    "gaussian_linear_uniform": {
        "published": None,
        "rerun_sbi023": None,
        "source": "n/a (not found)",
    },
    "gaussian_mixture": {
        "published": {1000: 0.716, 10000: 0.615},
        "rerun_sbi023": {1000: 0.639, 10000: 0.563},
        "source": "sbibm results repo: gaussian_mixture_rerun after the sbibm 1.1.0 task fix; "
        "re-run: sbi 0.23",
    },
    "slcp": {
        "published": {1000: 0.98, 10000: 0.90},
        "rerun_sbi023": {1000: 0.976, 10000: 0.897},
        "source": "sbibm paper (REFERENCES.md); re-run: sbibm results repo, sbi 0.23",
    },
    "bernoulli_glm": {"published": None, "rerun_sbi023": None, "source": "n/a (not found)"},
    "sir": {
        "published": {1000: 0.82, 10000: 0.68},
        "rerun_sbi023": None,
        "source": "sbibm paper (REFERENCES.md)",
    },
    "lotka_volterra": {
        "published": {1000: 1.0, 10000: 1.0},
        "rerun_sbi023": None,
        "source": "sbibm paper (REFERENCES.md)",
    },
}


def published(task: str, n: int, which: str = "published") -> float | None:
    table = (PUBLISHED.get(task) or {}).get(which) or {}
    return table.get(n)


# Accuracy goals of the issue, at 10,000 simulations.
GOALS = {
    ("two_moons", 10000): 0.60,
    ("gaussian_linear", 10000): 0.55,
    ("slcp", 10000): 0.85,
    # issue #10: beat sbibm's NPE (0.68 and 1.00 at 10^4)
    ("sir", 10000): 0.68,
    ("lotka_volterra", 10000): 1.0,
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--tasks",
        default=",".join(TASKS),
        help="comma-separated task names (default: the eight sbibm tasks)",
    )
    p.add_argument(
        "--simulations",
        default="1000,10000",
        help="comma-separated simulation budgets (default: %(default)s)",
    )
    p.add_argument(
        "--observations",
        default="1-10",
        help="observation indices, e.g. 1-10 or 1,4 (default: %(default)s)",
    )
    p.add_argument("--seeds", default="0", help="seeds, e.g. 0-2 (default: %(default)s)")
    p.add_argument(
        "--num-samples",
        type=int,
        default=10_000,
        help="posterior samples per observation (default: %(default)s)",
    )
    p.add_argument("--ensemble-size", type=int, default=1, help="NPE ensemble size (default: 1)")
    p.add_argument(
        "--flow",
        choices=("nsf", "coupling", "maf"),
        default="nsf",
        help="sk.estimators.NSF (masked autoregressive splines), CouplingNSF, or MAF (affine "
        "masked autoregressive; --knots and --knot-temperature do not apply) (default: "
        "%(default)s)",
    )
    p.add_argument(
        "--deepset",
        type=int,
        default=None,
        metavar="ELEMENT_DIM",
        help="embed x with sk.nn.DeepSetEmbedding(element_dim=ELEMENT_DIM), for observations "
        "made of i.i.d. draws such as slcp's four 2-d draws (default: no embedding)",
    )
    p.add_argument("--layers", type=int, default=5, help="NSF layers (default: 5)")
    p.add_argument("--width", type=int, default=50, help="NSF hidden units (default: 50)")
    p.add_argument("--knots", type=int, default=10, help="NSF spline knots (default: 10)")
    p.add_argument(
        "--knot-temperature",
        type=float,
        default=1.0,
        help="the flow's knot_temperature; sqrt(width) is nflows' choice (default: 1)",
    )
    p.add_argument("--max-epochs", type=int, default=1000, help="epoch cap (default: 1000)")
    p.add_argument(
        "--batch-size", type=int, default=None, help="training batch size (default: sk.Training's)"
    )
    p.add_argument(
        "--support",
        choices=("bijection", "rejection"),
        default=None,
        help="bounded-prior strategy, sk.inference.Bijection or Rejection (default: NPE's)",
    )
    add_c2st_and_resume_arguments(p)
    p.add_argument(
        "--out",
        type=Path,
        default=RESULTS_DIR / NAME,
        help="output path without suffix (default: benchmarks/results/sbibm_npe)",
    )
    return p.parse_args(argv)


def _training(args):
    import sbi_kit as sk

    default = sk.Training()
    batch = default.batch_size if args.batch_size is None else args.batch_size
    return sk.Training(max_epochs=args.max_epochs, batch_size=batch)


def _support(args):
    import sbi_kit as sk

    if args.support is None:
        return sk.NPE().support
    return {"bijection": sk.inference.Bijection, "rejection": sk.inference.Rejection}[
        args.support
    ]()


def _flow(args):
    import sbi_kit as sk

    if args.flow == "maf":
        return sk.estimators.MAF(layers=args.layers, width=args.width)
    spec = {"nsf": sk.estimators.NSF, "coupling": sk.estimators.CouplingNSF}[args.flow]
    return spec(
        layers=args.layers,
        width=args.width,
        knots=args.knots,
        knot_temperature=args.knot_temperature,
    )


def _embedding(args):
    import sbi_kit as sk

    return None if args.deepset is None else sk.nn.DeepSetEmbedding(element_dim=args.deepset)


def estimator_settings(args) -> dict:
    t, flow = _training(args), _flow(args)
    embedding = {} if args.deepset is None else {"embedding": repr(_embedding(args))}
    # Recorded only when set, so result files written before the option still resume.
    if args.knot_temperature != 1.0:
        embedding["knot_temperature"] = args.knot_temperature
    return embedding | {
        "flow": type(flow).__name__,
        "layers": args.layers,
        "width": args.width,
        "depth": getattr(flow, "depth", None) or f"{flow.blocks} residual blocks",
        "knots": args.knots,
        "ensemble_size": args.ensemble_size,
        "max_epochs": args.max_epochs,
        "training": f"sk.Training (batch {t.batch_size}, lr {t.learning_rate:g}, "
        f"{t.validation_fraction:.0%} validation, patience {t.patience}, clip {t.clip_norm})",
        "support": repr(_support(args)),
    }


def summarise(results: dict) -> list[dict]:
    groups: dict[tuple, list] = {}
    for run in results["runs"].values():
        groups.setdefault((run["task"], run["num_simulations"]), []).append(run)
    order = {t: i for i, t in enumerate(TASKS)}
    rows = []
    for (task, n), runs in sorted(
        groups.items(), key=lambda kv: (order.get(kv[0][0], 99), kv[0][1])
    ):
        values = [v for r in runs for v in r["c2st"].values() if v is not None]
        goal = GOALS.get((task, n))
        mean = statistics.mean(values) if values else None
        lps = [v for r in runs for v in r.get("ref_log_prob", {}).values()]
        rows.append(
            {
                "task": task,
                "num_simulations": n,
                "c2st_mean": mean,
                "c2st_sd": statistics.stdev(values) if len(values) > 1 else None,
                "c2st_min": min(values) if values else None,
                "c2st_max": max(values) if values else None,
                "num_c2st": len(values),
                "sbibm_npe": published(task, n),
                "sbibm_npe_rerun_sbi023": published(task, n, "rerun_sbi023"),
                "goal": goal,
                "goal_met": None if goal is None or mean is None else bool(mean <= goal),
                "ref_log_prob": statistics.mean(lps) if lps else None,
                "train_seconds": statistics.mean(r["train_seconds"] for r in runs),
                "epochs": statistics.mean(r["epochs"] for r in runs),
            }
        )
    return rows


def markdown(results: dict) -> str:
    s, m, v = results["settings"], results["machine"], results["versions"]
    est = s["estimator"]
    lines = [
        "# sbi_kit NPE on the sbibm tasks",
        "",
        f"sbi_kit {v.get('sbi_kit')} (jax {v.get('jax')}, flowjax {v.get('flowjax')}), "
        f"{m['cpu']} ({m['cpu_count']} cores), CPU. Measured {m['date']}.",
        "",
        f"Estimator: {est['flow']}, {est['layers']} layers, {est['width']} hidden units x "
        f"{est['depth']}, {est['knots']} knots (temperature "
        f"{est.get('knot_temperature', 1.0):.3g}), ensemble of {est['ensemble_size']}, "
        f"bounded priors by {est.get('support', 'Bijection()')}; "
        f"embedding {est.get('embedding', 'none')}; {est['training']}, at most "
        f"{est['max_epochs']} epochs. One posterior per task, budget and seed (amortised), "
        f"{s['num_samples']:,} samples per observation; C2ST against 10,000 reference samples "
        f"(sbibm's classifier), observations {s['observations']} (fewer where n says so: a 10-d "
        f"C2ST took 4-5 min on this machine), seeds {s['seeds']}.",
        "",
    ]
    head = [
        "task",
        "simulations",
        "C2ST mean",
        "sd",
        "min-max",
        "n",
        "sbibm NPE",
        "sbibm re-run (sbi 0.23)",
        "goal",
        "met",
        "ref log q",
        "train s",
        "epochs",
    ]
    body = []
    for r in results["summary"]:
        met = {None: "", True: "yes", False: "**no**"}[r["goal_met"]]
        body.append(
            [
                r["task"],
                f"{r['num_simulations']:,}",
                fmt(r["c2st_mean"]),
                fmt(r["c2st_sd"]),
                f"{fmt(r['c2st_min'])}-{fmt(r['c2st_max'])}",
                str(r["num_c2st"]),
                fmt(r["sbibm_npe"], 2) if r["sbibm_npe"] is not None else "n/a",
                fmt(r["sbibm_npe_rerun_sbi023"], 3) if r["sbibm_npe_rerun_sbi023"] else "n/a",
                fmt(r["goal"], 2) if r["goal"] is not None else "",
                met,
                fmt(r["ref_log_prob"], 2),
                fmt(r["train_seconds"], 0),
                fmt(r["epochs"], 0),
            ]
        )
    lines += [table(head, body), ""]
    lines += [
        "C2ST: mean over the n observations evaluated (0.5 is ideal). Goal: the issue's target "
        "at 10,000 simulations. Ref log q: mean log q(θ|x_o) of the reference samples over the "
        "same observations (higher is better; differences are differences of KL(reference || q)).",
        "",
        "sbibm NPE sources:",
        "",
    ]
    for task in TASKS:
        if task in PUBLISHED:
            lines.append(f"- {task}: {PUBLISHED[task]['source']}")
    lines += ["", "## Per observation", ""]
    obs = s["observations"]
    head = ["task", "simulations", "seed"] + [str(i) for i in obs]
    body = []
    order = {t: i for i, t in enumerate(TASKS)}
    for run in sorted(
        results["runs"].values(),
        key=lambda r: (order.get(r["task"], 99), r["num_simulations"], r["seed"]),
    ):
        body.append(
            [run["task"], f"{run['num_simulations']:,}", str(run["seed"])]
            + [fmt(run["c2st"].get(str(i))) for i in obs]
        )
    lines += [table(head, body)]
    return "\n".join(lines)


def main(argv=None) -> None:
    args = parse_args(argv)
    import equinox as eqx
    import jax
    from threadpoolctl import threadpool_limits

    import sbi_kit as sk

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    budgets = parse_int_list(args.simulations)
    observations = parse_int_list(args.observations)
    seeds = parse_int_list(args.seeds)
    json_path, md_path = args.out.with_suffix(".json"), args.out.with_suffix(".md")
    estimator = estimator_settings(args)

    results = {
        "benchmark": NAME,
        "machine": machine(),
        "versions": versions(
            ["sbi_kit", "jax", "jaxlib", "flowjax", "equinox", "optax", "numpyro", "scikit-learn"]
        ),
        "settings": {
            "tasks": tasks,
            "simulations": budgets,
            "observations": observations,
            "seeds": seeds,
            "num_samples": args.num_samples,
            "estimator": estimator,
        },
        "published": {
            task: {
                which: ({str(n): v for n, v in d[which].items()} if d[which] else None)
                for which in ("published", "rerun_sbi023")
            }
            | {"source": d["source"]}
            for task, d in PUBLISHED.items()
        },
        "runs": {},
    }
    previous = None if args.fresh else read_json(json_path)
    if previous:
        if previous.get("settings", {}).get("estimator") == estimator:
            results["runs"] = previous.get("runs", {})
            # Keep the union of what was asked now and before in the report.
            old = previous["settings"]
            results["settings"]["observations"] = sorted(
                set(observations) | set(old.get("observations", []))
            )
            results["settings"]["seeds"] = sorted(set(seeds) | set(old.get("seeds", [])))
        else:
            print(f"[fresh] estimator settings differ from {json_path}; starting over", flush=True)

    def save():
        results["summary"] = summarise(results)
        write_json(json_path, results)
        write_markdown(md_path, markdown(results))

    npe = sk.NPE(
        flow=_flow(args),
        training=_training(args),
        ensemble_size=args.ensemble_size,
        support=_support(args),
        embedding=_embedding(args),
    )
    for task_name in tasks:
        task = sk.tasks.get(task_name)
        for n in budgets:
            for seed in seeds:
                key = f"{task_name}/{n}/seed{seed}"
                run = results["runs"].get(key)
                missing = [i for i in observations if run is None or str(i) not in run["c2st"]]
                if not missing:
                    print(f"[skip] {key}", flush=True)
                    continue
                print(f"[train] {key}", flush=True)
                key_sim, key_fit, key_sample = jax.random.split(jax.random.key(seed), 3)
                sims = sk.simulate(key_sim, task, n, progress=False)
                start = time.perf_counter()
                posterior = npe.fit(key_fit, sims.theta, sims.x, prior=task.prior, progress=False)
                jax.block_until_ready(eqx.filter(posterior, eqx.is_array))
                train_s = time.perf_counter() - start
                hist = posterior.history
                info = {
                    "task": task_name,
                    "num_simulations": n,
                    "seed": seed,
                    "num_dropped": sims.num_dropped,
                    "train_seconds": train_s,
                    "epochs": len(hist.train_loss),
                    "best_epoch": hist.best_epoch + 1,
                    "stop_reason": hist.stop_reason,
                    "best_validation_loss": float(min(hist.validation_loss)),
                }
                print(
                    f"  {train_s:.1f} s, {info['epochs']} epochs ({hist.stop_reason}), "
                    f"best val loss {info['best_validation_loss']:.4f}",
                    flush=True,
                )
                if (
                    run is not None
                    and abs(run.get("best_validation_loss", np.nan) - info["best_validation_loss"])
                    > 1e-4
                ):
                    print("  note: retraining did not reproduce the stored run exactly", flush=True)
                c2st = dict(run["c2st"]) if run else {}
                errors = dict(run.get("errors", {})) if run else {}
                ref_lp = dict(run.get("ref_log_prob", {})) if run else {}
                run = {**info, "c2st": c2st, "errors": errors, "ref_log_prob": ref_lp}
                results["runs"][key] = run
                save()
                for i in missing:
                    start = time.perf_counter()
                    samples = np.asarray(
                        posterior.sample(
                            jax.random.fold_in(key_sample, i), task.observation(i), args.num_samples
                        )
                    )
                    reference = task.reference_samples(i)
                    lp = posterior.log_prob(reference, task.observation(i))
                    run["ref_log_prob"][str(i)] = float(np.mean(np.asarray(lp)))
                    try:
                        with threadpool_limits(limits=args.blas_threads):
                            value = sk.diagnostics.c2st(samples, reference)
                    except ValueError as err:  # non-finite samples
                        value, errors[str(i)] = None, str(err)
                    run["c2st"][str(i)] = value
                    print(
                        f"  obs {i}: C2ST {fmt(value)} ({time.perf_counter() - start:.0f} s)",
                        flush=True,
                    )
                    save()
    save()
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
