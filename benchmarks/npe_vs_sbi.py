"""sbi_kit NPE against the `sbi` package's NPE (PyTorch, CPU) on the same simulations.

Two configurations, each over several seeds (one set of simulations per task and seed, handed
to both libraries as JAX and as torch float32 arrays):

* ``defaults``: what a new user gets, ``sk.NPE()`` against sbi's ``NPE(prior)`` trained with
  ``train()``'s defaults (in sbi 0.27 a masked autoregressive flow with affine transforms, 5
  layers of 50 hidden units; batch 200, lr 5e-4, 10 % validation, patience 20, clip 5.0).
* ``matched``: the closest spline flows each library offers, with the same optimiser settings.
  sbi_kit ``NSF(knot_temperature=sqrt(50))`` (5 masked-autoregressive rational-quadratic spline
  layers, MLP 2 x 50, 10 knots on [-5, 5]) with draws outside the prior's support rejected
  (``Rejection()``, as sbi does); sbi ``posterior_nn(model="nsf", hidden_features=50,
  num_transforms=5, num_bins=10)`` (5 rational-quadratic coupling layers with residual
  conditioners and LU-linear layers, nflows). ``--support`` and ``--knot-temperature`` change
  sbi_kit's side, ``--sbi-model`` sbi's.

Rules that keep the timings honest:

* the libraries run interleaved: for every seed both train on the same data, the first library
  alternating from seed to seed (sbi_kit, sbi | sbi, sbi_kit | ...);
* the 1-minute load average is read before and after every timed training; a timing whose
  reading exceeds 1.2 x the cores used is thrown away and the run repeated (``--retries``;
  before a run the script waits for the machine to be quiet, up to ``--max-wait`` seconds); a
  timing that never passes is kept, flagged, and left out of the ratios;
* sbi_kit is timed from a cold start: its in-memory JAX caches are cleared and its persistent
  compilation cache points at a new, empty folder, so the time includes every trace and
  compile a first run on a new machine pays. A second fit on the same data, with in-memory
  caches cleared again but the folder kept, gives the time of any later run of a script (the
  persistent cache is on by default);
* ratios are per seed, reported as median and range; sampling: the first call and the median
  of warm calls for 10,000 draws.

C2ST (sbibm's classifier) against the tasks' 10,000 reference samples is computed after the
timings, from samples saved in ``benchmarks/checkpoints/npe_vs_sbi/`` (git-ignored); ``--no-c2st``
times only, and a later run without it fills the C2STs in from the saved samples, so the
classifiers never run beside a timing.

Run from the repository root, in the benchmark environment (see benchmarks/README.md)::

    python benchmarks/npe_vs_sbi.py --no-c2st                    # the timings (quiet machine)
    python benchmarks/npe_vs_sbi.py                              # then the C2STs
    python benchmarks/npe_vs_sbi.py --tasks two_moons --simulations 2000 --seeds 0 \\
        --observations 1 --out /tmp/npe_vs_sbi_quick             # a quick check

Results go to ``benchmarks/results/npe_vs_sbi.{json,md}``; finished runs found there are kept
and skipped unless ``--fresh`` is given.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import sys
import tempfile
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
CONFIGS = ("matched", "defaults")
FLOW = {"layers": 5, "hidden_features": 50, "hidden_layers": 2, "knots": 10}
TRAINING = {
    "batch_size": 200,
    "learning_rate": 5e-4,
    "validation_fraction": 0.1,
    "patience": 20,
    "clip_norm": 5.0,
}
NUM_HELDOUT = 1_000
LOAD_FACTOR = 1.2
SAMPLES_DIR = Path(__file__).resolve().parent / "checkpoints" / NAME


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--configs",
        default=",".join(CONFIGS),
        help="comma-separated: matched, defaults (default: %(default)s)",
    )
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
        help="observations to sample for (timing, saved samples), e.g. 1-10 (default: %(default)s)",
    )
    p.add_argument(
        "--c2st-observations",
        default=None,
        help="task=obs pairs or one list for all, e.g. 'gaussian_linear=1-2;slcp=1-3' or '1-3' "
        "(default: all of --observations; a 10-d C2ST takes minutes)",
    )
    p.add_argument("--seeds", default="0-2", help="seeds, e.g. 0-2 (default: %(default)s)")
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
        help="epoch cap of the matched configuration (default: %(default)s)",
    )
    p.add_argument(
        "--threads",
        default="auto",
        help="torch intra-op threads: a number, or 'auto' to time a short probe with "
        "all cores and with 1 thread and train with the faster (default: auto)",
    )
    p.add_argument(
        "--sbi-model",
        default="nsf",
        help="sbi posterior_nn model of the matched configuration (default: %(default)s)",
    )
    p.add_argument(
        "--libraries",
        default=",".join(LIBRARIES),
        help="which libraries to run (default: %(default)s)",
    )
    p.add_argument("--no-c2st", action="store_true", help="time only; C2ST in a later run")
    p.add_argument(
        "--support",
        choices=("rejection", "bijection"),
        default="rejection",
        help="sbi_kit's bounded-prior handling in the matched configuration (default: "
        "%(default)s, as sbi does)",
    )
    p.add_argument(
        "--knot-temperature",
        type=float,
        default=math.sqrt(FLOW["hidden_features"]),
        help="sbi_kit NSF knot_temperature in the matched configuration (default: sqrt(50))",
    )
    p.add_argument(
        "--retries",
        type=int,
        default=2,
        help="repeats of a timing taken under load (default: %(default)s)",
    )
    p.add_argument(
        "--max-wait",
        type=float,
        default=600.0,
        help="seconds to wait for a quiet machine before a timing (default: %(default)s)",
    )
    add_c2st_and_resume_arguments(p)
    p.add_argument(
        "--out",
        type=Path,
        default=RESULTS_DIR / NAME,
        help="output path without suffix (default: benchmarks/results/npe_vs_sbi)",
    )
    return p.parse_args(argv)


def c2st_plan(text: str | None, tasks: list[str], observations: list[int]) -> dict[str, list]:
    """``--c2st-observations`` as {task: observations}: one list for every task ('1-3') or
    ';'-separated task=list pairs ('gaussian_linear=1-2;slcp=1-3'; other tasks: all)."""
    if text is None:
        return {t: list(observations) for t in tasks}
    if "=" not in text:
        return {t: parse_int_list(text) for t in tasks}
    plan = {t: list(observations) for t in tasks}
    for part in text.split(";"):
        name, obs = part.split("=", 1)
        plan[name.strip()] = parse_int_list(obs)
    return plan


# ----------------------------------------------------------------------------- load


def load_threshold(cores: int | None = None) -> float:
    """The largest 1-minute load average a timing may be taken at."""
    return LOAD_FACTOR * (cores or os.cpu_count() or 1)


def wait_until_quiet(threshold: float, max_wait: float) -> float:
    """Waits (up to ``max_wait`` s) for the load average to fall to ``threshold``."""
    start = time.perf_counter()
    load = os.getloadavg()[0]
    while load > threshold and time.perf_counter() - start < max_wait:
        print(f"  load {load:.2f} > {threshold:.2f}: waiting", flush=True)
        time.sleep(20)
        load = os.getloadavg()[0]
    return load


def timed_run(fn, args, label: str):
    """``fn()`` repeated until the load average before and after it is at most the threshold
    (at most ``args.retries`` repeats); returns ``(result, load record)``, where ``refused``
    lists the (before, after) readings of the repeated runs and ``ok`` says whether the kept
    run passed."""
    threshold = load_threshold()
    refused = []
    for attempt in range(args.retries + 1):
        before = wait_until_quiet(threshold, args.max_wait)
        result = fn()
        after = os.getloadavg()[0]
        ok = before <= threshold and after <= threshold
        if ok or attempt == args.retries:
            break
        refused.append([before, after])
        print(f"  {label}: load {before:.2f} -> {after:.2f} exceeds {threshold:.2f}; repeating")
    if not ok:
        print(f"  {label}: load {before:.2f} -> {after:.2f} exceeds {threshold:.2f}; kept, flagged")
    record = {"before": before, "after": after, "threshold": threshold, "ok": ok}
    return result, record | {"refused": refused}


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


def sbi_kit_defaults_spec() -> str:
    """``sk.NPE()``'s settings in full, so a run timed under an earlier default is not resumed."""
    import dataclasses

    import sbi_kit as sk

    method = sk.NPE()
    parts = []
    for field in dataclasses.fields(method):
        value = getattr(method, field.name)
        if dataclasses.is_dataclass(value):
            inner = ", ".join(
                f"{f.name}={getattr(value, f.name)!r}" for f in dataclasses.fields(value)
            )
            value = f"{type(value).__name__}({inner})"
        else:
            value = repr(value)
        parts.append(f"{field.name}={value}")
    return "NPE(" + ", ".join(parts) + ")"


