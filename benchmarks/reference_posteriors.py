"""C2ST between this project's reference posterior samples and sbibm's published ones.

For every task and observation 1..10: ``sk.diagnostics.c2st`` (sbibm's classifier, z-scoring
and 5-fold set-up) between our 10,000 reference samples (``task.reference_samples(k)``) and
sbibm 1.1.0's 10,000 ``reference_posterior_samples.csv.bz2``, read from the sbibm wheel. 0.5 means
indistinguishable; the goal is C2ST ≤ 0.55 everywhere. sbibm's samples are only compared against
here, never shipped.

Resumable: finished (task, observation) pairs in the JSON are skipped; results are written after
each pair. Writes ``benchmarks/results/reference_posteriors.{json,md}``.

    python benchmarks/reference_posteriors.py [--tasks slcp two_moons] [--observations 1-10]
        [--sbibm-wheel PATH] [--fresh]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

import sbi_kit as sk
from sbi_kit.tasks.generate import OWN_OBSERVATIONS, download_sbibm_wheel, read_sbibm_csv

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import (  # noqa: E402
    RESULTS_DIR,
    fmt,
    machine,
    parse_int_list,
    read_json,
    table,
    versions,
    write_json,
    write_markdown,
)

NAME = "reference_posteriors"
GOAL = 0.55
SBIBM_TASKS = [name for name in sk.tasks.names() if name not in OWN_OBSERVATIONS]


def moment_check(ours: np.ndarray, theirs: np.ndarray) -> dict:
    """Per-component differences of means (in standard errors) and of standard deviations."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    se = np.sqrt(ours.var(axis=0) / len(ours) + theirs.var(axis=0) / len(theirs))
    z = (ours.mean(axis=0) - theirs.mean(axis=0)) / se
    ratio = ours.std(axis=0) / theirs.std(axis=0)
    return {
        "max_abs_mean_z": float(np.abs(z).max()),
        "max_abs_log_std_ratio": float(np.abs(np.log(ratio)).max()),
    }


def markdown(results: dict) -> str:
    tasks = [t for t in sk.tasks.names() if t in results["c2st"]]
    observations = list(range(1, 11))
    rows = []
    for name in tasks:
        values = [results["c2st"][name].get(str(k)) for k in observations]
        done = [v for v in values if v is not None]
        mean = float(np.mean(done)) if done else None
        worst = float(np.max(done)) if done else None
        rows.append([name, *(fmt(v) for v in values), fmt(mean), fmt(worst)])
    header = ["task", *(str(k) for k in observations), "mean", "max"]
    all_values = [v for name in tasks for v in results["c2st"][name].values() if v is not None]
    failing = [
        f"{name} #{k} ({v:.3f})"
        for name in tasks
        for k, v in results["c2st"][name].items()
        if v is not None and v > GOAL
    ]
    verdict = (
        f"All {len(all_values)} C2ST values ≤ {GOAL}."
        if not failing
        else f"Above {GOAL}: {', '.join(failing)}."
    )
    moment_rows = []
    for name in tasks:
        entries = list(results.get("moments", {}).get(name, {}).values())
        if entries:
            z = max(e["max_abs_mean_z"] for e in entries)
            r = max(e["max_abs_log_std_ratio"] for e in entries)
            moment_rows.append(
                [name, str(len(entries)), fmt(z, 2), f"{100 * (np.exp(r) - 1):.1f} %"]
            )
    moments_md = (
        "Moments (every observation, fast): the largest difference of a component's mean, in "
        "standard errors of the difference (about 3 is the largest expected among 10 "
        "observations × d components when both are exact; NUTS samples have a smaller effective "
        "size, so somewhat more there), and the largest relative difference of a component's "
        "standard deviation.\n\n"
        + table(["task", "observations", "max abs z of means", "max std difference"], moment_rows)
    )
    m = results["machine"]
    return "\n\n".join(
        [
            "# Reference posteriors: sbi_kit vs sbibm",
            "C2ST (`sk.diagnostics.c2st`: sbibm's MLP classifier, z-scored with the reference's "
            "moments, 5-fold CV) between this project's 10,000 reference posterior samples per "
            "observation and sbibm 1.1.0's published 10,000. 0.5 = indistinguishable; goal "
            f"≤ {GOAL}. Produced by `python benchmarks/reference_posteriors.py`.",
            table(header, rows),
            verdict,
            moments_md,
            "Notes:\n"
            "- Our references: gaussian_linear analytic (conjugate Gaussian); "
            "gaussian_linear_uniform and gaussian_mixture by rejection from the closed-form "
            "posterior restricted to the prior's box; two_moons by exact inversion of the "
            "simulator; slcp by NUTS in one sign mode with random sign flips of θ3, θ4; "
            "bernoulli_glm by NUTS; sir and lotka_volterra by importance sampling through the "
            "diffrax solve, Student-t proposal fitted at the Laplace approximation and refined, "
            "400,000 proposals, resampled (see docs/tasks.md).\n"
            "- sbibm's references: the same closed forms for the first four; slcp by SIR + "
            "rejection sampling; bernoulli_glm by Pólya-Gamma Gibbs sampling; sir and "
            "lotka_volterra by slice-sampling MCMC, then rejection sampling from a flow fitted "
            "to its draws (Julia's Tsit5 at rtol = atol = 1e-8).\n"
            f"- Machine: {m['cpu']} ({m['cpu_count']} cores), {m['date']}; total C2ST time "
            f"{results['seconds']:.0f} s.",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=SBIBM_TASKS, choices=SBIBM_TASKS)
    parser.add_argument("--observations", type=parse_int_list, default=list(range(1, 11)))
    parser.add_argument("--sbibm-wheel", type=Path, default=None)
    parser.add_argument("--fresh", action="store_true", help="ignore earlier results")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)

    json_path, md_path = args.out / f"{NAME}.json", args.out / f"{NAME}.md"
    previous = None if args.fresh else read_json(json_path)
    results = previous or {"c2st": {}, "seconds_each": {}, "seconds": 0.0}
    results["machine"] = machine()
    results["versions"] = versions(["sbi_kit", "scikit-learn", "jax", "numpyro", "numpy"])
    results["sbibm_version"] = "1.1.0"

    with tempfile.TemporaryDirectory() as tmp:
        wheel_path = args.sbibm_wheel or download_sbibm_wheel(Path(tmp))
        with zipfile.ZipFile(wheel_path) as wheel:
            for name in args.tasks:
                task = sk.tasks.get(name)
                done = results["c2st"].setdefault(name, {})
                seconds = results["seconds_each"].setdefault(name, {})
                moments = results.setdefault("moments", {}).setdefault(name, {})
                for k in args.observations:
                    theirs = read_sbibm_csv(wheel, name, k, "reference_posterior_samples.csv.bz2")
                    ours = task.reference_samples(k)
                    moments[str(k)] = moment_check(ours, theirs)
                    if str(k) in done:
                        continue
                    start = time.perf_counter()
                    value = sk.diagnostics.c2st(ours, theirs)
                    elapsed = time.perf_counter() - start
                    done[str(k)], seconds[str(k)] = value, elapsed
                    results["seconds"] += elapsed
                    print(f"{name} #{k}: C2ST {value:.4f} ({elapsed:.0f} s)", flush=True)
                    write_json(json_path, results)
                    write_markdown(md_path, markdown(results))
    write_json(json_path, results)
    write_markdown(md_path, markdown(results))


if __name__ == "__main__":
    main()
