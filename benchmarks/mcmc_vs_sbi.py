"""MCMC on a learned likelihood: sbi_kit's NUTS against the `sbi` package's samplers, one run.

For each task one set of simulations is handed to both libraries (as JAX and as torch float32
arrays); each trains its own NLE with its defaults (sbi_kit ``sk.NLE()``: a neural spline flow
and a masked autoregressive flow, keeping the lower validation loss, since 2026-12-07; a neural
spline flow before; sbi 0.27 ``NLE(prior)``: a masked autoregressive flow), and then draws
``--num-samples``
posterior samples for each observation:

* sbi_kit: ``posterior.sample(key, x_o, n)``, NUTS (numpyro) with the library defaults (20
  vectorised chains started by sampling-importance-resampling from 10,000 prior draws, 50
  warm-up steps, trees of depth ≤ 4, then 25 draws per chain and
  ``sk.mcmc.ChainMixtureResampling``: the samples resampled by importance weight through a
  Student-t mixture fitted to the chains); earlier defaults on the same trained posterior, as
  chosen by ``--sbi-kit-variants``: "sbi_kit NUTS depth 10" (200 warm-up steps, depth ≤ 10,
  50 draws per chain, resampled) and "sbi_kit NUTS pooled" (500 warm-up steps, depth ≤ 10,
  n / 20 draws per chain pooled, no resampling); the first observation's time includes
  compiling the sampler ("cold"), the others reuse it ("warm", the time any later call
  pays);
* sbi: ``build_posterior(mcmc_method=...)`` then ``posterior.sample((n,), x=x_o)``, for each
  method in ``--sbi-methods``: ``slice_np_vectorized`` (sbi's default: 20 chains, 200 warm-up
  steps, thinning 1, "resample" initialisation) and ``nuts_pyro`` (Pyro's NUTS through sbi;
  same chains and warm-up), on ``--pyro-observations`` only (minutes per call);
* sbi's samplers on sbi_kit's learned likelihood (``--sbi-on-ours``, default
  ``slice_np_vectorized``): sbi's ``MCMCPosterior`` with its defaults and its own transform of
  the prior, whose potential is sbi_kit's unnormalised log posterior (log prior + the NLE's
  log-likelihood, a jitted JAX call on each batch of chains). Both samplers then target the
  SAME density, so a C2ST difference between these rows and sbi_kit's is the samplers', not
  the networks'. The callback adds a host round-trip per call that sbi's own network does not
  pay, so these rows' seconds are for the C2ST comparison, not the speed ratio.

Wall time of the sampling call only (training is reported separately, not compared here: see
``npe_vs_sbi.py``), and C2ST (sbibm's classifier) of each library's samples against the task's
10,000 reference samples. Both libraries see the same machine: torch is limited to
``--torch-threads`` threads (default 1: 20 chains are too small a batch to gain from more;
JAX's CPU client uses about one core on these programs), the 1-minute load average is recorded
before and after each timed call, and a call whose load exceeds 1.2 × cores is repeated once.

Run from the repository root, in the benchmark environment (see benchmarks/README.md), on a
quiet machine::

    python benchmarks/mcmc_vs_sbi.py                                  # three tasks, obs 1-3
    python benchmarks/mcmc_vs_sbi.py --tasks gaussian_linear --simulations 2000 \\
        --observations 1 --num-samples 1000 --out /tmp/mcmc_vs_sbi_quick   # a quick check

Results go to ``benchmarks/results/mcmc_vs_sbi.{json,md}`` after every sampler; a rerun skips
the (task, observation, sampler) cells already there (``--fresh`` starts over). A task whose
cells are all present is not retrained.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

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
from npe_vs_sbi import load_threshold, timed_run, torch_prior  # noqa: E402

TASKS = ("gaussian_linear", "two_moons", "slcp")
SBI_METHODS = ("slice_np_vectorized", "nuts_pyro")
DEFAULT = "sbi_kit NUTS"
VARIANTS = {"depth10": "sbi_kit NUTS depth 10", "pooled": "sbi_kit NUTS pooled"}
"""sbi_kit's earlier defaults, timed on the same trained posterior (``--sbi-kit-variants``)."""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", default=",".join(TASKS), help="comma-separated task names")
    p.add_argument("--simulations", type=int, default=10_000, help="training simulations")
    p.add_argument("--observations", default="1-3", help="e.g. 1-3 (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of simulations and training")
    p.add_argument("--num-samples", type=int, default=10_000, help="posterior samples per call")
    p.add_argument(
        "--sbi-methods",
        default=",".join(SBI_METHODS),
        help="sbi's mcmc_method values to time (default: %(default)s)",
    )
    p.add_argument(
        "--pyro-observations",
        default="1",
        help="observations that nuts_pyro is timed on (minutes per call; default: %(default)s)",
    )
    p.add_argument(
        "--sbi-on-ours",
        default="slice_np_vectorized",
        help="sbi's mcmc_method values run on sbi_kit's learned likelihood ('' for none)",
    )
    p.add_argument(
        "--sbi-kit-variants",
        default=",".join(VARIANTS),
        help="earlier sbi_kit defaults to time as well (default: %(default)s; '' for none)",
    )
    p.add_argument("--torch-threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--retries", type=int, default=1, help="repeats of a call timed under load")
    p.add_argument("--max-wait", type=float, default=300.0, help="seconds to wait for quiet")
    add_c2st_and_resume_arguments(p)
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "mcmc_vs_sbi", help="path stem")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- the libraries


