"""How NPE's cost grows with the number of simulations and of posterior draws.

For two_moons and slcp and 10^3 ... 10^6 simulations, each size in a fresh Python process (so
that the peak resident memory is that size's own): simulate, then ``sk.NPE()``'s flow trained with
``sk.Training(max_epochs=E)`` (batch 200, ``sk.NPE()``'s default until 2026-12-05; it now trains
with batch 50) for a fixed number of epochs (``--epochs``, default 3; training to convergence would
take hours at 10^6 on a CPU), reporting the compile time, the time per epoch without it and the
process's peak resident memory. Then, from the 10^4 posterior, the warm time to draw 10^3 ...
10^6 samples for one observation (and the peak memory of that process).

Run from the repository root::

    python benchmarks/npe_scaling.py                      # CPU; on a GPU machine it uses the GPU
    python benchmarks/npe_scaling.py --sizes 1000,10000 --out /tmp/npe_scaling_quick

Results: ``benchmarks/results/npe_scaling.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import (  # noqa: E402
    RESULTS_DIR,
    fmt,
    machine,
    parse_int_list,
    table,
    versions,
    write_json,
    write_markdown,
)

NAME = "npe_scaling"


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child_train(task_name: str, n: int, epochs: int) -> dict:
    import equinox as eqx
    import jax
    from _jax_compile_time import CompileTimer

    import sbi_kit as sk

    sk.set_compilation_cache(None)
    task = sk.tasks.get(task_name)
    start = time.perf_counter()
    sims = sk.simulate(jax.random.key(0), task, n, progress=False)
    simulate_s = time.perf_counter() - start
    npe = sk.NPE(training=sk.Training(max_epochs=epochs))
    with CompileTimer() as ct:
        start = time.perf_counter()
        post = npe.fit(jax.random.key(1), sims.theta, sims.x, prior=task.prior, progress=False)
        jax.block_until_ready(eqx.filter(post, eqx.is_array))
        train_s = time.perf_counter() - start
    done = len(post.history.train_loss)
    return {
        "simulate_seconds": simulate_s,
        "train_seconds": train_s,
        "compile_seconds": ct.seconds,
        "epochs": done,
        "seconds_per_epoch": (train_s - ct.seconds) / done,
        "peak_rss_mib": _peak_mib(),
        "device": str(jax.devices()[0].platform),
        "device_kind": str(jax.devices()[0].device_kind),
    }


def child_sample(task_name: str, draws: list[int]) -> dict:
    import jax

    import sbi_kit as sk

    sk.set_compilation_cache(None)
    task = sk.tasks.get(task_name)
    sims = sk.simulate(jax.random.key(0), task, 10_000, progress=False)
    post = sk.NPE().fit(jax.random.key(1), sims.theta, sims.x, prior=task.prior, progress=False)
    x_o = task.observation(1)
    out = {}
    for m in draws:
        post.sample(jax.random.key(0), x_o, m).block_until_ready()  # compile for this size
        times = []
        for i in range(3):
            start = time.perf_counter()
            post.sample(jax.random.key(i + 1), x_o, m).block_until_ready()
            times.append(time.perf_counter() - start)
        out[str(m)] = {"seconds": sorted(times)[1], "peak_rss_mib": _peak_mib()}
    return out


def _child(args: list[str]) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def markdown(results: dict) -> str:
    m, s = results["machine"], results["settings"]
    lines = [
        "# NPE: cost against the number of simulations and of draws",
        "",
        f"sbi_kit {results['versions'].get('sbi_kit')}, jax {results['versions'].get('jax')}; "
        f"{m['cpu']} ({m['cpu_count']} cores), device {results.get('device', '-')}; "
        f"{m['date']}; load average before / after: "
        f"{results['load_average'][0]:.2f} / {results['load_average'][1]:.2f}.",
        "",
        f"`sk.NPE(training=sk.Training(max_epochs={s['epochs']}))` (default flow, batch 200) "
        f"trained for {s['epochs']} epochs at each size, each size in a "
        "fresh process with the persistent compilation cache off (so compile time is paid in "
        "full); 's per epoch' is (training time - compile time) / epochs, so at small sizes it is "
        "mostly the fixed set-up of a fit (z-scoring, initialisation, dispatch), not epochs; peak "
        "memory is the process's peak resident set (simulation included)."
        + (
            " CPU only."
            if results.get("device", "cpu") == "cpu"
            else f" Device: {results.get('device_kind', results['device'])} (simulation, "
            "training and sampling all on it)."
        ),
        "",
        "## Training",
        "",
    ]
    head = ["task", "simulations", "simulate s", "compile s", "s per epoch", "peak MiB"]
    body = [
        [
            r["task"],
            f"{r['num_simulations']:,}",
            fmt(r["simulate_seconds"], 2),
            fmt(r["compile_seconds"], 1),
            fmt(r["seconds_per_epoch"], 3),
            fmt(r["peak_rss_mib"], 0),
        ]
        for r in results["train"]
    ]
    lines += [table(head, body), "", "## Sampling (one observation, warm)", ""]
    head = ["task", "draws", "seconds", "draws per second", "peak MiB"]
    body = []
    for task, rows in results["sample"].items():
        for m_draws, r in rows.items():
            body.append(
                [
                    task,
                    f"{int(m_draws):,}",
                    fmt(r["seconds"], 3),
                    f"{int(m_draws) / r['seconds']:,.0f}",
                    fmt(r["peak_rss_mib"], 0),
                ]
            )
    lines += [
        table(head, body),
        "",
        "Sampling: median of three warm calls, from the default posterior trained on 10,000 "
        "simulations; peak memory of that process.",
    ]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, task = sys.argv[2], sys.argv[3]
        if kind == "train":
            result = child_train(task, int(sys.argv[4]), int(sys.argv[5]))
        else:
            result = child_sample(task, parse_int_list(sys.argv[4]))
        print(json.dumps(result))
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", default="two_moons,slcp")
    p.add_argument("--sizes", default="1000,10000,100000,1000000")
    p.add_argument("--draws", default="1000,10000,100000,1000000")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--out", type=Path, default=RESULTS_DIR / NAME)
    args = p.parse_args()
    tasks = [t for t in args.tasks.split(",") if t]
    load_before = os.getloadavg()[0]
    results: dict = {
        "benchmark": NAME,
        "machine": machine(),
        "versions": versions(["sbi_kit", "jax", "jaxlib", "flowjax"]),
        "settings": {"sizes": args.sizes, "draws": args.draws, "epochs": args.epochs},
        "train": [],
        "sample": {},
    }
    for task in tasks:
        for n in parse_int_list(args.sizes):
            r = _child(["train", task, str(n), str(args.epochs)])
            results["device"] = r.pop("device")
            results["device_kind"] = r.pop("device_kind")
            results["train"].append({"task": task, "num_simulations": n, **r})
            print(task, n, r, flush=True)
        results["sample"][task] = _child(["sample", task, args.draws])
        print(task, results["sample"][task], flush=True)
    results["load_average"] = [load_before, os.getloadavg()[0]]
    write_json(args.out.with_suffix(".json"), results)
    write_markdown(args.out.with_suffix(".md"), markdown(results))
    print(f"wrote {args.out}.json and .md")


if __name__ == "__main__":
    main()
