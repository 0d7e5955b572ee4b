"""NPE training time before and after a refactor: two source trees, one run, fresh processes.

Each fit runs in its own Python process with ``PYTHONPATH`` pointing at one source tree, so JAX's
tracing and XLA compilation are part of every measurement (and no compiled code is shared between
the two revisions; JAX's persistent compilation cache is switched off in the children). The two
trees alternate (old, new, then new, old, ...) so that a drift in the machine's load hits both
alike, and the 1-minute load average is recorded around each fit. Every fit uses the same data
(``sk.simulate(jax.random.key(0), task, num_simulations)``), the same fit key and the same
sampling key, so a refactor that leaves the numerics alone gives identical epochs, validation
losses and posterior samples; the script hashes the samples and the per-epoch losses to check.

Run from the repository root, for example (the old tree as a git worktree)::

    git worktree add --detach /tmp/sbi_kit_old 8dbc549
    git worktree add --detach /tmp/sbi_kit_new HEAD
    python benchmarks/refactor_ab.py --old /tmp/sbi_kit_old --new /tmp/sbi_kit_new \\
        --max-epochs 60 --repeats 3

``--max-epochs`` caps training (the default, 60, keeps the whole run near 15 minutes on a 2-core
machine); with identical numerics both revisions train the same number of epochs, so per-fit
times compare directly. Results go to ``benchmarks/results/refactor_ab.{json,md}`` (``--out``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

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

NAME = "refactor_ab"
PHASES = (
    "setup_wall",
    "setup_cpu",
    "first_epoch_wall",
    "first_epoch_cpu",
    "later_epochs_wall",
    "later_epochs_cpu",
    "later_epoch_wall_median",
    "later_epoch_cpu_median",
    "after_wall",
    "after_cpu",
)
CONFIGS = {
    "default": "sk.NPE()",
    "nflows": "sk.NPE(flow=sk.estimators.NSF(knot_temperature=50**0.5), "
    "support=sk.inference.Rejection())",
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--old", type=Path, help="source tree of the old revision (holds sbi_kit/)")
    p.add_argument("--new", type=Path, help="source tree of the new revision (holds sbi_kit/)")
    p.add_argument("--old-label", default=None, help="name of the old revision in the report")
    p.add_argument("--new-label", default=None, help="name of the new revision in the report")
    p.add_argument("--task", default="two_moons", help="task name (default: %(default)s)")
    p.add_argument(
        "--simulations", type=int, default=10_000, help="training pairs (default: %(default)s)"
    )
    p.add_argument(
        "--configs",
        default=",".join(CONFIGS),
        help=f"comma-separated, of {sorted(CONFIGS)} (default: %(default)s)",
    )
    p.add_argument("--repeats", type=int, default=3, help="fits per revision and config")
    p.add_argument("--max-epochs", type=int, default=60, help="epoch cap (default: 60)")
    p.add_argument(
        "--num-samples", type=int, default=10_000, help="posterior samples hashed per fit"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=RESULTS_DIR / NAME,
        help="output path without suffix (default: benchmarks/results/refactor_ab)",
    )
    p.add_argument(
        "--append",
        action="store_true",
        help="add the new fits to those already in the output JSON (same trees and settings)",
    )
    p.add_argument(
        "--note",
        action="append",
        default=None,
        help="with --report-only: replace the report's notes (repeatable)",
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="rebuild the summary and the markdown from the output JSON; run nothing",
    )
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)  # internal: one fit
    return p.parse_args(argv)


# ---------------------------------------------------------------- child: one fit, JSON on stdout


def _sha(array) -> str:
    import numpy as np

    a = np.ascontiguousarray(np.asarray(array))
    return hashlib.sha256(a.dtype.str.encode() + str(a.shape).encode() + a.tobytes()).hexdigest()


def _time_epochs(sk) -> dict | None:
    """Time stamps (wall, CPU) at the start of every epoch and at the end of the epoch loop.

    Wraps the progress bar of ``sk.training.train`` (each epoch is one iteration over it; the
    bar is closed right after the loop in both revisions), so the fit is split into setup (up to
    the first epoch), the first epoch (which compiles the epoch and validation functions), the
    later epochs, and the rest (up to the returned posterior). None if the module differs.
    """
    training = getattr(sk, "training", None)
    real = getattr(training, "tqdm", None)
    if real is None:
        return None
    stamps: dict = {"epochs": [], "close": None}

    class Timed:
        def __init__(self, iterable, *a, **k):
            self._bar = real(iterable, *a, **k)

        def __iter__(self):
            for item in self._bar:
                stamps["epochs"].append((time.perf_counter(), time.process_time()))
                yield item

        def close(self):
            stamps["close"] = (time.perf_counter(), time.process_time())
            return self._bar.close()

        def __getattr__(self, name):
            return getattr(self._bar, name)

    training.tqdm = Timed
    return stamps


def _phases(stamps, start, end) -> dict | None:
    if not stamps or not stamps["epochs"] or stamps["close"] is None:
        return None
    marks = stamps["epochs"] + [stamps["close"]]
    wall = [b[0] - a[0] for a, b in zip(marks, marks[1:], strict=False)]
    cpu = [b[1] - a[1] for a, b in zip(marks, marks[1:], strict=False)]
    later_wall, later_cpu = wall[1:], cpu[1:]
    return {
        "setup_wall": marks[0][0] - start[0],
        "setup_cpu": marks[0][1] - start[1],
        "first_epoch_wall": wall[0],
        "first_epoch_cpu": cpu[0],
        "later_epochs_wall": sum(later_wall),
        "later_epochs_cpu": sum(later_cpu),
        "later_epoch_wall_median": statistics.median(later_wall) if later_wall else None,
        "later_epoch_cpu_median": statistics.median(later_cpu) if later_cpu else None,
        "after_wall": end[0] - marks[-1][0],
        "after_cpu": end[1] - marks[-1][1],
    }


def child(args) -> None:
    t_start = time.perf_counter()
    import equinox as eqx
    import jax
    import numpy as np
    from _jax_compile_time import CompileTimer

    import sbi_kit as sk

    import_s = time.perf_counter() - t_start
    # Each config with its own defaults except the epoch cap (sk.Training's other defaults).
    training = sk.Training(max_epochs=args.max_epochs)
    npe = eval(
        CONFIGS[args.child].replace("NPE(", "NPE(training=training, ", 1),
        {"sk": sk, "training": training},
    )
    task = sk.tasks.get(args.task)
    t0 = time.perf_counter()
    sims = sk.simulate(jax.random.key(0), task, args.simulations, progress=False)
    jax.block_until_ready((sims.theta, sims.x))
    simulate_s = time.perf_counter() - t0

    stamps = _time_epochs(sk)
    load_before = os.getloadavg()[0]
    cpu0, t0 = time.process_time(), time.perf_counter()
    with CompileTimer() as ct:
        posterior = npe.fit(jax.random.key(1), sims.theta, sims.x, prior=task.prior, progress=False)
        jax.block_until_ready(eqx.filter(posterior, eqx.is_array))
    fit_s, fit_cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    load_after = os.getloadavg()[0]
    phases = _phases(stamps, (t0, cpu0), (t0 + fit_s, cpu0 + fit_cpu_s))

    x_o = task.observation(1)
    t0 = time.perf_counter()
    samples = np.asarray(posterior.sample(jax.random.key(2), x_o, args.num_samples))
    sample_s = time.perf_counter() - t0
    log_q = np.asarray(posterior.log_prob(samples, x_o))
    hist = posterior.history
    val = [float(v) for v in hist.validation_loss]
    out = {
        "sbi_kit_file": sk.__file__,
        "npe": repr(npe),
        "import_seconds": import_s,
        "simulate_seconds": simulate_s,
        "fit_seconds": fit_s,
        "fit_cpu_seconds": fit_cpu_s,
        "compile": ct.as_dict(),
        "sample_seconds": sample_s,
        "phases": phases,
        "load_before_fit": load_before,
        "load_after_fit": load_after,
        "epochs": len(hist.train_loss),
        "best_epoch": int(hist.best_epoch) + 1,
        "stop_reason": str(getattr(hist.stop_reason, "value", hist.stop_reason)),
        "final_validation_loss": val[-1],
        "best_validation_loss": min(val),
        "data_sha256": _sha(np.concatenate([np.asarray(sims.theta), np.asarray(sims.x)], 1)),
        "validation_loss_sha256": _sha(np.asarray(hist.validation_loss)),
        "train_loss_sha256": _sha(np.asarray(hist.train_loss)),
        "samples_sha256": _sha(samples),
        "log_prob_sha256": _sha(log_q),
        "samples_mean": samples.mean(0).tolist(),
    }
    print("RESULT " + json.dumps(out), flush=True)


# ---------------------------------------------------------------- parent: alternate, summarise


def run_child(args, tree: Path, config: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree.resolve())
    env["JAX_ENABLE_COMPILATION_CACHE"] = "false"
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        config,
        "--task",
        args.task,
        "--simulations",
        str(args.simulations),
        "--max-epochs",
        str(args.max_epochs),
        "--num-samples",
        str(args.num_samples),
    ]
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=tree, capture_output=True, text=True)
    process_s = time.perf_counter() - t0
    load_after = os.getloadavg()
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({tree}, {config}):\n{proc.stderr[-4000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    out = json.loads(line[len("RESULT ") :])
    if not Path(out["sbi_kit_file"]).resolve().is_relative_to(tree.resolve()):
        raise RuntimeError(f"child imported {out['sbi_kit_file']}, not the tree {tree}")
    return out | {
        "process_seconds": process_s,
        "load_before": list(load_before),
        "load_after": list(load_after),
    }


def git_describe(tree: Path) -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(tree), "log", "-1", "--format=%h %s"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()[:72]
    except (OSError, subprocess.CalledProcessError):
        return "?"


def git_dirty(tree: Path) -> bool | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no", "sbi_kit"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return bool(out.strip())
    except (OSError, subprocess.CalledProcessError):
        return None


def summarise(results: dict) -> list[dict]:
    rows = []
    for config in results["settings"]["configs"]:
        per = {}
        for rev in ("old", "new"):
            runs = [r for r in results["runs"] if r["config"] == config and r["revision"] == rev]
            if not runs:
                continue

            def med(key, runs=runs):
                return statistics.median(r[key] for r in runs)

            per[rev] = {
                "n": len(runs),
                "fit_seconds_median": med("fit_seconds"),
                "fit_seconds_min": min(r["fit_seconds"] for r in runs),
                "fit_seconds_max": max(r["fit_seconds"] for r in runs),
                "fit_cpu_seconds_median": med("fit_cpu_seconds"),
                "compile_seconds_median": statistics.median(r["compile"]["seconds"] for r in runs),
                "fit_excl_compile_seconds_median": statistics.median(
                    r["fit_seconds"] - r["compile"]["seconds"] for r in runs
                ),
                "process_seconds_median": med("process_seconds"),
                "epochs": sorted({r["epochs"] for r in runs}),
                "final_validation_loss": sorted({r["final_validation_loss"] for r in runs}),
                "samples_sha256": sorted({r["samples_sha256"] for r in runs}),
                "validation_loss_sha256": sorted({r["validation_loss_sha256"] for r in runs}),
                "log_prob_sha256": sorted({r["log_prob_sha256"] for r in runs}),
                "data_sha256": sorted({r["data_sha256"] for r in runs}),
                "load_median": statistics.median(r["load_before"][0] for r in runs),
                "phases_n": sum(1 for r in runs if r.get("phases")),
                "phases_median": {
                    k: statistics.median(r["phases"][k] for r in runs if r.get("phases"))
                    for k in PHASES
                }
                if any(r.get("phases") for r in runs)
                else None,
            }
        row = {"config": config, **per}
        if "old" in per and "new" in per:
            o, n = per["old"], per["new"]
            row["ratio_new_old_fit"] = n["fit_seconds_median"] / o["fit_seconds_median"]
            row["ratio_new_old_fit_cpu"] = n["fit_cpu_seconds_median"] / o["fit_cpu_seconds_median"]
            row["ratio_new_old_excl_compile"] = (
                n["fit_excl_compile_seconds_median"] / o["fit_excl_compile_seconds_median"]
            )
            row["ratio_new_old_compile"] = n["compile_seconds_median"] / o["compile_seconds_median"]
            same = {
                k: len(o[k]) == 1 and o[k] == n[k]
                for k in (
                    "data_sha256",
                    "samples_sha256",
                    "log_prob_sha256",
                    "validation_loss_sha256",
                    "epochs",
                    "final_validation_loss",
                )
            }
            row["identical"] = same
            row["identical_all"] = all(same.values())
            # Paired: the old and new fit of the same repeat ran back to back (similar load).
            pairs = []
            for rep in sorted({r["repeat"] for r in results["runs"] if r["config"] == config}):
                fits = {
                    r["revision"]: r
                    for r in results["runs"]
                    if r["config"] == config and r["repeat"] == rep
                }
                if "old" in fits and "new" in fits:
                    pairs.append(
                        {
                            "repeat": rep,
                            "fit": fits["new"]["fit_seconds"] / fits["old"]["fit_seconds"],
                            "cpu": fits["new"]["fit_cpu_seconds"] / fits["old"]["fit_cpu_seconds"],
                        }
                    )
            row["paired"] = pairs
            for what in ("fit", "cpu"):
                logs = [math.log(q[what]) for q in pairs]
                row[f"paired_{what}_ratio_geomean"] = (
                    math.exp(statistics.mean(logs)) if logs else None
                )
                row[f"paired_{what}_ratio_min"] = min((q[what] for q in pairs), default=None)
                row[f"paired_{what}_ratio_max"] = max((q[what] for q in pairs), default=None)
                row[f"paired_{what}_new_slower"] = sum(q[what] > 1 for q in pairs)
        rows.append(row)
    return rows


def markdown(results: dict) -> str:
    s, m, v = results["settings"], results["machine"], results["versions"]
    lines = [
        "# NPE training time: before vs after the refactor",
        "",
        f"{m['cpu']} ({m['cpu_count']} cores), CPU only; jax {v.get('jax')}, flowjax "
        f"{v.get('flowjax')}, equinox {v.get('equinox')}. Measured "
        f"{', '.join(s.get('sessions', [m['date']]))}.",
        "",
        f"Old: `{s['old']['tree']}` ({s['old']['label']}). New: `{s['new']['tree']}` "
        f"({s['new']['label']}). Task {s['task']}, {s['simulations']:,} simulations from "
        f"`sk.simulate(jax.random.key(0), ...)`, fit key `key(1)`, at most {s['max_epochs']} "
        f"epochs (otherwise each config's defaults), {s['repeats']} fits per revision and "
        "config, each in a fresh process (timings include JAX tracing and XLA compilation; "
        "no persistent compilation cache), revisions alternating. Samples: "
        f"{s['num_samples']:,} at observation 1 with `key(2)`, hashed (SHA-256 of the float32 "
        "array).",
        "",
        "Configs: " + "; ".join(f"`{c}` = `{CONFIGS[c]}`" for c in s["configs"]) + ".",
        "",
    ]
    lines += [f"- {note}" for note in s.get("notes", [])] + ([""] if s.get("notes") else [])
    lines += [
        "## Summary",
        "",
    ]
    head = [
        "config",
        "fit s old (median)",
        "fit s new (median)",
        "ratio new/old",
        "CPU s old",
        "CPU s new",
        "CPU ratio",
        "compile s old / new",
        "excl. compile ratio",
        "epochs old / new",
        "final val loss old / new",
        "paired ratio wall (geo. mean, min-max)",
        "paired ratio CPU (geo. mean, min-max)",
        "pairs new slower (wall / CPU)",
        "identical samples, log q, losses",
        "load avg (median)",
    ]
    body = []
    for r in results["summary"]:
        o, n = r.get("old"), r.get("new")
        if not (o and n):
            continue
        body.append(
            [
                r["config"],
                f"{fmt(o['fit_seconds_median'], 1)} ({fmt(o['fit_seconds_min'], 1)}-"
                f"{fmt(o['fit_seconds_max'], 1)})",
                f"{fmt(n['fit_seconds_median'], 1)} ({fmt(n['fit_seconds_min'], 1)}-"
                f"{fmt(n['fit_seconds_max'], 1)})",
                fmt(r["ratio_new_old_fit"], 3),
                fmt(o["fit_cpu_seconds_median"], 1),
                fmt(n["fit_cpu_seconds_median"], 1),
                fmt(r["ratio_new_old_fit_cpu"], 3),
                f"{fmt(o['compile_seconds_median'], 1)} / {fmt(n['compile_seconds_median'], 1)}",
                fmt(r["ratio_new_old_excl_compile"], 3),
                f"{','.join(map(str, o['epochs']))} / {','.join(map(str, n['epochs']))}",
                f"{', '.join(f'{x:.6f}' for x in o['final_validation_loss'])} / "
                f"{', '.join(f'{x:.6f}' for x in n['final_validation_loss'])}",
                f"{fmt(r['paired_fit_ratio_geomean'], 3)} ({fmt(r['paired_fit_ratio_min'], 2)}-"
                f"{fmt(r['paired_fit_ratio_max'], 2)})",
                f"{fmt(r['paired_cpu_ratio_geomean'], 3)} ({fmt(r['paired_cpu_ratio_min'], 2)}-"
                f"{fmt(r['paired_cpu_ratio_max'], 2)})",
                f"{r['paired_fit_new_slower']} / {r['paired_cpu_new_slower']} of "
                f"{len(r['paired'])}",
                "yes" if r["identical_all"] else "**no**",
                f"{fmt(o['load_median'], 1)} / {fmt(n['load_median'], 1)}",
            ]
        )
    lines += [table(head, body), ""]
    lines += [
        "Fit s: wall-clock seconds of `NPE.fit` (incl. compilation), median (min-max) over the "
        "repeats. Paired ratio: new/old of the two fits of one repeat (run back to back, so "
        "under similar load), geometric mean over the repeats. CPU s: process CPU time during "
        "the fit (all threads; less sensitive to other jobs than wall time). Compile s: "
        "tracing, lowering and XLA compilation reported by "
        "`jax.monitoring` during the fit. Ratios < 1 mean the new revision is faster. "
        "Identical: the training data, the posterior samples, their log-densities and the "
        "per-epoch validation losses hash the same for every fit of both revisions. Load avg: "
        "the machine's 1-minute load average before each fit (other jobs shared the cores; "
        "timings taken under load are noisy).",
        "",
    ]
    head = [
        "config",
        "revision",
        "fits",
        "setup s (wall / CPU)",
        "first epoch s (wall / CPU)",
        "later epochs s (wall / CPU)",
        "one later epoch ms (wall / CPU)",
        "after the loop s (wall / CPU)",
    ]
    body = []
    for r in results["summary"]:
        for rev in ("old", "new"):
            ph = (r.get(rev) or {}).get("phases_median")
            if not ph:
                continue
            body.append(
                [
                    r["config"],
                    rev,
                    str(r[rev]["phases_n"]),
                    f"{fmt(ph['setup_wall'], 2)} / {fmt(ph['setup_cpu'], 2)}",
                    f"{fmt(ph['first_epoch_wall'], 2)} / {fmt(ph['first_epoch_cpu'], 2)}",
                    f"{fmt(ph['later_epochs_wall'], 2)} / {fmt(ph['later_epochs_cpu'], 2)}",
                    f"{fmt(1e3 * ph['later_epoch_wall_median'], 1)} / "
                    f"{fmt(1e3 * ph['later_epoch_cpu_median'], 1)}",
                    f"{fmt(ph['after_wall'], 3)} / {fmt(ph['after_cpu'], 3)}",
                ]
            )
    if body:
        lines += [
            "## Where the time goes",
            "",
            table(head, body),
            "",
            "Medians over the fits that recorded it (the fits added by later sessions). Setup: "
            "from the call to the first epoch (checks, building the flow, z-scoring, data "
            "split, optimiser). First epoch: includes compiling the epoch and validation "
            "functions. Later epochs: every epoch after the first, the steady-state cost that "
            "grows with the number of epochs; one later epoch: their median. After the loop: "
            "up to the returned posterior.",
            "",
        ]
    lines += [
        "## Every fit (in the order run)",
        "",
    ]
    head = [
        "#",
        "config",
        "revision",
        "fit s",
        "CPU s",
        "compile s",
        "process s",
        "epochs",
        "stop",
        "final val loss",
        "samples sha256",
        "load avg before / after",
    ]
    body = [
        [
            str(i + 1),
            r["config"],
            r["revision"],
            fmt(r["fit_seconds"], 1),
            fmt(r["fit_cpu_seconds"], 1),
            fmt(r["compile"]["seconds"], 1),
            fmt(r["process_seconds"], 1),
            str(r["epochs"]),
            r["stop_reason"],
            f"{r['final_validation_loss']:.6f}",
            r["samples_sha256"][:12],
            f"{r['load_before'][0]:.2f} / {r['load_after'][0]:.2f}",
        ]
        for i, r in enumerate(results["runs"])
    ]
    lines += [table(head, body)]
    return "\n".join(lines)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.child:
        child(args)
        return
    if args.report_only:
        from _report import read_json

        json_path, md_path = args.out.with_suffix(".json"), args.out.with_suffix(".md")
        results = read_json(json_path)
        if results is None:
            raise SystemExit(f"--report-only: nothing at {json_path}")
        if args.note is not None:
            results["settings"]["notes"] = args.note
        for rev, label in (("old", args.old_label), ("new", args.new_label)):
            if label:
                results["settings"][rev]["label"] = label
        results["summary"] = summarise(results)
        write_json(json_path, results)
        write_markdown(md_path, markdown(results))
        print(f"rewrote {json_path} and {md_path}")
        return
    if args.old is None or args.new is None:
        raise SystemExit("--old and --new (two source trees) are required")
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    for c in configs:
        if c not in CONFIGS:
            raise SystemExit(f"unknown config {c!r}; choose from {sorted(CONFIGS)}")
    json_path, md_path = args.out.with_suffix(".json"), args.out.with_suffix(".md")
    trees = {"old": args.old, "new": args.new}
    results = {
        "benchmark": NAME,
        "machine": machine(),
        "versions": versions(["jax", "jaxlib", "flowjax", "equinox", "optax", "numpyro"]),
        "settings": {
            "old": {
                "tree": str(args.old),
                "label": args.old_label or git_describe(args.old),
                "sbi_kit_modified": git_dirty(args.old),
            },
            "new": {
                "tree": str(args.new),
                "label": args.new_label or git_describe(args.new),
                "sbi_kit_modified": git_dirty(args.new),
            },
            "task": args.task,
            "simulations": args.simulations,
            "configs": configs,
            "config_code": {c: CONFIGS[c] for c in configs},
            "repeats": args.repeats,
            "max_epochs": args.max_epochs,
            "num_samples": args.num_samples,
            "keys": {"simulate": 0, "fit": 1, "sample": 2, "observation": 1},
        },
        "runs": [],
    }

    if args.append:
        from _report import read_json

        previous = read_json(json_path)
        same = ("task", "simulations", "max_epochs", "num_samples", "keys")
        ps = (previous or {}).get("settings", {})
        if not previous or any(ps.get(k) != results["settings"][k] for k in same):
            raise SystemExit(f"--append: no results with the same settings at {json_path}")
        for rev in ("old", "new"):
            if ps[rev]["tree"] != results["settings"][rev]["tree"]:
                raise SystemExit(f"--append: the {rev} tree differs from {json_path}")
        results["runs"] = previous["runs"]
        results["settings"]["configs"] = list(dict.fromkeys(ps["configs"] + configs))
        results["settings"]["config_code"] = {c: CONFIGS[c] for c in results["settings"]["configs"]}
        results["settings"]["sessions"] = ps.get("sessions", [previous["machine"]["date"]]) + [
            results["machine"]["date"]
        ]
        first = max((r["repeat"] for r in previous["runs"]), default=0)
    else:
        first = 0

    def save():
        results["summary"] = summarise(results)
        results["settings"]["repeats"] = max(
            (
                sum(1 for r in results["runs"] if r["config"] == c and r["revision"] == "old")
                for c in results["settings"]["configs"]
            ),
            default=0,
        )
        write_json(json_path, results)
        write_markdown(md_path, markdown(results))

    # Warm the file cache (imports) once per tree; not recorded.
    for tree in trees.values():
        env = dict(os.environ, PYTHONPATH=str(tree.resolve()))
        subprocess.run(
            [sys.executable, "-c", "import jax, sbi_kit; jax.numpy.zeros(1)"],
            env=env,
            cwd=tree,
            check=True,
        )
    for rep in range(args.repeats):
        for ci, config in enumerate(configs):
            order = ("old", "new") if (first + rep + ci) % 2 == 0 else ("new", "old")
            for rev in order:
                t = time.strftime("%H:%M:%S")
                print(f"[{t}] repeat {first + rep + 1}, {config}, {rev} ...", flush=True)
                out = run_child(args, trees[rev], config)
                out |= {"config": config, "revision": rev, "repeat": first + rep + 1}
                results["runs"].append(out)
                print(
                    f"  fit {out['fit_seconds']:.1f} s (CPU {out['fit_cpu_seconds']:.1f} s, "
                    f"compile {out['compile']['seconds']:.1f} s), {out['epochs']} epochs, "
                    f"final val {out['final_validation_loss']:.6f}, samples "
                    f"{out['samples_sha256'][:12]}, load {out['load_before'][0]:.2f}",
                    flush=True,
                )
                save()
    save()
    for r in results["summary"]:
        if "ratio_new_old_fit" in r:
            print(
                f"{r['config']}: new/old fit {r['ratio_new_old_fit']:.3f}, CPU "
                f"{r['ratio_new_old_fit_cpu']:.3f}, identical {r['identical_all']}"
            )
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