def sbi_kit_method(config: str, args):
    """The sbi_kit NPE of a configuration."""
    import sbi_kit as sk

    if config == "defaults":
        return sk.NPE()
    return sk.NPE(
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
    )


def _fit_sbi_kit(npe, key, theta, x, prior):
    """One timed fit (``jax.block_until_ready`` on the result) with its compile time."""
    import equinox as eqx
    import jax

    with CompileTimer() as ct:
        start = time.perf_counter()
        posterior = npe.fit(key, theta, x, prior=prior, progress=False)
        jax.block_until_ready(eqx.filter(posterior, eqx.is_array))
        seconds = time.perf_counter() - start
    return posterior, seconds, ct


def run_sbi_kit(config, args, task, theta, x, theta_test, x_test, seed, observations):
    import equinox as eqx
    import jax

    import sbi_kit as sk

    npe = sbi_kit_method(config, args)
    key_fit, key_sample = jax.random.split(jax.random.key(10_000 + seed))
    cache = tempfile.mkdtemp(prefix="sbi_kit_xla_")
    try:

        def cold():
            sk.set_compilation_cache(tempfile.mkdtemp(dir=cache))  # new and empty
            jax.clear_caches()
            return _fit_sbi_kit(npe, key_fit, theta, x, task.prior)

        (posterior, train_s, ct), load = timed_run(cold, args, "sbi_kit (cold)")

        def warm():
            jax.clear_caches()  # in-memory caches gone, the folder of the cold fit kept
            return _fit_sbi_kit(npe, key_fit, theta, x, task.prior)

        (_, warm_s, ct_warm), load_warm = timed_run(warm, args, "sbi_kit (warm cache)")

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
            if isinstance(npe.support, sk.inference.Rejection):  # normalise over the support,
                lp = lp - np.log(  # as sbi's log_prob does
                    posterior.acceptance_rate(jax.random.fold_in(k, 1), task.observation(i))
                )
            ref_lp[str(i)] = float(np.mean(np.asarray(lp)))
        start = time.perf_counter()
        np.asarray(
            posterior.sample(key_sample, task.observation(observations[0]), args.num_samples)
        )
        sample_s.append(time.perf_counter() - start)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        sk.set_compilation_cache(None)
    return {
        "train_seconds": train_s,
        "compile_seconds": ct.seconds,
        "compile_detail": ct.as_dict(),
        "train_seconds_excl_compile": train_s - ct.seconds,
        "train_seconds_warm_cache": warm_s,
        "compile_seconds_warm_cache": ct_warm.seconds,
        "epochs": epochs,
        "best_epoch": int(hist.best_epoch) + 1,
        "stop_reason": str(hist.stop_reason),
        "seconds_per_epoch_excl_compile": (train_s - ct.seconds) / max(epochs, 1),
        "heldout_log_prob": heldout,
        "sample_seconds_first": sample_s[0],
        "sample_seconds_warm": statistics.median(sample_s[1:]),
        "load": load,
        "load_warm_cache": load_warm,
        "ref_log_prob": ref_lp,
    }, samples


