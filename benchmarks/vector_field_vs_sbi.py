"""FMPE and NPSE of the ``sbi`` package on the data of ``benchmarks/sbibm.py``: the peer's C2ST.

Is a gap between our vector-field estimators and our NPE the method's or ours? This trains
``sbi.inference.FMPE`` or ``sbi.inference.NPSE`` (their defaults) on exactly the simulations that
``benchmarks/sbibm.py --method fmpe|npse`` trains sbi_kit on (``sk.simulate`` with the first of
``jax.random.split(jax.random.key(seed), 3)``), draws 10,000 posterior samples for each
observation and scores them with the same classifier (``sk.diagnostics.c2st``, 10,000 reference
samples). sbi_kit's C2ST for the same cell is read from the given ``sbibm.py`` result file
(nothing of sbi_kit is re-run here).

Run from the repository root in the benchmark environment (``pip install -e '.[bench]'``), on
one core::

    taskset -c 0 python benchmarks/vector_field_vs_sbi.py --method fmpe --task two_moons \\
        --simulations 1000 --ours benchmarks/results/sbibm_fmpe.json

Results: ``benchmarks/results/vector_field_vs_sbi.{json,md}``, one cell per method, task,
budget and seed; observations are kept as they finish, and a rerun resumes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
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
from npe_vs_sbi import torch_prior  # noqa: E402

import sbi_kit as sk  # noqa: E402

NAME = "vector_field_vs_sbi"
NUM_SAMPLES = 10_000


def ours(path: Path | None, task: str, simulations: int, seed: int) -> dict[str, float]:
    """sbi_kit's C2ST per observation for the cell, from a ``sbibm.py`` result file."""
    if path is None or not path.exists():
        return {}
    run = (read_json(path) or {}).get("runs", {}).get(f"{task}/{simulations}/seed{seed}", {})
    return {k: float(v) for k, v in run.get("c2st", {}).items()}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", choices=("fmpe", "npse"), required=True)
    p.add_argument("--task", default="two_moons")
    p.add_argument("--simulations", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--observations", type=parse_int_list, default=list(range(1, 11)))
    p.add_argument("--ours", type=Path, default=None, help="sbibm.py result file (.json)")
    args = p.parse_args(argv)

    import torch
    from sbi.inference import FMPE, NPSE

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    json_path = RESULTS_DIR / f"{NAME}.json"
    results = read_json(json_path) or {"cells": {}}
    cell_key = f"{args.method}/{args.task}/{args.simulations}/seed{args.seed}"
    cell = results["cells"].setdefault(cell_key, {"sbi_c2st": {}})
    cell["sbi_kit_c2st"] = ours(args.ours, args.task, args.simulations, args.seed)
    cell["sbi_kit_source"] = None if args.ours is None else args.ours.name
    task = sk.tasks.get(args.task)
    key_sim = jax.random.split(jax.random.key(args.seed), 3)[0]  # sbibm.py's simulation key
    sims = sk.simulate(key_sim, task, args.simulations, progress=False)
    peer = {"fmpe": FMPE, "npse": NPSE}[args.method](
        prior=torch_prior(task.prior), show_progress_bars=False
    )
    began = time.perf_counter()
    peer.append_simulations(
        torch.as_tensor(np.array(sims.theta)), torch.as_tensor(np.array(sims.x))
    ).train(show_train_summary=False)
    cell["sbi_train_seconds"] = time.perf_counter() - began
    cell["sbi_epochs"] = int(peer.summary["epochs_trained"][-1])
    posterior = peer.build_posterior()
    for i in args.observations:
        if str(i) in cell["sbi_c2st"]:
            continue
        x_o = torch.as_tensor(np.array(task.observation(i))).reshape(1, -1)
        samples = posterior.sample((NUM_SAMPLES,), x=x_o, show_progress_bars=False)
        c2st = sk.diagnostics.c2st(
            np.asarray(samples.numpy()), np.asarray(task.reference_samples(i))[:NUM_SAMPLES]
        )
        cell["sbi_c2st"][str(i)] = float(c2st)
        print(f"{cell_key} obs {i}: sbi C2ST {c2st:.3f}", flush=True)
        partial = results | {
            "machine": machine(),
            "versions": versions(["sbi_kit", "jax", "sbi", "torch"]),
        }
        write_json(json_path, partial)
        write_markdown(json_path.with_suffix(".md"), markdown(partial))
    results |= {"machine": machine(), "versions": versions(["sbi_kit", "jax", "sbi", "torch"])}
    write_json(json_path, results)
    write_markdown(json_path.with_suffix(".md"), markdown(results))
    print(f"wrote {json_path}")


def markdown(results: dict) -> str:
    rows = []
    for key, cell in sorted(results["cells"].items()):
        method, task, budget, seed = key.split("/")
        theirs, mine = cell["sbi_c2st"], cell.get("sbi_kit_c2st", {})
        both = sorted(set(theirs) & set(mine), key=int)
        rows.append(
            [
                method.upper(),
                task,
                f"{int(budget):,}",
                seed.removeprefix("seed"),
                f"{fmt(float(np.mean(list(theirs.values()))), 3)} ({len(theirs)})",
                f"{fmt(float(np.mean([mine[i] for i in both])), 3)} ({len(both)})" if both else "–",
                paired([mine[i] - theirs[i] for i in both]),
                f"{fmt(cell.get('sbi_train_seconds', float('nan')), 0)} s, "
                f"{cell.get('sbi_epochs', '?')} epochs",
                cell.get("sbi_kit_source") or "–",
            ]
        )
    return "\n".join(
        [
            "# Vector-field estimators: sbi_kit against the `sbi` package on the same data",
            "",
            "C2ST (sbibm's classifier, 10,000 posterior against 10,000 reference samples, 0.5 is "
            "ideal), mean over the observations in brackets. sbi: `sbi.inference.FMPE` / `NPSE` "
            "at their defaults, trained on the simulations `benchmarks/sbibm.py` uses for the "
            "same task, budget and seed. sbi_kit: read from that `sbibm.py` result file. "
            "Paired: sbi_kit − sbi over the shared observations, ± its standard error.",
            "",
            table(
                [
                    "method",
                    "task",
                    "simulations",
                    "seed",
                    "sbi C2ST (n)",
                    "sbi_kit C2ST (n)",
                    "paired",
                    "sbi training",
                    "sbi_kit file",
                ],
                rows,
            ),
            "",
            machine_line(results),
        ]
    )


if __name__ == "__main__":
    main()
