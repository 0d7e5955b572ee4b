"""Does JAX's CPU thread pool help or hurt NPE training and sampling? And what does the
conditioner activation cost? One run, every variant.

For each task and repeat, fresh Python processes run the same work: ``sk.NPE()``'s NSF with
the given conditioner activation (GELU: today's default) and its default training, with
``max_epochs`` fixed and no early stop so that every variant runs the same epochs, fitted to
the same 10,000 simulations, then fitted again in the same process (nothing traced or
compiled: the epochs alone), then 10,000 posterior draws (first call and the median of five
warm calls). The thread settings:

* ``default``: JAX's own CPU thread pool (all cores);
* ``one thread``: ``XLA_FLAGS="--xla_cpu_multi_thread_eigen=false
  intra_op_parallelism_threads=1"`` (and the BLAS thread variables set to 1).

The variants alternate within each repeat (the order reversed every other repeat), and the
persistent compilation cache is off, so every first fit pays its compilation. Run on an
otherwise idle machine::

    python benchmarks/jax_threads.py [--tasks two_moons,slcp] [--repeats 2] [--epochs 30]
        [--settings default] [--activations relu,gelu] [--out ...]

Results: ``benchmarks/results/jax_threads.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import (  # noqa: E402
    RESULTS_DIR,
    fmt,
    machine,
    machine_line,
    table,
    versions,
    write_json,
    write_markdown,
)

NAME = "jax_threads"
SETTINGS = {
    "default": {},
    "one thread": {
        "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    },
}

# the work of one process; prints one JSON line
CHILD = """
import dataclasses, json, statistics, sys, time
import jax
import sbi_kit as sk
task_name, epochs, activation = sys.argv[1], int(sys.argv[2]), sys.argv[3]
task = sk.tasks.get(task_name)
theta, x = sk.simulate(jax.random.key(0), task, 10_000, progress=False)
npe = sk.NPE(flow=sk.estimators.NSF(activation=activation))
training = dataclasses.replace(npe.training, max_epochs=epochs, patience=10 * epochs,
                               lr_plateau_steps=None)
npe = dataclasses.replace(npe, training=training)
out = {}
for name in ("first_fit", "second_fit"):
    start = time.perf_counter()
    posterior = npe.fit(jax.random.key(1), theta, x, prior=task.prior, progress=False)
    jax.block_until_ready(posterior.sample(jax.random.key(0), task.observation(1), 1))
    out[name] = time.perf_counter() - start
xo = task.observation(1)
times = []
for i in range(6):
    start = time.perf_counter()
    jax.block_until_ready(posterior.sample(jax.random.key(10 + i), xo, 10_000))
    times.append(time.perf_counter() - start)
out["sample_first"] = times[0]
out["sample_warm"] = statistics.median(times[1:])
out["epochs"] = len(posterior.history.train_loss)
print(json.dumps(out))
"""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", default="two_moons,slcp")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument(
        "--settings",
        default=",".join(SETTINGS),
        help="comma-separated thread settings (default: %(default)s)",
    )
    p.add_argument(
        "--activations",
        default="gelu",
        help="comma-separated conditioner activations of the NSF (default: gelu, sk.NPE()'s)",
    )
    p.add_argument("--out", type=Path, default=RESULTS_DIR / NAME)
    return p.parse_args(argv)


def run_child(task: str, epochs: int, setting: str, activation: str) -> dict:
    env = dict(os.environ, SBI_KIT_CACHE_DIR="off", **SETTINGS[setting])
    done = subprocess.run(
        [sys.executable, "-c", CHILD, task, str(epochs), activation],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def markdown(result: dict) -> str:
    head = [
        "task",
        "threads, activation",
        "first fit s (compiles)",
        "second fit s (epochs only)",
        "s per epoch",
        "sampling first call s",
        "sampling warm s",
        "repeats",
    ]
    rows = []
    for task, by_setting in result["cells"].items():
        for setting, runs in by_setting.items():
            if not runs:
                continue

            def med(key, runs=runs):
                return statistics.median(r[key] for r in runs)

            rows.append(
                [
                    task,
                    setting,
                    fmt(med("first_fit"), 1),
                    fmt(med("second_fit"), 1),
                    fmt(med("second_fit") / result["epochs"], 3),
                    fmt(med("sample_first"), 2),
                    fmt(med("sample_warm"), 3),
                    str(len(runs)),
                ]
            )
    return "\n".join(
        [
            "# NPE training and sampling: JAX's CPU thread pool against one thread, and the "
            "conditioner activation",
            "",
            "`sk.NPE(flow=NSF(activation=...))` on 10,000 simulations, "
            f"{result['epochs']} epochs without early stopping, in a fresh process per run "
            "(persistent compilation cache off); medians over the repeats, the variants "
            "alternating. 'one thread': `XLA_FLAGS="
            f'"{SETTINGS["one thread"]["XLA_FLAGS"]}"`. Sampling: 10,000 draws for '
            "observation 1, first call and median of five warm calls.",
            "",
            table(head, rows),
            "",
            machine_line(result),
            "",
        ]
    )


def main(argv=None) -> None:
    args = parse_args(argv)
    result = {
        "benchmark": NAME,
        "machine": machine(),
        "versions": versions(["sbi_kit", "jax", "jaxlib", "flowjax"]),
        "epochs": args.epochs,
        "cells": {},
    }
    settings = args.settings.split(",")
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        raise SystemExit(f"jax_threads.py: unknown settings {unknown}; known: {list(SETTINGS)}")
    variants = [(s, a) for s in settings for a in args.activations.split(",")]
    for task in args.tasks.split(","):
        result["cells"][task] = {f"{s}, {a}": [] for s, a in variants}
        for repeat in range(args.repeats):
            order = variants if repeat % 2 == 0 else list(reversed(variants))
            for setting, activation in order:
                cell = run_child(task, args.epochs, setting, activation)
                print(task, setting, activation, cell, flush=True)
                result["cells"][task][f"{setting}, {activation}"].append(cell)
                write_json(args.out.with_suffix(".json"), result)
                write_markdown(args.out.with_suffix(".md"), markdown(result))
    print(f"results in {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