def sbi_inference(config, args, prior):
    """The sbi NPE trainer of a configuration (also used by ``npe_sampling.py``)."""
    from sbi.inference import NPE as SbiNPE
    from sbi.neural_nets import posterior_nn

    if config == "defaults":
        return SbiNPE(prior=prior, device="cpu", show_progress_bars=False)
    builder = posterior_nn(
        model=args.sbi_model,
        hidden_features=FLOW["hidden_features"],
        num_transforms=FLOW["layers"],
        num_bins=FLOW["knots"],
    )
    return SbiNPE(prior=prior, density_estimator=builder, device="cpu", show_progress_bars=False)


def choose_threads(config, args, prior, theta_t, x_t) -> tuple[int, dict]:
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
        inference = sbi_inference(config, args, prior)
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


def run_sbi(config, args, task, theta, x, theta_test, x_test, seed, observations):
    import torch

    prior = torch_prior(task.prior)
    theta_t = torch.as_tensor(np.array(theta), dtype=torch.float32)
    x_t = torch.as_tensor(np.array(x), dtype=torch.float32)
    threads, probe = choose_threads(config, args, prior, theta_t, x_t)
    torch.set_num_threads(threads)
    train_args = (
        {}
        if config == "defaults"
        else {
            "training_batch_size": TRAINING["batch_size"],
            "learning_rate": TRAINING["learning_rate"],
            "validation_fraction": TRAINING["validation_fraction"],
            "stop_after_epochs": TRAINING["patience"],
            "max_num_epochs": args.max_epochs,
            "clip_max_norm": TRAINING["clip_norm"],
        }
    )

    def fit():
        torch.manual_seed(seed)
        inference = sbi_inference(config, args, prior)
        start = time.perf_counter()
        inference.append_simulations(theta_t, x_t)
        estimator = inference.train(**train_args)
        return inference, estimator, time.perf_counter() - start

    (inference, estimator, train_s), load = timed_run(fit, args, "sbi")
    summary = inference.summary
    epochs = int(summary["epochs_trained"][-1])
    val = list(summary["validation_loss"])
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
    x_o = torch.as_tensor(np.array(task.observation(observations[0])), dtype=torch.float32)
    start = time.perf_counter()
    posterior.sample((args.num_samples,), x=x_o, show_progress_bars=False)
    sample_s.append(time.perf_counter() - start)
    return {
        "train_seconds": train_s,
        "compile_seconds": 0.0,
        "train_seconds_excl_compile": train_s,
        "epochs": epochs,
        "best_epoch": int(np.argmin(val)) + 1 if val else None,
        "stop_reason": "converged" if epochs < args.max_epochs else "max_epochs",
        "seconds_per_epoch_excl_compile": train_s / max(epochs, 1),
        "heldout_log_prob": heldout,
        "sample_seconds_first": sample_s[0],
        "sample_seconds_warm": statistics.median(sample_s[1:]),
        "torch_threads": threads,
        "thread_probe": probe,
        "load": load,
        "ref_log_prob": ref_lp,
    }, samples


