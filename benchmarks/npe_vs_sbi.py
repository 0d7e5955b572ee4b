"""sbi_kit NPE against the `sbi` package's NPE (PyTorch, CPU) on the same simulations.

For each task and seed, one set of simulations is drawn with ``sk.simulate`` and handed to both
libraries (as JAX and as torch float32 arrays). Both train a neural spline flow with the same
optimiser settings (Adam, lr 5e-4, batch 200, 10 % validation, patience 20, gradient clipping
5.0, at most 1000 epochs). Reported per library: wall-clock training time (sbi_kit including
JIT compilation, and separately the compile time reported by ``jax.monitoring``), epochs, the
per-epoch time, the mean held-out log q(θ|x) on fresh simulations, the time to draw 10,000
samples, and C2ST against the task's reference posterior for each observation.

Flows (closest settings each library offers; they are not the same architecture):

* sbi_kit: ``sk.estimators.NSF(knot_temperature=sqrt(50))`` — 5 masked-autoregressive
  rational-quadratic spline layers (flowjax), conditioner MLP 2 x 50, 10 knots on [-5, 5], bin
  widths and heights ``softmax(u / sqrt(50))`` as in nflows; by default trained on z-scored θ
  with draws outside the prior's support rejected (``sk.inference.Rejection()``, sbi's handling
  of bounded priors). ``--support bijection`` trains on unconstrained parameters instead, and
  ``--knot-temperature 1`` gives flowjax's splines unchanged.
* sbi: ``posterior_nn(model="nsf", hidden_features=50, num_transforms=5, num_bins=10)`` —
  5 rational-quadratic *coupling* layers (nflows) with a residual-net conditioner (2 blocks of
  width 50) and an LU-linear layer after each, tails at ±3; samples outside the prior's support
  are rejected. ``--sbi-model maf_rqs`` picks sbi's masked-autoregressive spline flow instead.

Run from the repository root, in the benchmark environment (see benchmarks/README.md)::

    python benchmarks/npe_vs_sbi.py                              # the full benchmark
    python benchmarks/npe_vs_sbi.py --tasks two_moons --simulations 2000 --observations 1 \
        --out /tmp/npe_vs_sbi_quick                              # a quick check

Results go to ``benchmarks/results/npe_vs_sbi.{json,md}``; finished (task, seed, library) runs
found there are kept and skipped unless ``--fresh`` is given.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _jax_compile_time import CompileTimer  # noqa: E402
from _report import (  # noqa: E402
    RESULTS_DIR,
    add_c2st_and_resume_arguments,
    fmt,
    machine,
    parse_int_list,
    read_json,
    table,
    versions,
    write_json,
    write_markdown,
)

NAME = "npe_vs_sbi"
LIBRARIES = ("sbi_kit", "sbi")
FLOW = {"layers": 5, "hidden_features": 50, "hidden_layers": 2, "knots": 10}
TRAINING = {
    "batch_size": 200,
    "learning_rate": 5e-4,
    "validation_fraction": 0.1,
    "patience": 20,
    "clip_norm": 5.0,
}
NUM_HELDOUT = 1_000


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--tasks",
        default="two_moons,gaussian_linear,slcp",
        help="comma-separated task names (default: %(default)s)",
    )
    p.add_argument(
        "--simulations",
        type=int,
        default=10_000,
        help="training simulations per task (default: %(default)s)",
    )
    p.add_argument(
        "--observations",
        default="1-10",
        help="observation indices for C2ST, e.g. 1-10 or 1,3 (default: %(default)s)",
    )
    p.add_argument("--seeds", default="0", help="seeds, e.g. 0-2 (default: %(default)s)")
    p.add_argument(
        "--num-samples",
        type=int,
        default=10_000,
        help="posterior samples per observation (default: %(default)s)",
    )
    p.add_argument(
        "--max-epochs",
        type=int,
        default=1000,
        help="epoch cap for both libraries (default: %(default)s)",
    )
    p.add_argument(
        "--threads",
        default="auto",
        help="torch intra-op threads: a number, or 'auto' to time a short probe with "
        "all cores and with 1 thread and train with the faster (default: auto)",
    )
    p.add_argument(
        "--sbi-model", default="nsf", help="sbi posterior_nn model name (default: %(default)s)"
    )
    p.add_argument(
        "--libraries",
        default=",".join(LIBRARIES),
        help="which libraries to run (default: %(default)s)",
    )
    p.add_argument(
        "--c2st-observations",
        default=None,
        help="the observations that get a C2ST (default: all of --observations); C2ST of a "
        "10-d posterior takes minutes, the mean reference log-density is computed for all",
    )
    p.add_argument("--no-c2st", action="store_true", help="skip C2ST (timing only)")
    p.add_argument(
        "--support",
        choices=("rejection", "bijection"),
        default="rejection",
        help="sbi_kit's bounded-prior handling (default: %(default)s, as sbi does)",
    )
    p.add_argument(
        "--knot-temperature",
        type=float,
        default=math.sqrt(FLOW["hidden_features"]),
        help="sbi_kit NSF knot_temperature (default: sqrt(hidden features), as nflows)",
    )
    add_c2st_and_resume_arguments(p)
    p.add_argument(
        "--out",
        type=Path,
        default=RESULTS_DIR / NAME,
        help="output path without suffix (default: benchmarks/results/npe_vs_sbi)",
    )
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- priors


def torch_prior(prior):
    """The torch distribution for a numpyro prior (the kinds the sbibm tasks use)."""
    import numpyro.distributions as dist
    import torch
    from sbi.utils import BoxUniform

    base = prior.base_dist if isinstance(prior, dist.Independent) else prior
    shape = prior.event_shape

    def t(a):
        return torch.as_tensor(np.broadcast_to(np.asarray(a), shape).copy(), dtype=torch.float32)

    if isinstance(base, dist.Uniform):
        return BoxUniform(t(base.low), t(base.high))
    if isinstance(base, dist.Normal):
        return torch.distributions.MultivariateNormal(t(base.loc), torch.diag(t(base.scale) ** 2))
    if isinstance(base, dist.MultivariateNormal):
        return torch.distributions.MultivariateNormal(
            torch.as_tensor(np.asarray(base.loc), dtype=torch.float32),
            covariance_matrix=torch.as_tensor(
                np.asarray(base.covariance_matrix), dtype=torch.float32
            ),
        )
    raise NotImplementedError(f"no torch counterpart for the prior {prior!r}")


# ----------------------------------------------------------------------------- libraries


def run_sbi_kit(args, task, theta, x, theta_test, x_test, seed, observations):
    import equinox as eqx
    import jax

    import sbi_kit as sk

    npe = sk.NPE(
        flow=sk.estimators.NSF(
            layers=FLOW["layers"],
            width=FLOW["hidden_features"],
            depth=FLOW["hidden_layers"],
            knots=FLOW["knots"],
            knot_temperature=args.knot_temperature,
        ),
        support=sk.inference.Rejection()
        if args.support == "rejection"
        else sk.inference.Bijection(),
        training=sk.Training(
            learning_rate=TRAINING["learning_rate"],
            batch_size=TRAINING["batch_size"],
            max_epochs=args.max_epochs,
            patience=TRAINING["patience"],
            validation_fraction=TRAINING["validation_fraction"],
            clip_norm=TRAINING["clip_norm"],
        ),
        ensemble_size=1,
    )
    key_fit, key_sample = jax.random.split(jax.random.key(10_000 + seed))
    load_before = os.getloadavg()[0]
    with CompileTimer() as ct:
        start = time.perf_counter()
        posterior = npe.fit(key_fit, theta, x, prior=task.prior, progress=False)
        jax.block_until_ready(eqx.filter(posterior, eqx.is_array))
        train_s = time.perf_counter() - start
    load_after = os.getloadavg()[0]
    hist = posterior.history
    epochs = len(hist.train_loss)

    log_prob = eqx.filter_jit(jax.vmap(lambda t, xo: posterior.log_prob(t, xo)))
    heldout = float(np.mean(np.asarray(log_prob(theta_test, x_test))))

    samples, sample_s, ref_lp = {}, [], {}
    for i in observations:
        k = jax.random.fold_in(key_sample, i)
        start = time.perf_counter()
        s = np.asarray(posterior.sample(k, task.observation(i), args.num_samples))
        sample_s.append(time.perf_counter() - start)
        samples[i] = s
        lp = posterior.log_prob(task.reference_samples(i), task.observation(i))
        if args.support == "rejection":  # normalise over the support, as sbi's log_prob does
            lp = lp - np.log(
                posterior.acceptance_rate(jax.random.fold_in(k, 1), task.observation(i))
            )
        ref_lp[str(i)] = float(np.mean(np.asarray(lp)))
    compile_s = ct.seconds
    return {
        "train_seconds": train_s,
        "compile_seconds": compile_s,
        "compile_detail": ct.as_dict(),
        "train_seconds_excl_compile": train_s - compile_s,
        "epochs": epochs,
        "best_epoch": int(hist.best_epoch) + 1,
        "stop_reason": hist.stop_reason,
        "seconds_per_epoch_excl_compile": (train_s - compile_s) / max(epochs, 1),
        "heldout_log_prob": heldout,
        "sample_seconds_first": sample_s[0] if sample_s else None,
        "sample_seconds_median": statistics.median(sample_s) if sample_s else None,
        "load_average": [load_before, load_after],
        "ref_log_prob": ref_lp,
    }, samples


def _sbi_inference(args, prior):
    from sbi.inference import NPE as SbiNPE
    from sbi.neural_nets import posterior_nn

    builder = posterior_nn(
        model=args.sbi_model,
        hidden_features=FLOW["hidden_features"],
        num_transforms=FLOW["layers"],
        num_bins=FLOW["knots"],
    )
    return SbiNPE(prior=prior, density_estimator=builder, device="cpu", show_progress_bars=False)


def choose_threads(args, prior, theta_t, x_t) -> tuple[int, dict]:
    """Torch threads for sbi: the given number, or the faster of all cores and 1 thread.

    On a busy machine torch's thread pool can be many times slower with all cores than with
    one (the threads wait for each other); the probe trains 3 epochs on 2,000 simulations with
    each setting and compares the mean time of epochs 2 and 3.
    """
    import torch

    if args.threads != "auto":
        return int(args.threads), {}
    probe = {}
    for threads in sorted({os.cpu_count() or 1, 1}, reverse=True):
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        inference = _sbi_inference(args, prior)
        inference.append_simulations(theta_t[:2000], x_t[:2000])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            inference.train(training_batch_size=TRAINING["batch_size"], max_num_epochs=3)
        probe[threads] = statistics.mean(inference.summary["epoch_durations_sec"][1:3])
    best = min(probe, key=probe.get)
    return best, {
        "seconds_per_probe_epoch": {str(k): v for k, v in probe.items()},
        "load_average": os.getloadavg()[0],
    }


def run_sbi(args, task, theta, x, theta_test, x_test, seed, observations):
    import torch

    prior = torch_prior(task.prior)
    theta_t = torch.as_tensor(np.array(theta), dtype=torch.float32)
    x_t = torch.as_tensor(np.array(x), dtype=torch.float32)
    threads, probe = choose_threads(args, prior, theta_t, x_t)
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    inference = _sbi_inference(args, prior)
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    inference.append_simulations(theta_t, x_t)
    estimator = inference.train(
        training_batch_size=TRAINING["batch_size"],
        learning_rate=TRAINING["learning_rate"],
        validation_fraction=TRAINING["validation_fraction"],
        stop_after_epochs=TRAINING["patience"],
        max_num_epochs=args.max_epochs,
        clip_max_norm=TRAINING["clip_norm"],
    )
    train_s = time.perf_counter() - start
    load_after = os.getloadavg()[0]
    summary = inference.summary
    epochs = int(summary["epochs_trained"][-1])
    val = list(summary["validation_loss"])
    best_epoch = int(np.argmin(val)) + 1 if val else None
    posterior = inference.build_posterior(estimator)

    estimator.eval()
    with torch.no_grad():
        lp = estimator.log_prob(
            torch.as_tensor(np.array(theta_test), dtype=torch.float32).unsqueeze(0),
            condition=torch.as_tensor(np.array(x_test), dtype=torch.float32),
        )
    heldout = float(lp.mean())

    samples, sample_s, ref_lp = {}, [], {}
    for i in observations:
        torch.manual_seed(10_000 * seed + i)
        x_o = torch.as_tensor(np.array(task.observation(i)), dtype=torch.float32)
        start = time.perf_counter()
        s = posterior.sample((args.num_samples,), x=x_o, show_progress_bars=False)
        sample_s.append(time.perf_counter() - start)
        samples[i] = s.numpy()
        ref = torch.as_tensor(np.array(task.reference_samples(i)), dtype=torch.float32)
        with torch.no_grad():
            lp = posterior.log_prob(ref, x=x_o, norm_posterior=True)
        ref_lp[str(i)] = float(lp.mean())
    durations = list(summary.get("epoch_durations_sec", []))
    return {
        "train_seconds": train_s,
        "compile_seconds": 0.0,
        "train_seconds_excl_compile": train_s,
        "epochs": epochs,
        "best_epoch": best_epoch,
        "stop_reason": "converged" if epochs < args.max_epochs else "max_epochs",
        "seconds_per_epoch_excl_compile": train_s / max(epochs, 1),
        "seconds_per_epoch_loop": statistics.mean(durations) if durations else None,
        "heldout_log_prob": heldout,
        "sample_seconds_first": sample_s[0] if sample_s else None,
        "sample_seconds_median": statistics.median(sample_s) if sample_s else None,
        "torch_threads": threads,
        "thread_probe": probe,
        "load_average": [load_before, load_after],
        "ref_log_prob": ref_lp,
    }, samples


RUNNERS = {"sbi_kit": run_sbi_kit, "sbi": run_sbi}


# ----------------------------------------------------------------------------- report


def summarise(results: dict) -> list[dict]:
    """One row per (task, simulations): means over seeds for each library."""
    groups: dict[tuple, dict] = {}
    for run in results["runs"].values():
        key = (run["task"], run["num_simulations"])
        groups.setdefault(key, {}).setdefault(run["library"], []).append(run)
    rows = []
    for (task, n), libs in sorted(groups.items()):
        row = {"task": task, "num_simulations": n}
        for lib, runs in libs.items():
            c2sts = [v for r in runs for v in r.get("c2st", {}).values()]
            row[lib] = {
                "seeds": sorted(r["seed"] for r in runs),
                "train_seconds": statistics.mean(r["train_seconds"] for r in runs),
                "train_seconds_excl_compile": statistics.mean(
                    r["train_seconds_excl_compile"] for r in runs
                ),
                "compile_seconds": statistics.mean(r["compile_seconds"] for r in runs),
                "epochs": statistics.mean(r["epochs"] for r in runs),
                "seconds_per_epoch": statistics.mean(
                    r["seconds_per_epoch_excl_compile"] for r in runs
                ),
                "heldout_log_prob": statistics.mean(r["heldout_log_prob"] for r in runs),
                "sample_seconds_median": statistics.mean(
                    r["sample_seconds_median"]
                    for r in runs
                    if r["sample_seconds_median"] is not None
                )
                if any(r["sample_seconds_median"] is not None for r in runs)
                else None,
                "load_average": statistics.mean(
                    statistics.mean(r.get("load_average") or [math.nan]) for r in runs
                ),
                "torch_threads": [r.get("torch_threads") for r in runs],
                "ref_log_prob": statistics.mean(
                    v for r in runs for v in r.get("ref_log_prob", {}).values()
                )
                if any(r.get("ref_log_prob") for r in runs)
                else None,
                "c2st_observations": sorted({int(i) for r in runs for i in r.get("c2st", {})}),
                "c2st_mean": statistics.mean(c2sts) if c2sts else None,
                "c2st_num": len(c2sts),
            }
        if "sbi_kit" in row and "sbi" in row:
            a, b = row["sbi_kit"], row["sbi"]
            row["speedup_train"] = b["train_seconds"] / a["train_seconds"]
            row["speedup_train_excl_compile"] = b["train_seconds"] / a["train_seconds_excl_compile"]
            row["speedup_per_epoch"] = b["seconds_per_epoch"] / a["seconds_per_epoch"]
        rows.append(row)
    return rows


def _ranges(values) -> str:
    """[1, 2, 3, 7] -> '1-3,7'."""
    values, parts = sorted(values), []
    for v in values:
        if parts and v == parts[-1][1] + 1:
            parts[-1][1] = v
        else:
            parts.append([v, v])
    return ",".join(f"{a}-{b}" if b > a else str(a) for a, b in parts) or "-"


def threads_text(results: dict) -> str:
    used = sorted(
        {r.get("torch_threads") for r in results["runs"].values() if r["library"] == "sbi"} - {None}
    )
    setting = results["settings"]["torch_threads"]
    how = (
        "the faster of all cores and 1 in a short probe before each sbi run"
        if setting == "auto"
        else f"fixed at {setting}"
    )
    return f"{how} (used: {', '.join(map(str, used)) or '-'})"


def markdown(results: dict) -> str:
    s = results["settings"]
    m = results["machine"]
    v = results["versions"]
    rows = results["summary"]
    lines = [
        "# NPE: sbi_kit vs sbi",
        "",
        f"Same simulations for both libraries; {m['cpu']} ({m['cpu_count']} cores), CPU only; "
        f"torch threads: {threads_text(results)}; JAX uses its default CPU thread pool. "
        f"sbi_kit {v.get('sbi_kit')}, jax {v.get('jax')}, flowjax {v.get('flowjax')}; "
        f"sbi {v.get('sbi')}, torch {v.get('torch')}. Measured {m['date']}.",
        "",
        f"Flow: sbi_kit NSF (5 MAF-RQS layers, MLP 2x50, 10 knots, knot temperature "
        f"{s.get('sbi_kit_knot_temperature', 1.0):.3g}; bounded priors: "
        f"{s.get('sbi_kit_support', 'bijection')}) vs sbi "
        f'`posterior_nn(model="{s["sbi_model"]}", hidden_features=50, num_transforms=5, '
        f"num_bins=10)`. Training: batch 200, lr 5e-4, validation 10 %, patience 20, clip 5.0, "
        f"max {s['max_epochs']} epochs. C2ST (sbibm's classifier) on {s['num_samples']:,} samples "
        f"against the 10,000 reference samples, for the observations listed per task (a 10-d "
        f"C2ST takes ~10 min here, so not every task has all ten); seeds {s['seeds']}.",
        "",
        "## Training time",
        "",
    ]
    head = [
        "task",
        "sims",
        "sbi_kit s (incl. compile)",
        "sbi_kit compile s",
        "sbi_kit s (excl. compile)",
        "sbi s",
        "ratio sbi/sbi_kit",
        "ratio excl. compile",
        "per-epoch ratio",
        "epochs sbi_kit",
        "epochs sbi",
        "load avg sbi_kit / sbi",
    ]
    body = []
    for r in rows:
        a, b = r.get("sbi_kit", {}), r.get("sbi", {})
        body.append(
            [
                r["task"],
                f"{r['num_simulations']:,}",
                fmt(a.get("train_seconds"), 1),
                fmt(a.get("compile_seconds"), 1),
                fmt(a.get("train_seconds_excl_compile"), 1),
                fmt(b.get("train_seconds"), 1),
                fmt(r.get("speedup_train"), 2),
                fmt(r.get("speedup_train_excl_compile"), 2),
                fmt(r.get("speedup_per_epoch"), 2),
                fmt(a.get("epochs"), 0),
                fmt(b.get("epochs"), 0),
                f"{fmt(a.get('load_average'), 1)} / {fmt(b.get('load_average'), 1)}",
            ]
        )
    lines += [table(head, body), ""]
    lines += [
        "Ratios > 1 mean sbi_kit is faster. 'excl. compile' subtracts the tracing, lowering and "
        "XLA compile time that jax.monitoring reports during sbi_kit's fit. Load avg: the "
        "1-minute load average of the machine around each training (other jobs shared the "
        f"{m['cpu_count']} cores; timings taken under load are noisy).",
        "",
        "## Accuracy",
        "",
    ]
    head = [
        "task",
        "sims",
        "C2ST sbi_kit",
        "C2ST sbi",
        "C2ST obs",
        "ref log q sbi_kit",
        "ref log q sbi",
        "held-out log q sbi_kit",
        "held-out log q sbi",
        "sample 10k s sbi_kit",
        "sample 10k s sbi",
    ]
    body = []
    for r in rows:
        a, b = r.get("sbi_kit", {}), r.get("sbi", {})
        body.append(
            [
                r["task"],
                f"{r['num_simulations']:,}",
                fmt(a.get("c2st_mean")),
                fmt(b.get("c2st_mean")),
                _ranges(a.get("c2st_observations") or b.get("c2st_observations") or []),
                fmt(a.get("ref_log_prob"), 3),
                fmt(b.get("ref_log_prob"), 3),
                fmt(a.get("heldout_log_prob"), 2),
                fmt(b.get("heldout_log_prob"), 2),
                fmt(a.get("sample_seconds_median"), 3),
                fmt(b.get("sample_seconds_median"), 3),
            ]
        )
    lines += [table(head, body), ""]
    lines += [
        "C2ST: 0.5 is ideal (mean over the observations listed, sbibm's classifier, 10,000 vs "
        "10,000). Ref log q: mean log q(θ|x_o) of the 10,000 reference samples, averaged over all "
        "observations; higher is better, and the difference between two estimators is the "
        "difference of their KL(reference || q) (sbi's value includes its prior-truncation "
        "normalisation). Held-out log q: mean log-density of the true θ on "
        f"{NUM_HELDOUT:,} fresh simulations (higher is better; sbi's value is its flow's density "
        "without the prior-truncation correction). Sampling time: median over observations "
        "(sbi_kit's first call also compiles).",
        "",
        "## Per observation",
        "",
    ]
    head = ["task", "sims", "seed", "library"] + [f"obs {i}" for i in s["observations"]]
    body = []
    for run in sorted(
        results["runs"].values(),
        key=lambda r: (r["task"], r["num_simulations"], r["seed"], r["library"]),
    ):
        c = run.get("c2st", {})
        body.append(
            [run["task"], f"{run['num_simulations']:,}", str(run["seed"]), run["library"]]
            + [fmt(c.get(str(i))) for i in s["observations"]]
        )
    lines += [table(head, body)]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main


def main(argv=None) -> None:
    args = parse_args(argv)
    import jax
    from threadpoolctl import threadpool_limits

    import sbi_kit as sk

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    observations = parse_int_list(args.observations)
    c2st_observations = (
        observations if args.c2st_observations is None else parse_int_list(args.c2st_observations)
    )
    seeds = parse_int_list(args.seeds)
    libraries = [lib.strip() for lib in args.libraries.split(",") if lib.strip()]
    json_path, md_path = args.out.with_suffix(".json"), args.out.with_suffix(".md")

    previous = None if args.fresh else read_json(json_path)
    settings = {
        "tasks": tasks,
        "num_simulations": args.simulations,
        "observations": observations,
        "c2st_observations": None if args.no_c2st else c2st_observations,
        "blas_threads_c2st": args.blas_threads,
        "seeds": seeds,
        "num_samples": args.num_samples,
        "max_epochs": args.max_epochs,
        "torch_threads": args.threads,
        "sbi_model": args.sbi_model,
        "flow": FLOW,
        "sbi_kit_support": args.support,
        "sbi_kit_knot_temperature": args.knot_temperature,
        "training": TRAINING,
        "num_heldout": NUM_HELDOUT,
    }
    results = {
        "benchmark": NAME,
        "machine": machine(),
        "versions": versions(
            [
                "sbi_kit",
                "jax",
                "jaxlib",
                "flowjax",
                "equinox",
                "optax",
                "sbi",
                "torch",
                "nflows",
                "scikit-learn",
            ]
        ),
        "settings": settings,
        "runs": {},
    }
    same = ("sbi_model", "sbi_kit_support", "sbi_kit_knot_temperature")
    if previous and all(previous.get("settings", {}).get(k) == settings[k] for k in same):
        results["runs"] = previous.get("runs", {})

    def save():
        results["summary"] = summarise(results)
        write_json(json_path, results)
        write_markdown(md_path, markdown(results))

    for task_name in tasks:
        task = sk.tasks.get(task_name)
        for seed in seeds:
            todo = []
            for lib in libraries:
                key = f"{task_name}/{args.simulations}/seed{seed}/{lib}"
                done = results["runs"].get(key)
                want = set() if args.no_c2st else {str(i) for i in c2st_observations}
                if done and want <= set(done.get("c2st", {})):
                    print(f"[skip] {key} (already on disk)", flush=True)
                    continue
                todo.append((lib, key))
            if not todo:
                continue
            sims = sk.simulate(jax.random.key(seed), task, args.simulations, progress=False)
            theta, x = np.asarray(sims.theta), np.asarray(sims.x)
            test = sk.simulate(jax.random.key(2**20 + seed), task, NUM_HELDOUT, progress=False)
            theta_test, x_test = np.asarray(test.theta), np.asarray(test.x)
            for lib, key in todo:
                print(f"[train] {key}", flush=True)
                run, samples = RUNNERS[lib](
                    args, task, theta, x, theta_test, x_test, seed, observations
                )
                run.update(
                    {
                        "task": task_name,
                        "num_simulations": args.simulations,
                        "num_dropped": sims.num_dropped,
                        "seed": seed,
                        "library": lib,
                        "c2st": {},
                    }
                )
                print(
                    f"  {lib}: {run['train_seconds']:.1f} s, {run['epochs']} epochs, "
                    f"compile {run['compile_seconds']:.1f} s, "
                    f"held-out log q {run['heldout_log_prob']:.3f}",
                    flush=True,
                )
                results["runs"][key] = run
                save()
                if args.no_c2st:
                    continue
                for i in c2st_observations:
                    start = time.perf_counter()
                    with threadpool_limits(limits=args.blas_threads):
                        value = sk.diagnostics.c2st(samples[i], task.reference_samples(i))
                    run["c2st"][str(i)] = value
                    print(
                        f"  obs {i}: C2ST {value:.3f} ({time.perf_counter() - start:.0f} s)",
                        flush=True,
                    )
                    save()
    save()
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
