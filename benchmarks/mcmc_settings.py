"""MCMC settings of a learned-likelihood posterior: wall time, C2ST and importance ESS.

The search behind the NLE/NRE posteriors' MCMC default (docs/mcmc.md, "Short chains are
enough"). One NLE per task is trained with the library defaults on 10,000 simulations (seed 0;
saved to ``--cache`` and reused), then for each setting ``(num_warmup, draws_per_chain,
num_chains, candidates_per_sample, num_moves, max_tree_depth)`` the posterior draws 10,000
samples for each observation: a first call compiles, the second (another key) is timed, and
its samples are compared with the task's reference samples by C2ST (sbibm's classifier). The
line printed per setting gives the median warm seconds, the mean C2ST and the smallest
importance ESS (Kish, of the truncated weights of ``candidates_per_sample × 10,000``
candidates). Run on one core::

    taskset -c 0 python benchmarks/mcmc_settings.py two_moons --observations 1,2,3 \\
        --settings "[(200, 50, 20, 5, 3, 10), (50, 25, 20, 5, 3, 4)]"

The output is printed (and appended to ``--log``); benchmarks/results/mcmc_settings.md holds
the lines of the search that set the default.
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("task", help="sbibm task name")
    p.add_argument("--observations", default="1,2,3", help="comma-separated (default: %(default)s)")
    p.add_argument(
        "--settings",
        required=True,
        help="Python list of (num_warmup, draws_per_chain, num_chains, candidates_per_sample, "
        "num_moves, max_tree_depth) tuples",
    )
    p.add_argument("--cache", type=Path, default=Path("/tmp/sbi_kit_mcmc_settings"))
    p.add_argument("--log", type=Path, default=None, help="file to append the lines to")
    return p.parse_args(argv)


def trained_nle(task, cache: Path):
    import jax

    import sbi_kit as sk

    path = cache / f"nle_{task.name}.sbi"
    if path.exists():
        return sk.load(path)
    sims = sk.simulate(jax.random.key(0), task, 10_000, progress=False)
    key = jax.random.key(0)
    posterior = sk.NLE().fit(key, sims.theta, sims.x, prior=task.prior, progress=False)
    cache.mkdir(parents=True, exist_ok=True)
    sk.save(path, posterior)
    return posterior


def main(argv=None) -> None:
    args = parse_args(argv)
    import jax
    from compositional import rebuilt

    import sbi_kit as sk

    task = sk.tasks.get(args.task)
    observations = [int(o) for o in args.observations.split(",")]
    base = trained_nle(task, args.cache)
    for setting in ast.literal_eval(args.settings):
        warmup, draws, chains, candidates, moves, depth = setting
        config = sk.mcmc.MCMCConfig(
            sampler=sk.mcmc.NUTS(max_tree_depth=depth),
            num_warmup=warmup,
            num_chains=chains,
            resampling=sk.mcmc.ChainMixtureResampling(
                draws_per_chain=draws, candidates_per_sample=candidates, num_moves=moves
            ),
        )
        posterior = rebuilt(base, mcmc=config)
        seconds, c2sts, ess = [], [], []
        for i in observations:
            x_o = task.observation(i)
            jax.block_until_ready(posterior.sample(jax.random.key(i), x_o, 10_000))
            start = time.perf_counter()
            samples, result = posterior.sample(
                jax.random.key(100 + i), x_o, 10_000, return_diagnostics=True
            )
            jax.block_until_ready(samples)
            seconds.append(time.perf_counter() - start)
            ess.append(float(result.importance_ess))
            c2sts.append(sk.diagnostics.c2st(samples, task.reference_samples(i)))
        line = (
            f"{args.task} warm-up {warmup} draws/chain {draws} chains {chains} candidates "
            f"{candidates} moves {moves} depth {depth}: median {np.median(seconds):.2f} s, C2ST "
            f"{np.mean(c2sts):.3f} {[round(c, 3) for c in c2sts]}, min ESS {min(ess):.0f}"
        )
        print(line, flush=True)
        if args.log is not None:
            with args.log.open("a") as f:
                f.write(line + "\n")


if __name__ == "__main__":
    main()