RUNNERS = {"sbi_kit": run_sbi_kit, "sbi": run_sbi}


# ----------------------------------------------------------------------------- report


def _spread(values: list[float]) -> dict | None:
    if not values:
        return None
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def summarise(results: dict) -> list[dict]:
    """One row per (configuration, task, simulations): per-seed ratios and mean accuracies."""
    groups: dict[tuple, dict] = {}
    for run in results["runs"].values():
        key = (run["config"], run["task"], run["num_simulations"])
        groups.setdefault(key, {}).setdefault(run["seed"], {})[run["library"]] = run
    rows = []
    for (config, task, n), seeds in sorted(groups.items()):
        ratios = {
            k: [] for k in ("cold", "warm_cache", "excl_compile", "sample_warm", "sample_first")
        }
        c2st = {lib: [] for lib in LIBRARIES}
        flagged = 0
        for runs in seeds.values():
            complete = all(lib in runs for lib in LIBRARIES)
            # Paired: a seed's observations count only where both libraries have a C2ST.
            observed = [set(run.get("c2st", {})) for run in runs.values()]
            common = set.intersection(*observed) if complete else None
            for lib, run in runs.items():
                c2st[lib] += [
                    v for obs, v in run.get("c2st", {}).items() if common is None or obs in common
                ]
            if not complete:
                continue
            a, b = runs["sbi_kit"], runs["sbi"]
            if not (a["load"]["ok"] and b["load"]["ok"]):
                flagged += 1
                continue
            ratios["cold"].append(b["train_seconds"] / a["train_seconds"])
            ratios["excl_compile"].append(b["train_seconds"] / a["train_seconds_excl_compile"])
            if a.get("load_warm_cache", {}).get("ok"):
                ratios["warm_cache"].append(b["train_seconds"] / a["train_seconds_warm_cache"])
            ratios["sample_warm"].append(b["sample_seconds_warm"] / a["sample_seconds_warm"])
            ratios["sample_first"].append(b["sample_seconds_first"] / a["sample_seconds_first"])

        def mean_of(lib, field, seeds=seeds):
            values = [
                r[lib][field] for r in seeds.values() if lib in r and r[lib].get(field) is not None
            ]
            return statistics.mean(values) if values else None

        rows.append(
            {
                "config": config,
                "task": task,
                "num_simulations": n,
                "seeds": sorted(seeds),
                "ratios": {k: _spread(v) for k, v in ratios.items()},
                "flagged_seeds": flagged,
                "c2st": {lib: statistics.mean(v) if v else None for lib, v in c2st.items()},
                "c2st_num": {lib: len(v) for lib, v in c2st.items()},
                "train_seconds": {lib: mean_of(lib, "train_seconds") for lib in LIBRARIES},
                "train_seconds_warm_cache": mean_of("sbi_kit", "train_seconds_warm_cache"),
                "compile_seconds": mean_of("sbi_kit", "compile_seconds"),
                "epochs": {lib: mean_of(lib, "epochs") for lib in LIBRARIES},
                "sample_seconds_warm": {
                    lib: mean_of(lib, "sample_seconds_warm") for lib in LIBRARIES
                },
                "sample_seconds_first": {
                    lib: mean_of(lib, "sample_seconds_first") for lib in LIBRARIES
                },
            }
        )
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


