"""Sampling speed of trained NPE posteriors: sbi_kit against the `sbi` package, in one run.

For each task, both libraries train an NPE on the same 2,000 simulations with their own early
stopping, in the two configurations of ``npe_vs_sbi.py`` (``defaults``: ``sk.NPE()`` against
sbi's ``NPE(prior)``; ``matched``: the spline flows with rejection). Training to convergence
matters: with a bounded prior and rejection, an untrained flow puts mass outside the prior and
every draw costs more (sbi_kit's acceptance rate is reported). Then each posterior draws 10,000
samples for observations 1-6: the first call (sbi_kit's includes tracing and compiling its
sampler) and the median of the five warm calls that follow. The libraries alternate task by
task; both run on the cores the process is given (run it under ``taskset -c 0`` for one core;
torch gets one thread per core).

Run from the repository root, in the benchmark environment (see benchmarks/README.md)::

    taskset -c 0 python benchmarks/npe_sampling.py
    taskset -c 0 python benchmarks/npe_sampling.py --tasks two_moons --out /tmp/quick

Results go to ``benchmarks/results/npe_sampling.{json,md}`` (one run; ``--label`` names it, so
that a run of older sbi_kit code can be kept beside it under another ``--out``).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import (  # noqa: E402
    RESULTS_DIR,
    fmt,
    machine,
    table,
    versions,
    write_json,
    write_markdown,
)
from npe_vs_sbi import FLOW, sbi_inference, sbi_kit_method, torch_prior  # noqa: E402

NAME = "npe_sampling"
OBSERVATIONS = (1, 2, 3, 4, 5, 6)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", default="two_moons,gaussian_linear,slcp")
    p.add_argument("--configs", default="defaults,matched")
    p.add_argument("--simulations", type=int, default=2000)
    p.add_argument(
        "--epochs", type=int, default=1000, help="at most this many epochs (default: %(default)s)"
    )
    p.add_argument("--num-samples", type=int, default=10_000)
    p.add_argument("--label", default="", help="a name for this run (e.g. the code's state)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / NAME)
    return p.parse_args(argv)


def _options(epochs: int) -> argparse.Namespace:
    """What ``npe_vs_sbi``'s builders read, with a short training."""
    return argparse.Namespace(
        knot_temperature=math.sqrt(FLOW["hidden_features"]),
        support="rejection",
        max_epochs=epochs,
        sbi_model="nsf",
    )


def _timings(draw, num_samples: int) -> dict:
    seconds = []
    for i in OBSERVATIONS:
        start = time.perf_counter()
        draw(i, num_samples)
        seconds.append(time.perf_counter() - start)
    return {"first": seconds[0], "warm": statistics.median(seconds[1:]), "all": seconds}


def time_sbi_kit(task, config, args, theta, x) -> dict:
    import jax

    import sbi_kit as sk

    if config == "defaults":  # sk.NPE() with the epoch cap of this run
        npe = sk.NPE(training=sk.Training(max_epochs=args.epochs))
    else:
        npe = sbi_kit_method(config, _options(args.epochs))
    posterior = npe.fit(jax.random.key(1), theta, x, prior=task.prior, progress=False)

    def draw(i, n):
        s = posterior.sample(jax.random.key(100 + i), task.observation(i), n)
        return np.asarray(jax.block_until_ready(s))

    out = _timings(draw, args.num_samples)
    if isinstance(npe.support, sk.inference.Rejection):
        rates = [
            float(posterior.acceptance_rate(jax.random.key(i), task.observation(i)))
            for i in OBSERVATIONS
        ]
        out["acceptance_rate"] = statistics.mean(rates)
    out["method"] = repr(npe)
    out["epochs"] = len(posterior.history.train_loss)
    return out


