"""RMSE of MMD² estimators where the true value is 0 (Bharti et al., ICML 2023, Table 1 set-up).

For each simulator, ``repeats`` times: draw n = 10,000 "observed" points y ~ P_θ and m = 256
simulated points x_i = G_θ(u_i) ~ P_θ, and estimate MMD²(P_θ, P_θ) = 0 with the V-statistic, the
U-statistic and the optimally-weighted estimator (weights from ``optimal_weights(u)``). The
kernel on x is Gaussian with the median-heuristic lengthscale on y; the kernel on the base
space is Gaussian with the median heuristic on u; nugget 1e-8. Everything runs in float64.

Writes ``benchmarks/results/mmd_estimators.{json,md}``.

    python benchmarks/mmd_estimators.py [--repeats 100]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)  # this script only; the library never sets it

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import sbi_kit as sk  # noqa: E402
from sbi_kit.simulators import (  # noqa: E402
    bivariate_beta,
    g_and_k,
    ma2,
    two_moons_base_space,
)

D = sk.diagnostics
RESULTS = Path(__file__).parent / "results"

# (simulator, θ, note); θ as in the paper's benchmarking notebook
SETUPS = [
    (g_and_k(), [3.0, 1.0, 0.1, 0.1], "θ = (A, B, g, k) = (3, 1, 0.1, 0.1), d_u = 1"),
    (two_moons_base_space(), [0.5, 0.5], "θ = (0.5, 0.5), d_u = 2 (sbibm geometry, see notes)"),
    (ma2(10), [0.6, 0.2], "θ = (0.6, 0.2), 10 time steps, d_u = 12"),
    (bivariate_beta(), [1.0, 1.0, 1.0, 1.0, 1.0], "θ = (1, 1, 1, 1, 1), d_u = 5"),
]
# U-statistic / weighted RMSE ratios found by an independent re-run (shared/REFERENCES.md)
LITERATURE_U_OVER_W = {
    "g-and-k": "≈ 2.5",
    "two moons": "≈ 38",
    "MA(2)": "≈ 1.4–1.8",
    "bivariate beta": "≈ 1.4–1.8",
}


def run(sim, theta, repeats: int, m: int, n: int, seed: int) -> dict:
    theta = jnp.asarray(theta, dtype=jnp.float64)
    sample = eqx.filter_jit(lambda key, num: sim.sample(key, theta, num))
    values = {"V": [], "U": [], "weighted": []}
    start = time.perf_counter()
    for r in range(repeats):
        key_y, key_x = jax.random.split(jax.random.fold_in(jax.random.key(seed), r))
        _, y = sample(key_y, n)
        u, x = sample(key_x, m)
        kernel = D.GaussianKernel(D.median_heuristic(y))
        w = D.optimal_weights(u, base=sim.base)
        values["V"].append(float(D.mmd(x, y, kernel=kernel, estimator=D.VStatistic())))
        values["U"].append(float(D.mmd(x, y, kernel=kernel, estimator=D.UStatistic())))
        # the weighted estimator with the U-statistic's y–y term
        values["weighted"].append(
            float(D.mmd(x, y, kernel=kernel, estimator=D.UStatistic(), weights=w))
        )
    seconds = time.perf_counter() - start
    out = {"seconds": seconds}
    for name, v in values.items():
        v = np.asarray(v)
        out[name] = {
            "rmse": float(np.sqrt(np.mean(v**2))),
            "mean": float(v.mean()),
            "std": float(v.std(ddof=1)),
        }
    out["ratio_V_over_weighted"] = out["V"]["rmse"] / out["weighted"]["rmse"]
    out["ratio_U_over_weighted"] = out["U"]["rmse"] / out["weighted"]["rmse"]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--m", type=int, default=256)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--markdown-only",
        action="store_true",
        help="rewrite the .md from the saved .json without re-running",
    )
    args = parser.parse_args()
    if args.markdown_only:
        saved = json.loads((RESULTS / "mmd_estimators.json").read_text())
        write_markdown(saved["meta"], saved["results"], saved["goals"])
        return

    rows = {}
    for sim, theta, note in SETUPS:
        res = run(sim, theta, args.repeats, args.m, args.n, args.seed)
        res["setup"] = note
        rows[sim.name] = res
        print(
            f"{sim.name:15s} RMSE×1e3  V {res['V']['rmse'] * 1e3:.4f}  U "
            f"{res['U']['rmse'] * 1e3:.4f}  weighted {res['weighted']['rmse'] * 1e3:.4f}  "
            f"(V/W {res['ratio_V_over_weighted']:.1f}, U/W {res['ratio_U_over_weighted']:.1f}, "
            f"{res['seconds']:.0f} s)",
            flush=True,
        )
    goals = {
        name: {
            "weighted ≤ V/4": rows[name]["ratio_V_over_weighted"] >= 4.0,
            "weighted ≤ U/2": rows[name]["ratio_U_over_weighted"] >= 2.0,
        }
        for name in ("g-and-k", "two moons")
    }
    meta = {
        "benchmark": "mmd_estimators",
        "m": args.m,
        "n": args.n,
        "repeats": args.repeats,
        "seed": args.seed,
        "true_value": 0.0,
        "kernel": "Gaussian on x, lengthscale = median heuristic on y (1,000 evenly spaced rows)",
        "base_kernel": "Gaussian on u, lengthscale = median heuristic on u; nugget 1e-8; "
        "Cholesky in float64",
        "weighted_yy_term": "U-statistic",
        "dtype": "float64",
        "sbi_kit": sk.__version__,
        "jax": jax.__version__,
        "machine": f"{platform.machine()} {platform.processor()} "
        f"({jax.device_count()} {jax.default_backend()} device)",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "mmd_estimators.json").write_text(
        json.dumps({"meta": meta, "results": rows, "goals": goals}, indent=2)
    )
    write_markdown(meta, rows, goals)


def write_markdown(meta: dict, rows: dict, goals: dict) -> None:
    lines = [
        "# MMD² estimators: RMSE when the true value is 0",
        "",
        f"Set-up of Bharti et al. (ICML 2023, Table 1): m = {meta['m']} simulated points, "
        f"n = {meta['n']:,} observed points from the same P_θ, {meta['repeats']} repeats, "
        "float64. "
        "Kernel: Gaussian, median heuristic on y; base-space kernel: Gaussian, median heuristic "
        "on u, nugget 1e-8. Produced by `python benchmarks/mmd_estimators.py`.",
        "",
        "| simulator | set-up | RMSE V (×10⁻³) | RMSE U (×10⁻³) | RMSE weighted (×10⁻³) "
        "| V / weighted | U / weighted | U / weighted, independent re-run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, res in rows.items():
        lines.append(
            f"| {name} | {res['setup']} | {res['V']['rmse'] * 1e3:.4f} | "
            f"{res['U']['rmse'] * 1e3:.4f} | {res['weighted']['rmse'] * 1e3:.4f} | "
            f"{res['ratio_V_over_weighted']:.1f} | {res['ratio_U_over_weighted']:.1f} | "
            f"{LITERATURE_U_OVER_W.get(name, '')} |"
        )
    lines += [
        "",
        "Goal (issue #3): weighted RMSE ≤ 1/4 of V's and ≤ 1/2 of U's on g-and-k and two moons.",
        "",
    ]
    for name, g in goals.items():
        status = ", ".join(f"{k}: {'met' if ok else 'NOT met'}" for k, ok in g.items())
        lines.append(f"- {name}: {status}")
    lines += [
        "",
        "Notes:",
        "- Mean ± std over repeats (bias shows in the mean): "
        + "; ".join(
            f"{name}: V {r['V']['mean'] * 1e3:.3f} ± {r['V']['std'] * 1e3:.3f}, "
            f"U {r['U']['mean'] * 1e3:.3f} ± {r['U']['std'] * 1e3:.3f}, "
            f"weighted {r['weighted']['mean'] * 1e3:.3f} ± {r['weighted']['std'] * 1e3:.3f} (×10⁻³)"
            for name, r in rows.items()
        ),
        "- Two moons uses sbibm's geometry (x = (r cos a + 0.25, r sin a) + shift, "
        "r = 0.1 + 0.01 Φ⁻¹(u₂)), the project's task definition; the paper's notebook uses "
        "Wiqvist et al.'s variant (radius 1). MA(2) and bivariate beta are written on a uniform "
        "base space as in the paper (bivariate beta through the Gamma quantile function).",
        "- The weighted estimator's y–y term is the U-statistic (unbiased; the paper's code uses "
        "the V-statistic, whose O(1/n) bias is ~5·10⁻⁵ here).",
        "- The weights are solved by Cholesky (with jitter) in float64. The paper's notebook "
        "output for g-and-k shows a weighted estimate of 0.46 ± 0.24 (×10⁻³), about 9× our RMSE, "
        "and an independent re-run found U/weighted ≈ 2.5; we have not found the cause. It is "
        "not the solver: weights from `np.linalg.inv(C + δI) z` (as in the paper's code) gave "
        "the same RMSE as ours to 3 digits on 20 g-and-k repeats. MA(2) (d_u = 12) and "
        "bivariate beta (d_u = 5) show a positive bias of the weighted estimator (mean ≫ std "
        "error), which limits its gain there.",
        "- Wall time: "
        + ", ".join(f"{name} {r['seconds']:.0f} s" for name, r in rows.items())
        + f" on {meta['machine']}.",
    ]
    (RESULTS / "mmd_estimators.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