def _ratio(spread: dict | None) -> str:
    if not spread:
        return "-"
    return f"{spread['median']:.2f} ({spread['min']:.2f}-{spread['max']:.2f})"


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
        f"sbi {v.get('sbi')}, torch {v.get('torch')}. Measured {m['date']}. Seeds "
        f"{s['seeds']}, {s['num_simulations']:,} simulations per task and seed.",
        "",
        "Configurations. **defaults**: `sk.NPE()` against sbi's `NPE(prior)` with `train()`'s "
        "defaults (sbi 0.27: MAF, 5 affine autoregressive layers of 50 hidden units, batch 200, "
        "patience 20). "
        + (f"`sk.NPE()` here is `{s['sbi_kit_defaults']}`. " if "sbi_kit_defaults" in s else "")
        + "**matched**: sbi_kit `NSF(knot_temperature="
        f"{s['sbi_kit_knot_temperature']:.3g})` (5 MAF-RQS layers, MLP 2x50, 10 knots; bounded "
        f"priors: {s['sbi_kit_support']}) against sbi "
        f'`posterior_nn(model="{s["sbi_model"]}", hidden_features=50, num_transforms=5, '
        "num_bins=10)`, both trained with batch 200, lr 5e-4, validation 10 %, patience 20, "
        f"clip 5.0, at most {s['max_epochs']} epochs.",
        "",
        "Timing rules: libraries interleaved (the first alternates from seed to seed); the "
        "1-minute load average is read before and after each timed training, and a timing with "
        f"a reading above {LOAD_FACTOR} x {m['cpu_count']} cores = "
        f"{LOAD_FACTOR * m['cpu_count']:.1f} is repeated (flagged and left out of the ratios "
        "if it never passes). sbi_kit **cold**: in-memory JAX caches cleared and an empty "
        "persistent compilation cache, so every trace and compile is paid (a first run on a new "
        "machine); **warm cache**: the same fit again with in-memory caches cleared but the "
        "persistent cache kept (any later run of a script with the same shapes; the cache is on "
        "by default). Ratios are sbi / sbi_kit per seed: median (min-max); > 1 means sbi_kit "
        "is faster.",
        "",
        "## Training time",
        "",
    ]
    head = [
        "config",
        "task",
        "sbi_kit s cold (of which compile)",
        "sbi_kit s warm cache",
        "sbi s",
        "ratio cold",
        "ratio warm cache",
        "ratio excl. compile",
        "epochs sbi_kit / sbi",
        "seeds (flagged)",
    ]
    body = []
    for r in rows:
        t = r["train_seconds"]
        body.append(
            [
                r["config"],
                r["task"],
                f"{fmt(t['sbi_kit'], 1)} ({fmt(r['compile_seconds'], 1)})",
                fmt(r["train_seconds_warm_cache"], 1),
                fmt(t["sbi"], 1),
                _ratio(r["ratios"]["cold"]),
                _ratio(r["ratios"]["warm_cache"]),
                _ratio(r["ratios"]["excl_compile"]),
                f"{fmt(r['epochs']['sbi_kit'], 0)} / {fmt(r['epochs']['sbi'], 0)}",
                f"{len(r['seeds'])} ({r['flagged_seeds']})",
            ]
        )
    lines += [
        table(head, body),
        "",
        "Times are means over seeds.",
        "",
        "## Sampling 10,000 draws",
        "",
    ]
    head = [
        "config",
        "task",
        "sbi_kit warm s",
        "sbi warm s",
        "ratio warm",
        "sbi_kit first call s",
        "sbi first call s",
        "ratio first call",
    ]
    body = []
    for r in rows:
        w, f = r["sample_seconds_warm"], r["sample_seconds_first"]
        body.append(
            [
                r["config"],
                r["task"],
                fmt(w["sbi_kit"], 3),
                fmt(w["sbi"], 3),
                _ratio(r["ratios"]["sample_warm"]),
                fmt(f["sbi_kit"], 3),
                fmt(f["sbi"], 3),
                _ratio(r["ratios"]["sample_first"]),
            ]
        )
    lines += [
        table(head, body),
        "",
        "Warm: median over the observations' calls after the first; first call: sbi_kit's "
        "includes tracing and compiling the sampler (its persistent cache was empty).",
        "",
        "## Accuracy",
        "",
    ]
    head = ["config", "task", "C2ST sbi_kit", "C2ST sbi", "sbi_kit - sbi", "C2STs per library"]
    body = []
    for r in rows:
        a, b = r["c2st"]["sbi_kit"], r["c2st"]["sbi"]
        body.append(
            [
                r["config"],
                r["task"],
                fmt(a),
                fmt(b),
                fmt(a - b) if a is not None and b is not None else "-",
                f"{r['c2st_num']['sbi_kit']} / {r['c2st_num']['sbi']}",
            ]
        )
    lines += [
        table(head, body),
        "",
        "C2ST: sbibm's classifier, 10,000 posterior samples against the 10,000 reference "
        "samples, mean over seeds and observations (0.5 is ideal); a seed's observation "
        "counts only where both libraries have its C2ST.",
        "",
        "## Per seed",
        "",
    ]
    head = [
        "config",
        "task",
        "seed",
        "library",
        "train s",
        "compile s",
        "warm-cache s",
        "epochs",
        "load before / after",
        "load ok",
        "sample warm s",
        "held-out log q",
        "C2ST (observations)",
    ]
    body = []
    for run in sorted(
        results["runs"].values(),
        key=lambda r: (r["config"], r["task"], r["seed"], r["library"]),
    ):
        c = run.get("c2st", {})
        load = run["load"]
        body.append(
            [
                run["config"],
                run["task"],
                str(run["seed"]),
                run["library"],
                fmt(run["train_seconds"], 1),
                fmt(run["compile_seconds"], 1),
                fmt(run.get("train_seconds_warm_cache"), 1),
                str(run["epochs"]),
                f"{load['before']:.2f} / {load['after']:.2f}",
                ("yes" if load["ok"] else "**no**")
                + (f" ({len(load['refused'])} repeated)" if load["refused"] else ""),
                fmt(run["sample_seconds_warm"], 3),
                fmt(run["heldout_log_prob"], 2),
                (f"{statistics.mean(c.values()):.3f} ({_ranges(int(i) for i in c)})" if c else "-"),
            ]
        )
    lines += [table(head, body)]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main