def train_sbi_kit(task, theta, x, seed: int):
    import jax

    import sbi_kit as sk

    start = time.perf_counter()
    posterior = sk.NLE().fit(jax.random.key(seed), theta, x, prior=task.prior, progress=False)
    return posterior, time.perf_counter() - start


def variant(posterior, name: str):
    """The posterior with an earlier default's MCMC settings: ``depth10`` (2026-12-05 a.m.:
    200 warm-up steps, NUTS depth ≤ 10, 50 draws per chain resampled) or ``pooled`` (before
    chain-mixture resampling: 500 warm-up steps, depth ≤ 10, the chains' draws pooled)."""
    from compositional import rebuilt

    import sbi_kit as sk

    configs = {
        "depth10": sk.mcmc.MCMCConfig(
            sampler=sk.mcmc.NUTS(),
            num_warmup=200,
            resampling=sk.mcmc.ChainMixtureResampling(draws_per_chain=50),
        ),
        "pooled": sk.mcmc.MCMCConfig(sampler=sk.mcmc.NUTS(), num_warmup=500, resampling=None),
    }
    return rebuilt(posterior, mcmc=configs[name])


def sample_sbi_kit(posterior, x_o, num_samples: int, seed: int, i: int):
    import jax

    samples, result = posterior.sample(
        jax.random.fold_in(jax.random.key(seed + 1), i), x_o, num_samples, return_diagnostics=True
    )
    samples = np.asarray(jax.block_until_ready(samples))
    extra = {"max_r_hat": result.max_r_hat, "min_ess": result.min_ess}
    if result.importance_ess is not None:
        extra["importance_ess"] = result.importance_ess
    return samples, extra


def train_sbi(task, theta, x, seed: int):
    import torch
    from sbi.inference import NLE

    torch.manual_seed(seed)
    inference = NLE(prior=torch_prior(task.prior), show_progress_bars=False)
    theta_t = torch.as_tensor(np.asarray(theta), dtype=torch.float32)
    x_t = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    start = time.perf_counter()
    inference.append_simulations(theta_t, x_t).train(show_train_summary=False)
    return inference, time.perf_counter() - start


def sample_sbi(inference, method: str, x_o, num_samples: int, seed: int, i: int):
    import torch

    torch.manual_seed(seed * 1000 + i)
    posterior = inference.build_posterior(mcmc_method=method)
    x_t = torch.as_tensor(np.asarray(x_o), dtype=torch.float32)
    samples = posterior.sample((num_samples,), x=x_t, show_progress_bars=False)
    return samples.numpy(), {}


