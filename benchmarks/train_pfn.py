"""Train the PFNs shipped in ``sbi_kit/pfn/data/`` (resumable; a run may stop at a time limit).

    python benchmarks/train_pfn.py gp_large --budget 105     # GPU: as many steps as fit in 105 s
    python benchmarks/train_pfn.py gp_large                  # the shipped run's 5,100 steps
    python benchmarks/train_pfn.py gp_large --ship           # writes sbi_kit/pfn/data/gp.pfn

The shipped ``gp`` and ``lc`` models are ``gp_large`` and ``lc_large`` (width 256, trained on an
H200 by ``benchmarks/gpu_lease.sh``); ``gp``, ``lc`` and ``gp_hyper`` are the smaller settings
that a 2-core CPU trains in about an hour. Each model's prior, settings, step count and seed are
fixed here and written into the shipped file's header (``TrainedPFN.metadata``), with the loss
history and the number of steps done. A run continues from
``benchmarks/checkpoints/<name>.ckpt`` when it exists (bit for bit what one uninterrupted run
gives on the same machine), so a long training can span several sessions.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import platform
import time
from pathlib import Path

import jax

import sbi_kit as sk

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = ROOT / "benchmarks" / "checkpoints"
DATA = ROOT / "sbi_kit" / "pfn" / "data"


def gp_model():
    prior = sk.pfn.GPPrior(sk.pfn.RBF(lengthscale=0.2, outputscale=1.0), noise_std=0.1)
    config = sk.PFN(
        width=64,
        depth=4,
        num_heads=4,
        hidden=128,
        num_buckets=256,
        max_context=50,
        batch_size=64,
        learning_rate=1e-3,
        steps_per_call=100,
    )
    return prior, config, 6_000, {"num_epochs": None}


def lc_model():
    prior = sk.pfn.LearningCurvePrior(num_epochs=100)
    config = sk.PFN(
        width=64,
        depth=3,
        num_heads=4,
        hidden=128,
        num_buckets=500,
        max_context=99,
        min_context=0,
        num_points=100,
        batch_size=32,
        learning_rate=1e-3,
        steps_per_call=100,
    )
    return prior, config, 5_000, {"num_epochs": 100}


def gp_hyper_model():
    """Not shipped: the model of benchmarks/pfn_gp.py --hyper (Matérn-5/2 with hyperpriors)."""
    prior = sk.pfn.GPHyperPrior()
    config = sk.PFN(
        width=64,
        depth=4,
        num_heads=4,
        hidden=128,
        num_buckets=256,
        num_parameter_buckets=64,
        max_context=50,
        batch_size=64,
        learning_rate=1e-3,
        steps_per_call=100,
    )
    return prior, config, 4_000, {"num_epochs": None}


def _large(config: sk.PFN, **changes) -> sk.PFN:
    """The GPU-sized settings: the paper's small LC-PFN width (emsize 256, feed-forward 512),
    larger batches, a lower peak learning rate for the wider network."""
    settings = {
        "width": 256,
        "num_heads": 4,
        "hidden": 512,
        "batch_size": 256,
        "learning_rate": 5e-4,
        **changes,
    }
    return dataclasses.replace(config, **settings)


# The step counts of the GPU-sized models are those ``--budget`` chose on an H200 (benchmarks/
# gpu_lease.sh: 105 s for gp_large, 170 s for lc_large, 110 s for gp_hyper_large, compilation and
# the probe included), so that ``train_pfn.py NAME`` repeats the shipped training.
def gp_large_model():
    prior, config, _, extra = gp_model()
    return prior, _large(config, depth=4), 5_100, extra


def lc_large_model():
    prior, config, _, extra = lc_model()
    return prior, _large(config, depth=3, num_buckets=1000), 7_600, extra


def gp_hyper_large_model():
    prior, config, _, extra = gp_hyper_model()
    return prior, _large(config, depth=4, hidden=448), 4_700, extra  # hidden: stays < 10 MB


MODELS = {
    "gp": gp_model,
    "lc": lc_model,
    "gp_hyper": gp_hyper_model,
    "gp_large": gp_large_model,
    "lc_large": lc_large_model,
    "gp_hyper_large": gp_hyper_large_model,
}
# What ``--ship`` writes each model as in sbi_kit/pfn/data/ (the names sk.PFN.pretrained takes).
SHIPPED_AS = {"gp_large": "gp", "lc_large": "lc"}
SEED = 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(MODELS))
    parser.add_argument("--time-limit", type=float, default=None, help="seconds for this run")
    parser.add_argument(
        "--ship",
        action="store_true",
        help="write the model in the checkpoint to sbi_kit/pfn/data/<name>.pfn (complete or not:"
        " the header says how many steps were done) and stop",
    )
    parser.add_argument("--progress", action="store_true")
    parser.add_argument(
        "--steps", type=int, default=None, help="total steps instead of the model's own number"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds for the whole training: a probe of two steps_per_call chunks measures the"
        " time per step, then a fresh run trains as many steps as fit (its number is written in"
        " the model's header, so --steps N repeats it); ignores an existing checkpoint",
    )
    args = parser.parse_args(argv)
    prior, config, steps, extra = MODELS[args.name]()
    if args.steps is not None:
        steps = args.steps
    checkpoint = CHECKPOINTS / f"{args.name}.ckpt"
    if args.ship:
        t = sk.pfn.load(checkpoint)
        target = DATA / f"{SHIPPED_AS.get(args.name, args.name)}.pfn"
        sk.pfn.save(target, t)
        print(f"wrote {target}: {t.steps_done}/{t.steps} steps")
        return
    CHECKPOINTS.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    time_limit = args.time_limit
    if args.budget is not None:
        steps, time_limit = _fit_budget(args.budget, prior, config, checkpoint)
    metadata = {
        "script": "benchmarks/train_pfn.py",
        "model": args.name,
        "seed": SEED,
        "steps": steps,
        "prior": repr(prior),
        "machine": f"{platform.node()} {jax.devices()[0].device_kind}",
        **{k: v for k, v in extra.items() if v is not None},
    }
    trained = config.fit(
        jax.random.key(SEED),
        prior,
        steps=steps,
        checkpoint=checkpoint,
        resume_from=checkpoint if checkpoint.exists() else None,
        time_limit=time_limit,
        metadata=metadata,
        progress=args.progress,
    )
    seconds = time.perf_counter() - began
    print(
        f"{args.name}: {trained.steps_done}/{trained.steps} steps, last loss "
        f"{trained.history[-1][1]:.4f}, {seconds:.0f} s in this run"
    )


def _fit_budget(budget, prior, config, checkpoint):
    """Steps that fit in ``budget`` seconds, from a probe run; returns ``(steps, time_limit)``
    for the real run (the time limit only guards against a slower-than-measured run)."""
    began = time.perf_counter()
    chunk = config.steps_per_call
    probe_steps = 1_000_000  # the probe's schedule is irrelevant: it is thrown away
    probe = config.fit(
        jax.random.key(SEED + 1), prior, steps=probe_steps, stop_after=2 * chunk, progress=False
    )
    (_, _, t1), (_, _, t2) = probe.history[:2]
    per_step = (t2 - t1) / chunk
    compile_s = max(t1 - (t2 - t1), 0.0)
    probe_s = time.perf_counter() - began
    left = budget - probe_s - compile_s
    steps = max(chunk, math.floor(0.95 * left / per_step / chunk) * chunk)
    print(
        f"budget {budget:.0f} s: probe {probe_s:.1f} s (compile ~{compile_s:.1f} s, "
        f"{per_step * 1e3:.2f} ms/step) -> {steps} steps",
        flush=True,
    )
    if checkpoint.exists():
        checkpoint.unlink()
    return steps, max(budget - (time.perf_counter() - began), 1.0)


if __name__ == "__main__":
    main()
