"""NUTS on the exact likelihood of the ODE tasks: wall time per observation, mixing, accuracy.

``sk.mcmc.reference_posterior(key, task, x_o, ...)`` on ``sir`` and ``lotka_volterra`` (NUTS
through the diffrax solve) for each sbibm observation: wall time (the first observation of a
task includes compilation, reported apart), the largest split-R̂, the smallest bulk ESS, the
divergences, and the C2ST of its draws against as many of the task's shipped reference samples
(importance sampling; within C2ST 0.506 of sbibm's own, ``reference_posteriors.md``). Issue #10
asks for the NUTS wall time per observation; the shipped references are not made by NUTS because
of this cost (docs/tasks.md).

Resumable: each observation is written when done; a rerun skips what is on disk (``--fresh``
starts over). Writes ``benchmarks/results/reference_nuts.{json,md}``.

    python benchmarks/reference_nuts.py [--tasks sir lotka_volterra] [--observations 1-10]
        [--chains 8] [--warmup 300] [--draws 250]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import numpy as np

import sbi_kit as sk

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

NAME = "reference_nuts"
TASKS = ("sir", "lotka_volterra")


def run_one(task, i: int, chains: int, warmup: int, draws: int) -> dict:
    x_o = task.observation(i)
    start = time.perf_counter()
    result = sk.mcmc.reference_posterior(
        jax.random.fold_in(jax.random.key(0), i),
        task,
        x_o,
        chains * draws,
        num_chains=chains,
        num_warmup=warmup,
        thinning=1,
        check=False,
    )
    seconds = time.perf_counter() - start
    samples = np.asarray(result.samples)
    reference = np.asarray(task.reference_samples(i))[: len(samples)]
    return {
        "seconds": seconds,
        "max_r_hat": float(np.max(np.asarray(result.r_hat))),
        "min_ess": float(np.min(np.asarray(result.ess))),
        "num_divergent": int(result.num_divergent),
        "c2st": float(sk.diagnostics.c2st(samples, reference)),
    }


def markdown(results: dict) -> str:
    s = results["settings"]
    rows = []
    for name, runs in results["runs"].items():
        for i, r in sorted(runs.items(), key=lambda kv: int(kv[0])):
            rows.append(
                [
                    name,
                    i,
                    fmt(r["seconds"], 1) + (" (first: compiles)" if r.get("first") else ""),
                    fmt(r["max_r_hat"], 3),
                    fmt(r["min_ess"], 0),
                    str(r["num_divergent"]),
                    fmt(r["c2st"], 3),
                ]
            )
    return "\n\n".join(
        [
            "# NUTS on the exact likelihood of the ODE tasks",
            f"Produced by `python benchmarks/reference_nuts.py`. `sk.mcmc.reference_posterior` "
            f"with {s['chains']} chains × ({s['warmup']} warm-up + {s['draws']} draws), "
            f"thinning 1, NUTS through the diffrax solve (float32), one observation at a time. "
            f"C2ST: its {s['chains'] * s['draws']} draws against as many of the task's shipped "
            f"reference samples (0.5 = indistinguishable). {machine_line(results)}"
            + (f" {results['note']}" if results.get("note") else ""),
            table(
                [
                    "task",
                    "observation",
                    "wall s",
                    "max split-R̂",
                    "min bulk ESS",
                    "divergent",
                    "C2ST vs reference",
                ],
                rows,
            ),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--observations", type=parse_int_list, default=list(range(1, 11)))
    parser.add_argument("--chains", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--draws", type=int, default=250, help="draws per chain")
    parser.add_argument("--note", default=None, help="a sentence on the machine's state")
    parser.add_argument("--fresh", action="store_true", help="ignore results already on disk")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    json_path, md_path = args.out / f"{NAME}.json", args.out / f"{NAME}.md"
    results = (None if args.fresh else read_json(json_path)) or {}
    settings = {"chains": args.chains, "warmup": args.warmup, "draws": args.draws}
    if results and results.get("settings") != settings:
        raise SystemExit(f"{json_path} was made with {results.get('settings')}; use --fresh")
    results.setdefault("machine", machine())
    results["versions"] = versions(["sbi_kit", "jax", "numpyro", "diffrax"])
    results["settings"] = settings
    if args.note:
        results["note"] = args.note
    runs = results.setdefault("runs", {})
    for name in args.tasks:
        task = sk.tasks.get(name)
        done = runs.setdefault(name, {})
        first = True
        for i in args.observations:
            if str(i) in done:
                continue
            r = run_one(task, i, args.chains, args.warmup, args.draws)
            r["first"] = first  # this process compiled the sampler for this task here
            first = False
            done[str(i)] = r
            print(
                f"{name} obs {i}: {r['seconds']:.1f} s, R̂ {r['max_r_hat']:.3f}, "
                f"C2ST {r['c2st']:.3f}",
                flush=True,
            )
            write_json(json_path, results)
            write_markdown(md_path, markdown(results))


if __name__ == "__main__":
    main()