ON_OURS = " on sbi_kit NLE"
"""Suffix of the rows where sbi's sampler runs on sbi_kit's learned likelihood."""


def sample_sbi_on_ours(posterior, task, method: str, x_o, num_samples: int, seed: int, i: int):
    """sbi's ``MCMCPosterior`` (``method``, sbi's defaults) on sbi_kit's log posterior."""
    import jax.numpy as jnp
    import torch
    from sbi.inference.posteriors import MCMCPosterior
    from sbi.utils import mcmc_transform

    x_j = jnp.asarray(x_o)

    def potential(theta, x):  # ``x`` is sbi's copy of x_o; ``x_j`` is the same observation
        del x
        lp = posterior.log_prob(jnp.asarray(theta.detach().cpu().numpy()), x_j)
        return torch.as_tensor(np.asarray(lp), dtype=torch.float32)

    prior_t = torch_prior(task.prior)
    torch.manual_seed(seed * 1000 + i)
    mcmc = MCMCPosterior(
        potential, proposal=prior_t, theta_transform=mcmc_transform(prior_t), method=method
    )
    x_t = torch.as_tensor(np.asarray(x_o), dtype=torch.float32)
    samples = mcmc.sample((num_samples,), x=x_t, show_progress_bars=False)
    return samples.numpy(), {}


# ----------------------------------------------------------------------------- results


def summarise(results: dict) -> list[dict]:
    """Per task and sampler: median sampling seconds (cold = first observation for sbi_kit),
    mean C2ST, and the ratio sbi / sbi_kit of median warm seconds."""
    rows = []
    for task, cells in sorted(results["tasks"].items()):
        ours = cells["samplers"].get(DEFAULT, {})
        ours_warm = [c["seconds"] for c in ours.values() if not c["cold"]]
        ours_all = [c["seconds"] for c in ours.values()]
        reference = statistics.median(ours_warm or ours_all) if ours_all else None
        for sampler, per_obs in cells["samplers"].items():
            seconds = [c["seconds"] for c in per_obs.values()]
            warm = [c["seconds"] for c in per_obs.values() if not c["cold"]]
            c2sts = [c["c2st"] for c in per_obs.values() if c.get("c2st") is not None]
            median = statistics.median(warm or seconds)
            rows.append(
                {
                    "task": task,
                    "sampler": sampler,
                    "observations": len(per_obs),
                    "seconds_median": median,
                    "seconds_cold": next(
                        (c["seconds"] for c in per_obs.values() if c["cold"]), None
                    ),
                    "c2st_mean": statistics.mean(c2sts) if c2sts else None,
                    "ratio_vs_sbi_kit": None if reference is None else median / reference,
                    "max_r_hat": max(
                        (c["max_r_hat"] for c in per_obs.values() if "max_r_hat" in c),
                        default=None,
                    ),
                    "min_importance_ess": min(
                        (c["importance_ess"] for c in per_obs.values() if "importance_ess" in c),
                        default=None,
                    ),
                    "load_ok": all(c["load"]["ok"] for c in per_obs.values()),
                }
            )
    return rows


