"""Which FMPE / NPSE settings help: C2ST per observation, variant against default, same data.

Each variant is the method's default with one change (``VARIANTS``). For a task, budget and
seed every variant trains on the simulations ``benchmarks/sbibm.py`` uses (``sk.simulate``
with the first key of ``jax.random.split(jax.random.key(seed), 3)``, fit with the second) and
draws 10,000 samples per observation with the third, folded with the observation's number, as
``sbibm.py`` does, so the ``default`` variant reproduces that script's numbers. C2ST:
``sk.diagnostics.c2st`` against 10,000 reference samples (sbibm's classifier; 0.5 is ideal).
The table gives each variant's mean and its paired difference to ``default`` over the shared
observations.

Run from the repository root (benchmark environment, one core)::

    python benchmarks/vector_field_settings.py --method fmpe --task two_moons \\
        --simulations 1000 --observations 1-5 --variants default,rejection,sbi_training

Results: ``benchmarks/results/vector_field_settings.{json,md}`` (resumes: finished
observations are kept).
"""

from __future__ import annotations

import argparse
import dataclasses
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
    paired,
    parse_int_list,
    read_json,
    table,
    versions,
    write_json,
    write_markdown,
)

NAME = "vector_field_settings"
NUM_SAMPLES = 10_000


def variants(sk, method):
    """name -> (description, the method with that one change)."""
    vf = method.network
    return {
        "default": ("the defaults", method),
        "batch50": (
            "batch size 50",
            dataclasses.replace(
                method, training=dataclasses.replace(method.training, batch_size=50)
            ),
        ),
        "rejection": (
            "`support=Rejection()`",
            dataclasses.replace(method, support=sk.inference.Rejection()),
        ),
        "rejection_batch50": (
            "`support=Rejection()` and batch size 50",
            dataclasses.replace(
                method,
                support=sk.inference.Rejection(),
                training=dataclasses.replace(method.training, batch_size=50),
            ),
        ),
        "sbi_training": (
            "`sk.Training()`: batch 200, patience 20, one validation draw, no moving average",
            dataclasses.replace(method, training=sk.Training()),
        ),
        "ema_only": (
            "patience 20, one validation draw, with the moving average",
            dataclasses.replace(method, training=sk.Training(ema_decay=0.999)),
        ),
        "epochs3000": (
            "at most 3,000 epochs (the default's cap is 1,000)",
            dataclasses.replace(
                method, training=dataclasses.replace(method.training, max_epochs=3000)
            ),
        ),
        "gelu": (
            "GELU activation",
            dataclasses.replace(method, network=dataclasses.replace(vf, activation="gelu")),
        ),
        "gelu_epochs3000": (
            "GELU activation and at most 3,000 epochs",
            dataclasses.replace(
                method,
                network=dataclasses.replace(vf, activation="gelu"),
                training=dataclasses.replace(method.training, max_epochs=3000),
            ),
        ),
        "width64": (
            "64 × 3 network",
            dataclasses.replace(method, network=dataclasses.replace(vf, width=64, blocks=3)),
        ),
        "lr1e-3": (
            "learning rate 1e-3",
            dataclasses.replace(
                method, training=dataclasses.replace(method.training, learning_rate=1e-3)
            ),
        ),
    } | (
        {  # FMPE's time distribution, density ∝ t^α towards the data end
            f"time_alpha{a}": (
                f"`time_prior_exponent={a}`",
                dataclasses.replace(method, time_prior_exponent=float(a)),
            )
            for a in (1, 4)
        }
        if isinstance(method, sk.FMPE)
        else {}
    )


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", choices=("fmpe", "npse"), required=True)
    p.add_argument("--task", default="two_moons")
    p.add_argument("--simulations", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--observations", type=parse_int_list, default=[1, 2, 3, 4, 5])
    p.add_argument("--variants", default="default,rejection,sbi_training")
    args = p.parse_args(argv)

    import jax

    import sbi_kit as sk

    base = {"fmpe": sk.FMPE, "npse": sk.NPSE}[args.method]()
    known = variants(sk, base)
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in names if v not in known]
    if unknown:
        p.error(f"unknown variants {unknown}; known: {sorted(known)}")
    json_path = RESULTS_DIR / f"{NAME}.json"
    results = read_json(json_path) or {"cells": {}}
    task = sk.tasks.get(args.task)
    key_sim, key_fit, key_sample = jax.random.split(jax.random.key(args.seed), 3)
    sims = None
    for name in names:
        description, method = known[name]
        cell_key = f"{args.method}/{args.task}/{args.simulations}/seed{args.seed}/{name}"
        cell = results["cells"].setdefault(
            cell_key, {"description": description, "estimator": repr(method), "c2st": {}}
        )
        missing = [i for i in args.observations if str(i) not in cell["c2st"]]
        if not missing:
            print(f"[skip] {cell_key}", flush=True)
            continue
        if sims is None:
            sims = sk.simulate(key_sim, task, args.simulations, progress=False)
        began = time.perf_counter()
        posterior = method.fit(key_fit, sims.theta, sims.x, prior=task.prior, progress=False)
        cell["train_seconds"] = time.perf_counter() - began
        cell["epochs"] = len(posterior.history.validation_loss)
        print(f"[train] {cell_key}: {cell['epochs']} epochs", flush=True)
        for i in missing:
            samples = posterior.sample(
                jax.random.fold_in(key_sample, i), task.observation(i), NUM_SAMPLES
            )
            value = sk.diagnostics.c2st(np.asarray(samples), task.reference_samples(i))
            cell["c2st"][str(i)] = float(value)
            print(f"  obs {i}: C2ST {value:.3f}", flush=True)
            results |= {
                "machine": machine(),
                "versions": versions(["sbi_kit", "jax", "equinox", "optax"]),
            }
            write_json(json_path, results)
            write_markdown(json_path.with_suffix(".md"), markdown(results))
    print(f"wrote {json_path}")