def fill_c2st(results, run_key, run, task, wanted, args, save) -> None:
    """C2ST for the wanted observations still missing, from the run's saved samples."""
    from threadpoolctl import threadpool_limits

    import sbi_kit as sk

    missing = [i for i in wanted if str(i) not in run.get("c2st", {})]
    path = SAMPLES_DIR / (run_key.replace("/", "__") + ".npz")
    if not missing:
        return
    if not path.exists():
        print(f"  {run_key}: no saved samples for C2ST ({path})", flush=True)
        return
    saved = np.load(path)
    for i in missing:
        if str(i) not in saved:
            continue
        start = time.perf_counter()
        with threadpool_limits(limits=args.blas_threads):
            value = sk.diagnostics.c2st(saved[str(i)], task.reference_samples(i))
        run.setdefault("c2st", {})[str(i)] = value
        print(
            f"  {run_key} obs {i}: C2ST {value:.3f} ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
        save()


def main(argv=None) -> None:
    args = parse_args(argv)
    import jax

    import sbi_kit as sk

    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = set(configs) - set(CONFIGS)
    if unknown:
        raise SystemExit(f"--configs: unknown {sorted(unknown)}; choose from {CONFIGS}")
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    observations = parse_int_list(args.observations)
    c2st_obs = c2st_plan(args.c2st_observations, tasks, observations)
    seeds = parse_int_list(args.seeds)
    libraries = [lib.strip() for lib in args.libraries.split(",") if lib.strip()]
    json_path, md_path = args.out.with_suffix(".json"), args.out.with_suffix(".md")

    previous = None if args.fresh else read_json(json_path)
    settings = {
        "configs": configs,
        "tasks": tasks,
        "num_simulations": args.simulations,
        "observations": observations,
        "c2st_observations": c2st_obs,
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
        "load_factor": LOAD_FACTOR,
        "retries": args.retries,
        "sbi_kit_defaults": sbi_kit_defaults_spec(),
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
    same = ("sbi_model", "sbi_kit_support", "sbi_kit_knot_temperature", "num_samples")
    if previous and all(previous.get("settings", {}).get(k) == settings[k] for k in same):
        # A ``defaults`` run is kept only if ``sk.NPE()`` still means what it meant then.
        same_defaults = previous["settings"].get("sbi_kit_defaults") == settings["sbi_kit_defaults"]
        results["runs"] = {
            k: r
            for k, r in previous.get("runs", {}).items()
            if "config" in r and (r["config"] != "defaults" or same_defaults)
        }

    def save():
        results["summary"] = summarise(results)
        write_json(json_path, results)
        write_markdown(md_path, markdown(results))

    SAMPLES_DIR.mkdir(parents=True, exist_ok=True)
    for config in configs:
        for task_name in tasks:
            task = sk.tasks.get(task_name)
            for n_seed, seed in enumerate(seeds):
                order = libraries if n_seed % 2 == 0 else libraries[::-1]
                todo = []
                for lib in order:
                    key = f"{config}/{task_name}/{args.simulations}/seed{seed}/{lib}"
                    if key in results["runs"]:
                        print(f"[skip] {key} (timed already)", flush=True)
                    else:
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
                        config, args, task, theta, x, theta_test, x_test, seed, observations
                    )
                    np.savez_compressed(
                        SAMPLES_DIR / (key.replace("/", "__") + ".npz"),
                        **{str(i): s for i, s in samples.items()},
                    )
                    run.update(
                        {
                            "config": config,
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
                        f"compile {run['compile_seconds']:.1f} s, load "
                        f"{run['load']['before']:.2f}/{run['load']['after']:.2f}, sample warm "
                        f"{run['sample_seconds_warm']:.3f} s",
                        flush=True,
                    )
                    results["runs"][key] = run
                    save()
    if not args.no_c2st:
        for key, run in sorted(results["runs"].items()):
            if run["task"] in c2st_obs and run["config"] in configs:
                fill_c2st(
                    results, key, run, sk.tasks.get(run["task"]), c2st_obs[run["task"]], args, save
                )
    save()
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