def markdown(results: dict) -> str:
    s, m, v = results["settings"], results["machine"], results["versions"]
    lines = [
        "# MCMC on a learned likelihood: sbi_kit NUTS vs the `sbi` package",
        "",
        f"sbi_kit {v.get('sbi_kit')} (jax {v.get('jax')}, numpyro {v.get('numpyro')}) vs sbi "
        f"{v.get('sbi')} (torch {v.get('torch')}, {s['torch_threads']} thread(s)); "
        f"{m['cpu']} ({m['cpu_count']} cores), CPU. Measured {m['date']}. Each library trained "
        f"its own default NLE on the same {s['simulations']:,} simulations (seed {s['seed']}); "
        f"rows ending in '{ON_OURS}' run sbi's sampler on sbi_kit's learned likelihood (the "
        "same density as sbi_kit's rows: their C2ST difference is the samplers'); "
        f"{s['num_samples']:,} posterior samples per observation {s['observations']}; C2ST "
        "against the task's 10,000 reference samples (0.5 is ideal).",
        "",
        "Seconds: the median over observations of the sampling call (sbi_kit: warm calls, "
        "after the first observation compiled the sampler; its cold first call is in its own "
        "column). Ratio: sampler's median seconds / sbi_kit's (above 1: sbi_kit faster).",
        "",
    ]
    head = ["task", "sampler", "obs", "seconds (median)", "first call", "ratio to sbi_kit"]
    head += ["C2ST mean", "max R̂", "min importance ESS", "load ok"]
    body = [
        [
            r["task"],
            r["sampler"],
            str(r["observations"]),
            fmt(r["seconds_median"], 2),
            fmt(r["seconds_cold"], 2) if r["seconds_cold"] is not None else "",
            fmt(r["ratio_vs_sbi_kit"], 1),
            fmt(r["c2st_mean"]),
            fmt(r["max_r_hat"], 3) if r["max_r_hat"] is not None else "",
            fmt(r.get("min_importance_ess"), 0) if r.get("min_importance_ess") else "",
            "yes" if r["load_ok"] else "**no**",
        ]
        for r in results["summary"]
    ]
    lines += [table(head, body), "", "## Training (not compared here)", ""]
    body = [
        [
            task,
            fmt(c["train_seconds"].get("sbi_kit"), 1),
            c.get("sbi_kit_flow", "(not recorded)"),
            fmt(c["train_seconds"].get("sbi"), 1),
        ]
        for task, c in sorted(results["tasks"].items())
    ]
    head = ["task", "sbi_kit NLE s", "sbi_kit flow", "sbi NLE s"]
    lines += [table(head, body), "", "## Per observation", ""]
    body = []
    for task, c in sorted(results["tasks"].items()):
        for sampler, per_obs in c["samplers"].items():
            for i, cell in sorted(per_obs.items(), key=lambda kv: int(kv[0])):
                body.append(
                    [task, sampler, i, fmt(cell["seconds"], 2), fmt(cell.get("c2st"))]
                    + [f"{cell['load']['before']:.2f} → {cell['load']['after']:.2f}"]
                )
    lines += [table(["task", "sampler", "obs", "seconds", "C2ST", "load"], body)]
    return "\n".join(lines)


def _complete(done: dict, rows: list[str], observations, pyro_observations) -> bool:
    """Every cell of these sampler rows is recorded in ``done`` (one task's samplers); Pyro's
    NUTS row has cells for ``pyro_observations`` only."""
    return all(
        str(i) in done.get(s, {})
        for s in rows
        for i in (pyro_observations if s == "sbi nuts_pyro" else observations)
    )


def _timed(call, *args):
    """``(call(*args), seconds)``."""
    start = time.perf_counter()
    out = call(*args)
    return out, time.perf_counter() - start