def markdown(results: dict) -> str:
    rows = []
    cells = results["cells"]
    for key in sorted(cells):
        method, task, budget, seed, name = key.split("/")
        cell = cells[key]
        values = cell["c2st"]
        default = cells.get("/".join([method, task, budget, seed, "default"]), {}).get("c2st", {})
        shared = sorted(set(values) & set(default), key=int)
        rows.append(
            [
                method.upper(),
                task,
                f"{int(budget):,}",
                seed.removeprefix("seed"),
                name,
                cell["description"],
                " / ".join(fmt(values[i]) for i in sorted(values, key=int)),
                f"{fmt(float(np.mean(list(values.values()))))} ({len(values)})",
                paired([values[i] - default[i] for i in shared]) if name != "default" else "–",
                f"{cell.get('epochs', '?')}, {fmt(cell.get('train_seconds'), 0)} s",
            ]
        )
    return "\n".join(
        [
            "# FMPE / NPSE settings: one change at a time, on the data of `sbibm.py`",
            "",
            "C2ST per observation (10,000 samples against 10,000 reference samples, sbibm's "
            "classifier; 0.5 is ideal), their mean (count), and the paired difference to the "
            "`default` row of the same cell over the shared observations (± its standard "
            "error; negative is better). Keys as `benchmarks/sbibm.py`, so `default` repeats "
            "that script's numbers when the library has not changed in between (FMPE on "
            "two_moons at 1,000: to the last digit). Training: epochs run and seconds (one "
            "core, other jobs on the machine: not comparable between rows).",
            "",
            table(
                [
                    "method",
                    "task",
                    "simulations",
                    "seed",
                    "variant",
                    "change",
                    "C2ST per observation",
                    "mean (n)",
                    "paired vs default",
                    "training",
                ],
                rows,
            ),
            "",
            machine_line(results),
        ]
    )


if __name__ == "__main__":
    main()
