"""Train the PFNs shipped in ``sbi_kit/pfn/data/`` (resumable; a run may stop at a time limit).

    python benchmarks/train_pfn.py gp --time-limit 3000     # trains, checkpoints, resumes
    python benchmarks/train_pfn.py gp --ship                 # writes sbi_kit/pfn/data/gp.pfn

Each model's prior, settings, step count and seed are fixed here and written into the shipped
file's header (``TrainedPFN.metadata``), with the loss history and the number of steps done. A
run continues from ``benchmarks/checkpoints/<name>.ckpt`` when it exists (bit for bit what one
uninterrupted run gives), so a long training can span several sessions or move to a GPU.
"""

from __future__ import annotations

import argparse
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


MODELS = {"gp": gp_model, "lc": lc_model, "gp_hyper": gp_hyper_model}
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
    args = parser.parse_args(argv)
    prior, config, steps, extra = MODELS[args.name]()
    checkpoint = CHECKPOINTS / f"{args.name}.ckpt"
    if args.ship:
        t = sk.pfn.load(checkpoint)
        sk.pfn.save(DATA / f"{args.name}.pfn", t)
        print(f"wrote {DATA / f'{args.name}.pfn'}: {t.steps_done}/{t.steps} steps")
        return
    CHECKPOINTS.mkdir(parents=True, exist_ok=True)
    metadata = {
        "script": "benchmarks/train_pfn.py",
        "model": args.name,
        "seed": SEED,
        "steps": steps,
        "prior": repr(prior),
        "machine": f"{platform.node()} {jax.devices()[0].device_kind}",
        **{k: v for k, v in extra.items() if v is not None},
    }
    began = time.perf_counter()
    trained = config.fit(
        jax.random.key(SEED),
        prior,
        steps=steps,
        checkpoint=checkpoint,
        resume_from=checkpoint if checkpoint.exists() else None,
        time_limit=args.time_limit,
        metadata=metadata,
        progress=args.progress,
    )
    seconds = time.perf_counter() - began
    print(
        f"{args.name}: {trained.steps_done}/{trained.steps} steps, last loss "
        f"{trained.history[-1][1]:.4f}, {seconds:.0f} s in this run"
    )


if __name__ == "__main__":
    main()
