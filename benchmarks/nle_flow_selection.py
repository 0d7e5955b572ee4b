"""Would the validation loss have picked NLE's better flow? Training only, on sbibm.py's data.

For each task, budget, seed and flow spec (names of ``npe_flows.py``), ``sk.NLE(flow=spec)`` is
trained exactly as ``benchmarks/sbibm.py --method nle [--flow ...]`` trains it (its data key and
fit key for the seed; the default training), and its best validation loss is recorded: the
quantity a selection by held-out likelihood would compare (the same split and z-scoring for
every flow, so the losses are comparable). The C2ST of each flow's posterior on the sbibm
observations is read from earlier ``sbibm.py`` result files (``--c2st FLOW:FILE[,FILE...]``;
the runs of the same task, budget and seed), not recomputed, so the table shows whether the flow
with the lower validation loss is the one with the lower C2ST.

Writes ``benchmarks/results/nle_flow_selection.{json,md}`` (resumes: cells on disk are skipped)::

    python benchmarks/nle_flow_selection.py --tasks two_moons,slcp --simulations 1000 \\
        --seeds 0-2 --flows nsf,maf \\
        --c2st nsf:sbibm_nle_b50p100.json --c2st maf:sbibm_nle_maf.json
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
from npe_flows import chosen_flows  # noqa: E402

NAME = "nle_flow_selection"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", default="two_moons")
    p.add_argument("--simulations", default="1000", help="comma-separated budgets")
    p.add_argument("--seeds", default="0", help="e.g. 0-2 (default: %(default)s)")
    p.add_argument("--flows", default="nsf,maf", help="comma-separated npe_flows.py names")
    p.add_argument(
        "--c2st",
        action="append",
        default=[],
        metavar="FLOW:FILE[,FILE...]",
        help="sbibm.py result files (in benchmarks/results/) holding FLOW's C2STs",
    )
    p.add_argument("--out", type=Path, default=RESULTS_DIR / NAME)
    return p.parse_args(argv)


def c2st_means(files: dict[str, list[str]]) -> dict[str, dict[str, tuple[float, int]]]:
    """``{flow: {"task/n/seedS": (mean C2ST, count)}}`` from ``{flow: [result file, ...]}``."""
    out: dict[str, dict[str, tuple[float, int]]] = {}
    for flow, names in files.items():
        for name in names:
            payload = read_json(RESULTS_DIR / name)
            if payload is None:
                raise SystemExit(f"nle_flow_selection.py: no results file {name}")
            for run_key, run in payload["runs"].items():
                values = [v for v in run["c2st"].values() if v is not None]
                if values:
                    out.setdefault(flow, {})[run_key] = (statistics.fmean(values), len(values))
    return out


def run_cell(sk, jax, task_name: str, n: int, seed: int, spec) -> dict:
    task = sk.tasks.get(task_name)
    key_sim, key_fit, _ = jax.random.split(jax.random.key(seed), 3)  # as sbibm.py
    sims = sk.simulate(key_sim, task, n, progress=False)
    start = time.perf_counter()
    posterior = sk.NLE(flow=spec).fit(key_fit, sims.theta, sims.x, prior=task.prior, progress=False)
    seconds = time.perf_counter() - start
    val = np.asarray(posterior.history.validation_loss, dtype=np.float64)
    finite = np.where(np.isfinite(val), val, np.inf)  # as BestOf: a non-finite epoch never wins
    return {
        "seconds": seconds,
        "epochs": int(val.size),
        "best_epoch": int(np.argmin(finite)) + 1,
        "validation_loss_best": float(finite.min()),
    }


def markdown(result: dict, flows: list[str]) -> str:
    c2st = result.get("c2st", {})
    head = ["task", "n", "seed"]
    for f in flows:
        head += [f"`{f}` best val. loss (epoch / epochs)", f"`{f}` C2ST"]
    head += ["lowest val. loss", "its C2ST is the lower"]
    rows = []
    groups = sorted({k.rsplit("/", 1)[0] for k in result["cells"]})
    for group in groups:
        task, n, seed = group.split("/")
        run_key = f"{task}/{n}/seed{seed}"
        row = [task, n, seed]
        losses, scores = {}, {}
        for f in flows:
            cell = result["cells"].get(f"{group}/{f}")
            score = c2st.get(f, {}).get(run_key)
            if cell is None:
                row += ["-", "-"]
            else:
                losses[f] = cell["validation_loss_best"]
                row.append(
                    f"{fmt(cell['validation_loss_best'])} ({cell['best_epoch']} / {cell['epochs']})"
                )
                row.append("-" if score is None else f"{fmt(score[0])} ({score[1]})")
            if score is not None:
                scores[f] = score[0]
        picked = min(losses, key=losses.get) if len(losses) == len(flows) else None
        row.append("-" if picked is None else f"`{picked}`")
        if picked is None or len(scores) < len(flows):
            row.append("-")
        else:
            row.append("yes" if scores[picked] == min(scores.values()) else "**no**")
        rows.append(row)
    lines = [
        "# NLE: does the lower validation loss pick the flow with the lower C2ST?",
        "",
        "Each cell: `sk.NLE(flow=...)` with its default training, trained on "
        "`benchmarks/sbibm.py`'s data and fit key for the seed; its best validation loss "
        "(mean −log q(x | θ) in z-scored units on the held-out tenth, the same split for "
        "every flow; lower is better). C2ST: mean over the observations of the earlier "
        "`sbibm.py` run with that flow (count in brackets), read from the files listed "
        "below, not recomputed.",
        "",
        table(head, rows),
        "",
        "C2ST files: "
        + "; ".join(f"`{f}`: {', '.join(files)}" for f, files in result.get("files", {}).items())
        + ".",
        "",
        machine_line(result),
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> None:
    args = parse_args(argv)
    import jax

    import sbi_kit as sk

    specs, flows = chosen_flows(args.flows, "nle_flow_selection.py")
    json_path = args.out.with_suffix(".json")
    result = read_json(json_path) or {"cells": {}}
    result.update(benchmark=NAME, machine=machine(), versions=versions(["sbi_kit", "jax"]))
    files = result.setdefault("files", {})
    for spec in args.c2st:
        flow, _, names = spec.partition(":")
        files.setdefault(flow, [])
        files[flow] += [n for n in names.split(",") if n not in files[flow]]
    result["c2st"] = c2st_means(files)
    for task in args.tasks.split(","):
        for n in parse_int_list(args.simulations):
            for seed in parse_int_list(args.seeds):
                for flow in flows:
                    key = f"{task}/{n}/{seed}/{flow}"
                    if key in result["cells"]:
                        continue
                    print(f"[{key}]", flush=True)
                    result["cells"][key] = run_cell(sk, jax, task, n, seed, specs[flow])
                    print(f"  {result['cells'][key]}", flush=True)
                    write_json(json_path, result)
                    write_markdown(args.out.with_suffix(".md"), markdown(result, flows))
    write_json(json_path, result)
    write_markdown(args.out.with_suffix(".md"), markdown(result, flows))
    print(f"results in {json_path} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