def time_sbi(task, config, args, theta, x) -> dict:
    import torch

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    torch.manual_seed(1)
    prior = torch_prior(task.prior)
    inference = sbi_inference(config, _options(args.epochs), prior)
    inference.append_simulations(
        torch.as_tensor(np.array(theta), dtype=torch.float32),
        torch.as_tensor(np.array(x), dtype=torch.float32),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator = inference.train(max_num_epochs=args.epochs)
        posterior = inference.build_posterior(estimator)
    result = {"epochs": int(inference.summary["epochs_trained"][-1])}

    def draw(i, n):
        obs = torch.as_tensor(np.asarray(task.observation(i)), dtype=torch.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return posterior.sample((n,), x=obs, show_progress_bars=False).numpy()

    return result | _timings(draw, args.num_samples)


def markdown(result: dict) -> str:
    m, v = result["machine"], result["versions"]
    label = f" ({result['label']})" if result["label"] else ""
    lines = [
        f"# NPE sampling speed: sbi_kit against sbi{label}",
        "",
        f"{m['cpu']}, {result['cores']} core(s) given to the process of {m['cpu_count']}; "
        f"torch threads = cores. sbi_kit {v['sbi_kit']} (git {result['commit']}), jax "
        f"{v['jax']}, flowjax {v['flowjax']}; sbi {v['sbi']}, torch {v['torch']}. Measured "
        f"{m['date']}. Each posterior trained on {result['simulations']:,} simulations (early "
        f"stopping, at most {result['epochs']} epochs); {result['num_samples']:,} draws per call, "
        f"observations {OBSERVATIONS[0]}-{OBSERVATIONS[-1]}.",
        "",
    ]
    rows = []
    for key, run in result["runs"].items():
        config, task = key.split("/")
        ours, peer = run["sbi_kit"], run["sbi"]
        rows.append(
            [
                config,
                task,
                fmt(ours["warm"]),
                fmt(peer["warm"]),
                f"{peer['warm'] / ours['warm']:.2f}",
                fmt(ours["first"]),
                fmt(peer["first"]),
                fmt(ours.get("acceptance_rate"), 2),
                f"{ours['epochs']} / {peer['epochs']}",
            ]
        )
    header = [
        "config",
        "task",
        "sbi_kit warm s",
        "sbi warm s",
        "ratio warm (sbi / sbi_kit)",
        "sbi_kit first call s",
        "sbi first call s",
        "sbi_kit acceptance",
        "epochs sbi_kit / sbi",
    ]
    lines += [table(header, rows), ""]
    lines.append(
        "Warm: median of the five calls after the first (each for another observation); first "
        "call: sbi_kit's includes tracing and compiling its sampler. Ratio > 1: sbi_kit faster."
    )
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    args = parse_args(argv)
    import jax

    import sbi_kit as sk

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    result = {
        "benchmark": NAME,
        "label": args.label,
        "machine": machine(),
        "cores": len(os.sched_getaffinity(0)),
        "commit": commit or "unknown",
        "versions": versions(["sbi_kit", "jax", "flowjax", "sbi", "torch"]),
        "simulations": args.simulations,
        "epochs": args.epochs,
        "num_samples": args.num_samples,
        "runs": {},
    }
    for t, name in enumerate(args.tasks.split(",")):
        task = sk.tasks.get(name)
        theta, x = sk.simulate(jax.random.key(0), task, args.simulations, progress=False)
        for config in args.configs.split(","):
            order = ("sbi_kit", "sbi") if t % 2 == 0 else ("sbi", "sbi_kit")
            run = {}
            for library in order:
                timer = time_sbi_kit if library == "sbi_kit" else time_sbi
                run[library] = timer(task, config, args, theta, x)
                print(f"{config}/{name} {library}: warm {run[library]['warm']:.3f} s", flush=True)
            result["runs"][f"{config}/{name}"] = run
            write_json(args.out.with_suffix(".json"), result)
            write_markdown(args.out.with_suffix(".md"), markdown(result))


if __name__ == "__main__":
    main()
