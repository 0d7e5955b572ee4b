"""One table of every method's sbibm C2ST beside sbibm's published number, from the result files.

`sbibm.py` writes one result file per run (method, settings, seeds); over the sessions they
became many. This script reads the files that hold each method's runs *with its current
defaults* (listed by hand below, first file first: a multi-seed file before a single-seed one)
and writes ``benchmarks/results/sbibm_summary.{json,md}``: per task and budget, the mean C2ST
over observations 1–10 (and seeds), how many C2STs it averages, sbibm's published mean for
the same method and budget, and the file it came from. Files from earlier settings are used
only where no current run exists, and are marked. Nothing is run or recomputed here::

    python benchmarks/sbibm_summary.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import RESULTS_DIR, fmt, read_json, table, write_json, write_markdown  # noqa: E402
from sbibm import published  # noqa: E402

BUDGETS = (1000, 10_000)
TASKS = ("two_moons", "gaussian_linear", "slcp", "sir", "lotka_volterra")

# SNLE runs that chose the flow in every round by the validation loss (earlier on 2026-12-07)
_SNLE_CHOICE = [
    ("sbibm_snle_choice_slcp", True),
    ("sbibm_snle_choice_gl", True),
    ("sbibm_snle_choice_lv", True),
    ("sbibm_snle_choice_slcp10k", True),
    ("sbibm_snle_choice_tm", True),
    ("sbibm_snle_choice_sir", True),
    ("sbibm_snle_choice_sir10k", True),
    ("sbibm_snle_choice_lv10k", True),
]
# SNLE runs with `NSF()` or older settings that fill the gaps of the SNLE rows, marked †
_SNLE_NSF_FILLS = [
    ("sbibm_snle_b50p100", False),
    ("sbibm_snle_b50p100_tm10k", False),
    ("sbibm_snle_b50p100_gl", False),
    ("sbibm_snle_b50p100_slcp", False),
    ("sbibm_snle_b50p100_gl10k", False),
    ("sbibm_snle_b50p100_sir", False),
    ("sbibm_snle_b50p100_lv", False),
    ("sbibm_snle_b50p100_slcp10k", False),
    ("sbibm_snle_slcp10k", False),
    ("sbibm_snle_warm", False),
    ("sbibm_snle_slcp", False),
    ("sbibm_snle_gl", False),
    ("sbibm_snle_sir", False),
]

# method row -> (sbibm's method name, [(result file stem, runs with the current defaults?)])
SOURCES: dict[str, tuple[str, list[tuple[str, bool]]]] = {
    # NPE's default training became sk.Training(batch_size=50, patience=100) on 2026-12-05 (as
    # NLE's and NRE's earlier that day); sbibm_npe is sbibm_npe.py's run (batch 50, patience 20)
    # NPE's default flow became NSF(activation="gelu") on 2026-12-06 (`sbibm.py --activation
    # gelu`); the runs with ReLU conditioners fill the gaps, marked †, and keep their own row.
    # NPE's training gained lr_plateau_steps=2700 later that day (`sbibm.py --lr-plateau-steps
    # 2700`): it never fires before the patience with 10^3 simulations (2,700 steps are 150
    # epochs there), so the 10^3 runs without it are runs of the current default;
    # sbibm_npe_now_sirlv is `sbibm.py --method npe` with no flags (2026-12-08)
    "NPE": (
        "npe",
        [
            ("sbibm_npe_plateau2700", True),
            ("sbibm_npe_plateau2700_seed2", True),
            ("sbibm_npe_plateau2700_gl", True),
            ("sbibm_npe_plateau2700_slcp", True),
            ("sbibm_npe_gelu_seeds", True),
            ("sbibm_npe_gelu_1k", True),
            ("sbibm_npe_gelu_1k_gl", True),
            ("sbibm_npe_now_sirlv", True),
            ("sbibm_npe_gelu", False),
            ("sbibm_npe_b50p100_seeds", False),
            ("sbibm_npe_b50p100", False),
            ("sbibm_npe_b50p100_glslcp", False),
            ("sbibm_npe", False),
        ],
    ),
    "NPE without the plateau schedule (the default until 2026-12-06)": (
        "npe",
        [
            ("sbibm_npe_gelu", True),
            ("sbibm_npe_gelu_tm10k_seed1", True),
            ("sbibm_npe_gelu_tm10k_seed2", True),
        ],
    ),
    "NPE, ReLU conditioners (`NSF()`, the default until 2026-12-06)": (
        "npe",
        [
            ("sbibm_npe_b50p100_seeds", True),
            ("sbibm_npe_b50p100", True),
            ("sbibm_npe_b50p100_glslcp", True),
        ],
    ),
    "NPE, previous default (batch 200, patience 20)": (
        "npe",
        [
            ("sbibm_npe_seeds", True),
            ("sbibm_npe_default", True),
            ("sbibm_npe_default_glslcp", True),
        ],
    ),
    # `sbibm.py --batch-size 50 --patience 20` at 10,000 simulations: what patience costs
    "NPE, batch 50, patience 20": ("npe", [("sbibm_npe_b50p20_10k", True)]),
    # NLE's default flow became BestOf((NSF(), MAF())) on 2026-12-07 (the lower validation
    # loss of the two is kept): the runs of NSF() alone fill the gaps, marked †, and keep their
    # own row. (The choice's posterior is the chosen flow's bit for bit on one machine, but the
    # NSF() and MAF() runs were made on another CPU, so they are not the new default's runs.)
    # NLE's default training became sk.Training(batch_size=50, patience=100) on 2026-12-05
    # (it was sk.Training(): batch 200, patience 20); runs of the old default are kept below
    # as their own row (for SNLE and SNRE they also fill the new rows' gaps, marked †)
    "NLE": (
        "nle",
        [
            ("sbibm_nle_bestof_slcp", True),
            ("sbibm_nle_bestof_sir", True),
            ("sbibm_nle_bestof_sir1k", True),
            ("sbibm_nle_bestof_tm", True),
            ("sbibm_nle_bestof_tm10k", True),
            ("sbibm_nle_bestof_gl", True),
            ("sbibm_nle_bestof_gl1k", True),
            ("sbibm_nle_bestof_lv", True),
            ("sbibm_nle_b50p100", False),
            ("sbibm_nle_b50p100_tm10k", False),
            ("sbibm_nle_b50p100_gl", False),
            ("sbibm_nle_b50p100_gl10k", False),
            ("sbibm_nle_b50p100_slcp1k", False),
            ("sbibm_nle_b50p100_slcp10k", False),
            ("sbibm_nle_sir_b50p100", False),
            ("sbibm_nle_b50p100_lv", False),
        ],
    ),
    "NLE with NSF (`NSF()`, the default until 2026-12-07)": (
        "nle",
        [
            ("sbibm_nle_b50p100", True),
            ("sbibm_nle_b50p100_tm10k", True),
            ("sbibm_nle_b50p100_gl", True),
            ("sbibm_nle_b50p100_gl10k", True),
            ("sbibm_nle_b50p100_slcp1k", True),
            ("sbibm_nle_b50p100_slcp10k", True),
            ("sbibm_nle_sir_b50p100", True),
            ("sbibm_nle_b50p100_lv", True),
        ],
    ),
    "NLE, previous default (batch 200, patience 20)": (
        "nle",
        [
            ("sbibm_nle_seeds", True),
            ("sbibm_nle_short_chains", True),
            ("sbibm_nle_short_chains_gl", True),
            ("sbibm_nle_gl", True),
            ("sbibm_nle_sir", True),
            ("sbibm_nle_lv", True),
            ("sbibm_nle", False),
        ],
    ),
    # `sbibm.py --flow maf`: sbibm's NLE and SNLE used MAFs (ours default to NSF)
    "NLE with GELU conditioners": ("nle", [("sbibm_nle_gelu", True)]),
    "NLE with MAF": (
        "nle",
        [
            ("sbibm_nle_maf", True),
            ("sbibm_nle_maf_slcp", True),
            ("sbibm_nle_maf_glsir", True),
            ("sbibm_nle_maf_slcp10k", True),
            ("sbibm_nle_maf_tm10k", True),
        ],
    ),
    # `sbibm.py --flow affine_nsf`: NSF(affine=True), an affine map before each spline
    "NLE with NSF(affine=True)": (
        "nle",
        [("sbibm_nle_affine_slcp", True), ("sbibm_nle_affine_slcp10k", True)],
    ),
    # NRE's default training changed the same way on 2026-12-05
    "NRE": (
        "nre",
        [
            ("sbibm_nre_b50p100", True),
            ("sbibm_nre_b50p100_tm10k", True),
            ("sbibm_nre_b50p100_gl1k", True),
            ("sbibm_nre_b50p100_gl", True),
            ("sbibm_nre_b50p100_slcp", True),
            ("sbibm_nre_b50p100_slcp10k", True),
            ("sbibm_nre_b50p100_sir", True),
            ("sbibm_nre_b50p100_lv", True),
        ],
    ),
    "NRE with an ensemble of 3 classifiers (`ensemble_size=3`)": (
        "nre",
        [
            ("sbibm_nre_ens3_gl10k", True),
            ("sbibm_nre_ens3_1k", True),
            ("sbibm_nre_ens3_1k_others", True),
        ],
    ),
    "NRE with a moving average of the parameters (`ema_decay=0.999`)": (
        "nre",
        [("sbibm_nre_ema_gl10k", True)],
    ),
    "SNRE with an ensemble of 3 classifiers (`ensemble_size=3`)": (
        "snre",
        [("sbibm_snre_ens3_gl10k", True)],
    ),
    "NRE, previous default (batch 200, patience 20)": (
        "nre",
        [
            ("sbibm_nre_seeds", True),
            ("sbibm_nre_seeds_slcp", True),
            ("sbibm_nre_gl", True),
            ("sbibm_nre_sir", True),
            ("sbibm_nre_lv", True),
        ],
    ),
    "SNPE (TSNPE)": (
        "snpe",
        [
            ("sbibm_snpe_b50p100", True),
            ("sbibm_snpe_b50p100_tm10k", True),
            ("sbibm_snpe_b50p100_gl", True),
            ("sbibm_snpe_b50p100_slcp", True),
            ("sbibm_snpe_b50p100_sir", True),
            ("sbibm_snpe_b50p100_sir10k", True),
            ("sbibm_snpe_b50p100_slcp10k", True),
            ("sbibm_snpe_warm", False),
            ("sbibm_snpe_gl", False),
            ("sbibm_snpe_gl10k", False),
            ("sbibm_snpe_sir", False),
        ],
    ),
    "SNPE (TSNPE), NPE's previous training (batch 200, patience 20)": (
        "snpe",
        [
            ("sbibm_snpe_warm", True),
            ("sbibm_snpe_gl", True),
            ("sbibm_snpe_gl10k", True),
            ("sbibm_snpe_sir", True),
        ],
    ),
    # APT is sk.sequential's default for NPE since 2026-12-06 (TSNPE before); runs with NPE's
    # current training first, the older ones (batch 200, patience 20) fill the gaps, marked †
    "SNPE (APT, default)": (
        "snpe",
        [
            ("sbibm_snpe_apt_b50p100", True),
            ("sbibm_snpe_apt_b50p100_sir", True),
            ("sbibm_snpe_apt_b50p100_gl", True),
            ("sbibm_snpe_apt_b50p100_slcp", True),
            ("sbibm_snpe_apt_b50p100_lv", True),
            ("sbibm_snpe_apt_tm10k_now", True),
            ("sbibm_snpe_apt_gl10k_now", True),
            ("sbibm_snpe_apt_slcp10k_now", True),
            ("sbibm_snpe_apt_tm10k", False),
            ("sbibm_snpe_apt", False),
            ("sbibm_snpe_apt_slcp", False),
        ],
    ),
    "SNPE (APT), NPE's training with patience 20": (
        "snpe",
        [
            ("sbibm_snpe_apt_p20_tm10k", True),
            ("sbibm_snpe_apt_p20_gl10k", True),
            ("sbibm_snpe_apt_p20_slcp10k", True),
        ],
    ),
    # observations 1-5 of the default rerun with today's code, beside the same keys with a
    # shorter patience in the atomic rounds only (APT(training=...), 2026-12-07)
    "SNPE (APT, default), observations 1–5 rerun 2026-12-07": (
        "snpe",
        [("sbibm_snpe_apt_now", True), ("sbibm_snpe_apt_now_slcp", True)],
    ),
    "SNPE (APT), patience 50 from round 2 (`APT(training=...)`)": (
        "snpe",
        [("sbibm_snpe_apt_later50", True), ("sbibm_snpe_apt_later50_slcp", True)],
    ),
    "SNPE (APT), patience 20 from round 2 (`APT(training=...)`)": (
        "snpe",
        [("sbibm_snpe_apt_later20", True), ("sbibm_snpe_apt_later20_slcp", True)],
    ),
    # SNLE with NLE's BestOf default, chosen again every round, from round 2 by the held-out loss
    # of the previous round's networks on the new simulations (2026-12-07); the runs that chose
    # by the validation loss, then the NSF runs fill the gaps, marked †
    "SNLE": (
        "snle",
        [
            ("sbibm_snle_last_slcp", True),
            ("sbibm_snle_last_gl", True),
            ("sbibm_snle_last_lv", True),
            ("sbibm_snle_last_sir", True),
            ("sbibm_snle_last_tm", True),
            ("sbibm_snle_last_slcp10k", True),
            ("sbibm_snle_last_sir10k", True),
            ("sbibm_snle_last_lv10k", True),
            ("sbibm_snle_last_tm10k", True),
            ("sbibm_snle_last_gl10k", True),
        ]
        + [(name, False) for name, _ in _SNLE_CHOICE]
        + _SNLE_NSF_FILLS,
    ),
    "SNLE, chosen every round by the validation loss (earlier on 2026-12-07)": (
        "snle",
        _SNLE_CHOICE + _SNLE_NSF_FILLS,
    ),
    "SNLE, chosen from round 2 by the held-out loss summed over the rounds (not kept)": (
        "snle",
        [("sbibm_snle_preq_slcp", True)],
    ),
    "SNLE, BestOf chosen in round 1 only (2026-12-07, before the choice in every round)": (
        "snle",
        [("sbibm_snle_bestof_slcp", True)],
    ),
    "SNLE with NSF (`NSF()`, the default until 2026-12-07)": (
        "snle",
        [
            ("sbibm_snle_b50p100", True),
            ("sbibm_snle_b50p100_tm10k", True),
            ("sbibm_snle_b50p100_gl", True),
            ("sbibm_snle_b50p100_slcp", True),
            ("sbibm_snle_b50p100_gl10k", True),
            ("sbibm_snle_b50p100_sir", True),
            ("sbibm_snle_b50p100_lv", True),
            ("sbibm_snle_b50p100_slcp10k", True),
            ("sbibm_snle_slcp10k", True),
            ("sbibm_snle_warm", False),
            ("sbibm_snle_slcp", False),
            ("sbibm_snle_gl", False),
            ("sbibm_snle_sir", False),
        ],
    ),
    "SNLE, previous default (batch 200, patience 20)": (
        "snle",
        [
            ("sbibm_snle_warm", True),
            ("sbibm_snle_slcp", True),
            ("sbibm_snle_gl", True),
            ("sbibm_snle_sir", True),
        ],
    ),
    "SNLE with MAF": ("snle", [("sbibm_snle_maf_slcp", True)]),
    "SNRE": (
        "snre",
        [
            ("sbibm_snre_b50p100", True),
            ("sbibm_snre_b50p100_gl", True),
            ("sbibm_snre_b50p100_slcp", True),
            ("sbibm_snre_b50p100_sir", True),
            ("sbibm_snre_b50p100_gl10k", True),
            ("sbibm_snre_b50p100_tm10k", True),
            ("sbibm_snre_b50p100_sir10k", True),
            ("sbibm_snre_b50p100_lv", True),
            ("sbibm_snre_b50p100_slcp10k", True),
            ("sbibm_snre_b50p100_lv10k", True),
            ("sbibm_snre_warm", False),
            ("sbibm_snre_gl", False),
            ("sbibm_snre_sir", False),
        ],
    ),
    "SNRE, previous default (batch 200, patience 20)": (
        "snre",
        [("sbibm_snre_warm", True), ("sbibm_snre_gl", True), ("sbibm_snre_sir", True)],
    ),
    "NPSE": ("npse", [("sbibm_npse", True), ("sbibm_npse_glslcp", True)]),
    "FMPE": ("fmpe", [("sbibm_fmpe", True), ("sbibm_fmpe_slcp", True)]),
    # `sbibm.py --batch-size 50` (NPE's default batch size; 2026-12-06): not the default yet
    "NPSE, batch 50": ("npse", [("sbibm_npse_b50_tm", True)]),
    "FMPE, batch 50": ("fmpe", [("sbibm_fmpe_b50_tm", True)]),
}


def collect() -> list[dict]:
    """One row per (method, task, budget) found in the listed files (each file read once)."""
    stems = {stem for _, sources in SOURCES.values() for stem, _ in sources}
    files = {stem: read_json(RESULTS_DIR / f"{stem}.json") or {} for stem in stems}
    rows = []
    for name, (method, sources) in SOURCES.items():
        for task in TASKS:
            for n in BUDGETS:
                for stem, current in sources:
                    data = files[stem]
                    found = [
                        s
                        for s in data.get("summary", [])
                        if s["task"] == task and s["num_simulations"] == n
                    ]
                    if not found:
                        continue
                    s = found[0]
                    seeds = {
                        r.get("seed", 0)
                        for r in data.get("runs", {}).values()
                        if r.get("task") == task and r.get("num_simulations") == n
                    } or {0}
                    reference = published(task, method, n)
                    rows.append(
                        {
                            "method": name,
                            "task": task,
                            "num_simulations": n,
                            "c2st_mean": s["c2st_mean"],
                            "seconds_mean": s.get("seconds_mean"),
                            "num_c2st": s["num_c2st"],
                            "num_seeds": len(seeds),
                            "sbibm": reference,
                            "met": None if reference is None else s["c2st_mean"] <= reference,
                            "file": f"{stem}.md",
                            "current_defaults": current,
                        }
                    )
                    break
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        "# sbibm: every method beside sbibm's published C2ST",
        "",
        "Collected by `benchmarks/sbibm_summary.py` from the result files of "
        "`benchmarks/sbibm.py` (and `sbibm_npe.py`); nothing is recomputed. C2ST: mean over "
        "observations 1–10 (fewer where the count says so) and over seeds, 0.5 is ideal. "
        "✔: at or below sbibm's published mean for the same method and budget; ✗: above. "
        "NPSE and FMPE are compared with sbibm's NPE. † a run with an earlier default or other "
        "settings (no run with the current defaults yet). The counts are C2STs "
        "(observations × seeds).",
        "",
    ]
    by_cell = {(r["method"], r["task"], r["num_simulations"]): r for r in rows}
    for task in TASKS:
        body = []
        for name in SOURCES:
            cells = []
            for n in BUDGETS:
                r = by_cell.get((name, task, n))
                if r is None:
                    cells += ["–", "–"]
                    continue
                mark = "" if r["met"] is None else (" ✔" if r["met"] else " ✗")
                dagger = "" if r["current_defaults"] else " †"
                seeds = f", {r['num_seeds']} seeds" if r["num_seeds"] > 1 else ""
                cells.append(
                    f"{fmt(r['c2st_mean'])}{mark}{dagger} ({r['num_c2st']}{seeds}; `{r['file']}`)"
                )
                cells.append(fmt(r["sbibm"], 2))
            if any(c != "–" for c in cells):
                body.append([name, *cells])
        if body:
            head = ["method", "10³: C2ST", "sbibm 10³", "10⁴: C2ST", "sbibm 10⁴"]
            lines += [f"## {task}", "", table(head, body), ""]
    return "\n".join(lines)


# each method's row with its defaults, for the table of defaults (docs/choosing.md shows it)
DEFAULT_ROWS = {
    "NPE": "NPE",
    "NLE": "NLE",
    "NRE": "NRE",
    "SNPE (APT, default)": "SNPE",
    "SNLE": "SNLE",
    "SNRE": "SNRE",
    "NPSE": "NPSE",
    "FMPE": "FMPE",
}


def defaults_markdown(rows: list[dict]) -> str:
    """One compact table: every method at its defaults, a row per task and budget."""
    by_cell = {(r["method"], r["task"], r["num_simulations"]): r for r in rows}
    body = []
    for task in TASKS:
        for n in BUDGETS:
            found = {short: by_cell.get((name, task, n)) for name, short in DEFAULT_ROWS.items()}
            # bold: the lowest among full runs (10 C2STs or more) with the current defaults
            full = [
                r for r in found.values() if r and r["current_defaults"] and r["num_c2st"] >= 10
            ]
            best = min((r["c2st_mean"] for r in full), default=None)
            cells = []
            for r in found.values():
                if r is None:
                    cells.append("–")
                    continue
                value = fmt(r["c2st_mean"])
                if r in full and r["c2st_mean"] == best:
                    value = f"**{value}**"
                partial = "" if r["num_c2st"] >= 10 else f" ({r['num_c2st']} obs.)"
                mark = "" if r["met"] is None else (" ✔" if r["met"] else " ✗")
                dagger = "" if r["current_defaults"] else " †"
                seconds = r.get("seconds_mean")
                cost = "" if seconds is None else f" · {seconds:.0f} s"
                cells.append(f"{value}{mark}{dagger}{partial}{cost}")
            body.append([task, f"{n:,}", *cells])
    return "\n".join(
        [
            "Every method at its defaults on the sbibm tasks (collected by "
            "`benchmarks/sbibm_summary.py`; `benchmarks/results/sbibm_summary.md` has every "
            "variant, the published numbers, the counts and the files). Each cell: mean C2ST "
            "over observations 1–10 and the seeds run (fewer where a count is given; 0.5 is "
            "ideal; bold: the lowest full run in the row), ✔ / ✗ at or below / above sbibm's "
            "published mean for the same method and budget (NPSE and FMPE against sbibm's "
            "NPE), † from a run with an earlier default, "
            "then the mean seconds per posterior as the file records them (amortised methods: "
            "their training plus one observation's sampling; sequential ones: the whole run for "
            "one observation; 2-core CPU machines, mostly one core per run and often beside "
            "another job: a rough guide to cost; each file names its machine and date).",
            "",
            table(["task", "simulations", *DEFAULT_ROWS.values()], body),
            "",
        ]
    )


def main() -> None:
    rows = collect()
    write_json(RESULTS_DIR / "sbibm_summary.json", {"benchmark": "sbibm_summary", "rows": rows})
    write_markdown(RESULTS_DIR / "sbibm_summary.md", markdown(rows))
    write_markdown(RESULTS_DIR / "sbibm_defaults.md", defaults_markdown(rows))
    print(f"wrote {RESULTS_DIR / 'sbibm_summary.md'} and {RESULTS_DIR / 'sbibm_defaults.md'}")


if __name__ == "__main__":
    main()
