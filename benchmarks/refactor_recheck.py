"""Accuracy after a refactor: re-measured NPE results beside the committed ones, observation by
observation.

Reads results that ``sbibm_npe.py`` and ``npe_vs_sbi.py`` wrote to other ``--out`` paths (re-runs
with the settings and seeds of the committed files), by the new source tree and, optionally, by
the old one on the same machine, and puts every C2ST, reference log-density and training
statistic beside the committed value from ``benchmarks/results/``. With bit-identical numerics
(same keys, same CPU) and sbibm's seeded C2ST classifier, new − old is zero. XLA's CPU code
depends on the processor, so a re-run on another machine than the committed one trains
differently after a few epochs; new − committed then shows the seed-to-seed-like spread, and
new − old is the comparison that isolates the refactor. Example (old tree as a git worktree)::

    PYTHONPATH=/tmp/sbi_kit_new python benchmarks/sbibm_npe.py --tasks two_moons \\
        --simulations 10000 --observations 1-3 --batch-size 50 --out /tmp/recheck_new/sbibm_npe
    PYTHONPATH=/tmp/sbi_kit_old python benchmarks/sbibm_npe.py ... --out /tmp/recheck_old/sbibm_npe
    PYTHONPATH=/tmp/sbi_kit_new python benchmarks/npe_vs_sbi.py --libraries sbi_kit \\
        --tasks two_moons --seeds 0 --observations 1-4 --out /tmp/recheck_new/npe_vs_sbi
    PYTHONPATH=/tmp/sbi_kit_old python benchmarks/npe_vs_sbi.py ... \\
        --out /tmp/recheck_old/npe_vs_sbi
    python benchmarks/refactor_recheck.py \\
        --sbibm /tmp/recheck_new/sbibm_npe.json --sbibm-old /tmp/recheck_old/sbibm_npe.json \\
        --npe-vs-sbi /tmp/recheck_new/npe_vs_sbi.json \\
        --npe-vs-sbi-old /tmp/recheck_old/npe_vs_sbi.json

Writes ``benchmarks/results/refactor_recheck.{json,md}`` (``--out``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import (  # noqa: E402
    RESULTS_DIR,
    fmt,
    machine,
    read_json,
    table,
    write_json,
    write_markdown,
)

NAME = "refactor_recheck"
# Per-run statistics compared besides C2ST (those present in both files).
STATS = (
    "epochs",
    "best_epoch",
    "stop_reason",
    "best_validation_loss",
    "heldout_log_prob",
    "num_dropped",
)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sbibm", type=Path, default=None, help="re-run of sbibm_npe.py (JSON)")
    p.add_argument("--npe-vs-sbi", type=Path, default=None, help="re-run of npe_vs_sbi.py (JSON)")
    p.add_argument(
        "--sbibm-old", type=Path, default=None, help="the same re-run by the old tree (JSON)"
    )
    p.add_argument(
        "--npe-vs-sbi-old", type=Path, default=None, help="the same re-run by the old tree (JSON)"
    )
    p.add_argument(
        "--sbibm-committed", type=Path, default=RESULTS_DIR / "sbibm_npe.json", help="committed"
    )
    p.add_argument(
        "--npe-vs-sbi-committed",
        type=Path,
        default=RESULTS_DIR / "npe_vs_sbi.json",
        help="committed",
    )
    p.add_argument("--label", default="", help="what the re-run measured (e.g. the revision)")
    p.add_argument(
        "--note",
        action="append",
        default=[],
        help="a line for the report (load, what was not run); repeatable",
    )
    p.add_argument("--out", type=Path, default=RESULTS_DIR / NAME, help="output path, no suffix")
    return p.parse_args(argv)


def _diff(a, b):
    if isinstance(a, int | float) and isinstance(b, int | float):
        return b - a
    return None


def compare(
    benchmark: str, committed: dict, new: dict, old: dict | None, library: str | None
) -> list[dict]:
    """One row per (run, observation) of the new re-run: committed, old-tree and new values."""
    rows = []
    for key, run_new in new["runs"].items():
        if library is not None and run_new.get("library") != library:
            continue
        run_com = committed["runs"].get(key) or {}
        run_old = (old or {"runs": {}})["runs"].get(key) or {}
        stats = {}
        for s in STATS + ("train_seconds",):
            if s not in run_new:
                continue
            c, o, n = run_com.get(s), run_old.get(s), run_new.get(s)
            stats[s] = {
                "committed": c,
                "old": o,
                "new": n,
                "new_minus_old": _diff(o, n),
                "new_minus_committed": _diff(c, n),
            }
            if s == "train_seconds":
                stats[s] = {
                    "committed": c,
                    "old": o,
                    "new": n,
                    "ratio_new_old": n / o if o and n else None,
                }
        for i in sorted(run_new.get("c2st", {}), key=int):
            c = run_com.get("c2st", {}).get(i)
            o = run_old.get("c2st", {}).get(i)
            n = run_new["c2st"][i]
            lc = run_com.get("ref_log_prob", {}).get(i)
            lo = run_old.get("ref_log_prob", {}).get(i)
            ln = run_new.get("ref_log_prob", {}).get(i)
            rows.append(
                {
                    "benchmark": benchmark,
                    "run": key,
                    "task": run_new["task"],
                    "num_simulations": run_new["num_simulations"],
                    "seed": run_new["seed"],
                    "observation": int(i),
                    "c2st_committed": c,
                    "c2st_old": o,
                    "c2st_new": n,
                    "c2st_new_minus_old": _diff(o, n),
                    "c2st_new_minus_committed": _diff(c, n),
                    "ref_log_prob_committed": lc,
                    "ref_log_prob_old": lo,
                    "ref_log_prob_new": ln,
                    "ref_log_prob_new_minus_old": _diff(lo, ln),
                    "run_stats": stats,
                }
            )
    return rows


def _cell(value, digits):
    return value if isinstance(value, str) else fmt(value, digits)


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        "# NPE accuracy re-measured after the refactor",
        "",
        f"Re-runs on {m['cpu']} ({m['cpu_count']} cores), CPU only, written {m['date']}. "
        f"{results['label']}",
        "",
        "Committed: the values in `benchmarks/results/` (measured on "
        f"{results['committed_machine']}). Old / new: the same benchmark re-run here with the "
        "settings, seeds and keys of the committed results, by the old and the new source tree "
        "(`settings_match` in the JSON). C2ST: sbibm's classifier with its fixed seed "
        "(`sk.diagnostics.c2st(seed=1)`), so identical samples give identical C2ST.",
        "",
    ]
    for note in results.get("notes", []):
        lines.append(f"- {note}")
    if results.get("notes"):
        lines.append("")
    lines += ["## C2ST per observation", ""]
    head = [
        "benchmark",
        "task",
        "sims",
        "seed",
        "obs",
        "C2ST committed",
        "C2ST old",
        "C2ST new",
        "new − old",
        "new − committed",
        "ref log q old",
        "ref log q new",
        "new − old",
    ]
    body = [
        [
            r["benchmark"],
            r["task"],
            f"{r['num_simulations']:,}",
            str(r["seed"]),
            str(r["observation"]),
            fmt(r["c2st_committed"], 4),
            fmt(r["c2st_old"], 4),
            fmt(r["c2st_new"], 4),
            fmt(r["c2st_new_minus_old"], 4),
            fmt(r["c2st_new_minus_committed"], 4),
            fmt(r["ref_log_prob_old"], 4),
            fmt(r["ref_log_prob_new"], 4),
            fmt(r["ref_log_prob_new_minus_old"], 4),
        ]
        for r in results["rows"]
    ]
    lines += [table(head, body), "", "## Training, per run", ""]
    head = ["benchmark", "run", "statistic", "committed", "old", "new", "new − old"]
    body, seen = [], set()
    for r in results["rows"]:
        if (r["benchmark"], r["run"]) in seen:
            continue
        seen.add((r["benchmark"], r["run"]))
        for s, v in r["run_stats"].items():
            timing = s == "train_seconds"
            digits = 1 if timing else 4
            d = v.get("ratio_new_old") if timing else v.get("new_minus_old")
            body.append(
                [
                    r["benchmark"],
                    r["run"],
                    "train seconds (new/old ratio)" if timing else s,
                    _cell(v["committed"], digits),
                    _cell(v["old"], digits),
                    _cell(v["new"], digits),
                    fmt(d, 3 if timing else 4),
                ]
            )
    lines += [table(head, body), ""]
    lines += [
        "Train seconds: wall-clock incl. JIT compilation, on a shared 2-core machine under "
        "load, old and new run one after the other (not interleaved), so their ratio is rough; "
        "`refactor_ab.md` compares the training time of both revisions in one interleaved run."
    ]
    return "\n".join(lines)


def main(argv=None) -> None:
    args = parse_args(argv)
    rows, sources, settings_match, committed_machine = [], {}, {}, set()
    for name, new_path, old_path, committed_path, library in (
        ("sbibm_npe", args.sbibm, args.sbibm_old, args.sbibm_committed, None),
        ("npe_vs_sbi", args.npe_vs_sbi, args.npe_vs_sbi_old, args.npe_vs_sbi_committed, "sbi_kit"),
    ):
        if new_path is None:
            continue
        new, committed = read_json(new_path), read_json(committed_path)
        old = read_json(old_path) if old_path is not None else None
        if new is None or committed is None or (old_path is not None and old is None):
            raise SystemExit(f"cannot read {new_path}, {old_path} or {committed_path}")
        committed_machine.add(committed["machine"]["cpu"])
        sources[name] = {
            "new": str(new_path),
            "old": None if old_path is None else str(old_path),
            "committed": str(committed_path),
            "versions": {
                "committed": committed.get("versions"),
                "old": (old or {}).get("versions"),
                "new": new.get("versions"),
            },
            "machines": {
                "committed": committed["machine"],
                "old": (old or {}).get("machine"),
                "new": new["machine"],
            },
        }
        cs = committed["settings"]
        keys = (
            ["estimator", "num_samples"]
            if name == "sbibm_npe"
            else [
                k
                for k in new["settings"]
                if k not in ("tasks", "observations", "c2st_observations", "seeds")
            ]
        )
        settings_match[name] = {
            which: {k: run["settings"].get(k) == cs.get(k) for k in keys}
            for which, run in (("new", new), ("old", old))
            if run is not None
        }
        rows += compare(name, committed, new, old, library)
    results = {
        "benchmark": NAME,
        "machine": machine(),
        "committed_machine": ", ".join(sorted(committed_machine)),
        "label": args.label,
        "notes": args.note,
        "sources": sources,
        "settings_match": settings_match,
        "rows": rows,
        "new_equals_old_all": all(
            r["c2st_new_minus_old"] == 0 and r["ref_log_prob_new_minus_old"] == 0 for r in rows
        ),
        "max_abs_c2st_new_minus_committed": max(
            (
                abs(r["c2st_new_minus_committed"])
                for r in rows
                if r["c2st_new_minus_committed"] is not None
            ),
            default=None,
        ),
    }
    write_json(args.out.with_suffix(".json"), results)
    write_markdown(args.out.with_suffix(".md"), markdown(results))
    print(f"{len(rows)} C2STs; new == old everywhere: {results['new_equals_old_all']}")
    print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