def main(argv=None) -> None:
    args = parse_args(argv)
    import jax
    import torch
    from threadpoolctl import threadpool_limits

    import sbi_kit as sk

    torch.set_num_threads(args.torch_threads)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    observations = parse_int_list(args.observations)
    pyro_observations = [i for i in parse_int_list(args.pyro_observations) if i in observations]
    sbi_methods = [m.strip() for m in args.sbi_methods.split(",") if m.strip()]
    on_ours = [m.strip() for m in args.sbi_on_ours.split(",") if m.strip()]
    variants = [v.strip() for v in args.sbi_kit_variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"--sbi-kit-variants: unknown {unknown}; choose from {list(VARIANTS)}")
    json_path, md_path = args.out.with_suffix(".json"), args.out.with_suffix(".md")
    settings = {
        "tasks": tasks,
        "simulations": args.simulations,
        "observations": observations,
        "seed": args.seed,
        "num_samples": args.num_samples,
        "sbi_methods": sbi_methods,
        "sbi_on_ours": on_ours,
        "pyro_observations": pyro_observations,
        "torch_threads": args.torch_threads,
        "load_threshold": load_threshold(),
    }
    results = {
        "benchmark": "mcmc_vs_sbi",
        "machine": machine(),
        "versions": versions(["sbi_kit", "jax", "jaxlib", "numpyro", "flowjax", "sbi", "torch"]),
        "settings": settings,
        "tasks": {},
    }
    previous = None if args.fresh else read_json(json_path)
    same = ("simulations", "seed", "num_samples", "torch_threads")
    if previous and all(previous["settings"].get(k) == settings[k] for k in same):
        results["tasks"] = previous["tasks"]

    def save():
        results["summary"] = summarise(results)
        write_json(json_path, results)
        write_markdown(md_path, markdown(results))

    samplers = [DEFAULT, *(VARIANTS[v] for v in variants)] + [f"sbi {m}" for m in sbi_methods]
    samplers += [f"sbi {m}{ON_OURS}" for m in on_ours]
    theirs_rows = [f"sbi {m}" for m in sbi_methods]
    for task_name in tasks:
        task = sk.tasks.get(task_name)
        cells = results["tasks"].setdefault(task_name, {"train_seconds": {}, "samplers": {}})
        done = cells["samplers"]
        if _complete(done, samplers, observations, pyro_observations):
            print(f"[skip] {task_name}", flush=True)
            continue
        sims = sk.simulate(jax.random.key(args.seed), task, args.simulations, progress=False)
        print(f"[train] {task_name}: sbi_kit NLE", flush=True)
        ours, cells["train_seconds"]["sbi_kit"] = train_sbi_kit(task, sims.theta, sims.x, args.seed)
        cells["sbi_kit_flow"] = repr(ours.method.flow)  # the flow the default kept
        theirs = None
        # sbi's network is trained only when one of its rows has a missing cell
        if not _complete(done, theirs_rows, observations, pyro_observations):
            print(f"[train] {task_name}: sbi NLE", flush=True)
            theirs, cells["train_seconds"]["sbi"] = train_sbi(task, sims.theta, sims.x, args.seed)
        save()
        # sbi_kit's rows: the trained posterior with each set of MCMC settings
        ours_by_row = {DEFAULT: ours} | {VARIANTS[v]: variant(ours, v) for v in variants}
        for sampler in samplers:
            per_obs = cells["samplers"].setdefault(sampler, {})
            warmed = False
            for n_call, i in enumerate(observations):
                if sampler == "sbi nuts_pyro" and i not in pyro_observations:
                    continue
                if sampler in ours_by_row:
                    call = functools.partial(sample_sbi_kit, ours_by_row[sampler])
                elif sampler.endswith(ON_OURS):
                    sbi_method = sampler.removeprefix("sbi ").removesuffix(ON_OURS)
                    call = functools.partial(sample_sbi_on_ours, ours, task, sbi_method)
                else:
                    call = functools.partial(sample_sbi, theirs, sampler.removeprefix("sbi "))
                timed = functools.partial(
                    _timed, call, task.observation(i), args.num_samples, args.seed, i
                )
                if str(i) in per_obs:
                    continue
                if sampler.startswith("sbi_kit") and n_call > 0 and not warmed:
                    # resumed after the (cold) first call was recorded: compile the sampler
                    # once in this process so that this cell is timed warm, as it would be
                    timed()
                    warmed = True
                ((samples, extra), seconds), load = timed_run(timed, args, f"{task_name} {sampler}")
                warmed = True
                with threadpool_limits(limits=args.blas_threads):
                    score = sk.diagnostics.c2st(samples, task.reference_samples(i))
                per_obs[str(i)] = {
                    "seconds": seconds,
                    "cold": sampler.startswith("sbi_kit") and n_call == 0,
                    "c2st": score,
                    "load": load,
                    **extra,
                }
                line = f"  {task_name} obs {i} {sampler}: {seconds:.2f} s, C2ST {score:.3f}"
                print(line, flush=True)
                save()
    save()
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
