"""Regenerates the tasks' data files: sbibm's observations plus this project's reference samples.

Run ``python -m sbi_kit.tasks.generate [--tasks NAME ...] [--sbibm-wheel PATH]``. For every task
and observation k = 1..10 it reads sbibm's published ``observation.csv`` and
``true_parameters.csv`` from the sbibm 1.1.0 wheel (downloaded with ``pip download --no-deps``
into a temporary folder when no wheel is given), draws 10,000 reference posterior samples from
the exact likelihood with the task's ``sample_reference_posterior`` (fixed seeds, float64), and
writes ``sbi_kit/tasks/data/<task>.npz`` (compressed, float32) with the keys ``observations``
``(10, dim_x)``, ``true_parameters`` ``(10, dim_theta)`` and ``reference_samples``
``(10, 10000, dim_theta)``. sbibm's own reference samples are not used here.

The tasks of :data:`OWN_OBSERVATIONS` are not in sbibm: their true parameters are prior draws and
their observations simulations, both from fixed seeds.
"""

from __future__ import annotations

import argparse
import bz2
import io
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np

SBIBM_VERSION = "1.1.0"
SEED = 20210413
NUM_OBSERVATIONS = 10
NUM_REFERENCE_SAMPLES = 10_000
DATA_DIR = Path(__file__).parent / "data"
OWN_OBSERVATIONS = frozenset({"ornstein_uhlenbeck"})


def download_sbibm_wheel(directory: Path) -> Path:
    """Downloads the sbibm wheel (without its dependencies) into ``directory``; returns its path."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
            f"sbibm=={SBIBM_VERSION}",
            "-d",
            str(directory),
        ],
        check=True,
    )
    wheels = sorted(directory.glob(f"sbibm-{SBIBM_VERSION}-*.whl"))
    if not wheels:
        raise FileNotFoundError(f"pip did not leave an sbibm {SBIBM_VERSION} wheel in {directory}.")
    return wheels[0]


def read_sbibm_csv(wheel: zipfile.ZipFile, task: str, k: int, filename: str) -> np.ndarray:
    """The rows of a published sbibm CSV file (a header line, then values), shape ``(n, d)``.

    Args:
        wheel: the opened sbibm wheel.
        task: the task's name.
        k: the observation number, 1..10.
        filename: e.g. ``"observation.csv"`` or ``"reference_posterior_samples.csv.bz2"``.
    """
    raw = wheel.read(f"sbibm/tasks/{task}/files/num_observation_{k}/{filename}")
    if filename.endswith(".bz2"):
        raw = bz2.decompress(raw)
    return np.loadtxt(io.BytesIO(raw), delimiter=",", skiprows=1, ndmin=2)


def simulate_observations(simulator, key) -> tuple[np.ndarray, np.ndarray]:
    """Ten true parameters drawn from the prior and their simulated observations.

    Args:
        simulator: the task's ``sk.Simulator``.
        key: the task's PRNG key (observation ``k`` uses ``fold_in(fold_in(key, 0), k)``).

    Returns:
        ``(true_parameters, observations)``, shapes ``(10, dim_theta)`` and ``(10, dim_x)``.
    """
    import jax

    thetas, xs = [], []
    for k in range(1, NUM_OBSERVATIONS + 1):
        key_theta, key_x = jax.random.split(jax.random.fold_in(jax.random.fold_in(key, 0), k))
        theta = simulator.prior.sample(key_theta)
        x = simulator.simulate(key_x, theta)
        if not np.isfinite(np.asarray(x)).all():
            raise RuntimeError(f"observation {k}: the simulation failed.")
        thetas.append(np.asarray(theta))
        xs.append(np.asarray(x))
    return np.stack(thetas), np.stack(xs)


def generate_task(
    name: str,
    wheel_path: Path,
    *,
    num_samples: int = NUM_REFERENCE_SAMPLES,
    out_dir: Path = DATA_DIR,
) -> Path:
    """Writes ``<out_dir>/<name>.npz`` for one task; returns its path.

    Args:
        name: a task name (``sk.tasks.names()``).
        wheel_path: the sbibm wheel with the published observations.
        num_samples: reference samples per observation.
        out_dir: the folder written to.
    """
    import jax

    from . import _MODULES

    if name not in _MODULES:
        raise ValueError(f"unknown task {name!r}; expected one of {sorted(_MODULES)}.")
    module = _MODULES[name]
    task_key = jax.random.fold_in(jax.random.key(SEED), zlib.crc32(name.encode()) % 2**31)
    if name in OWN_OBSERVATIONS:
        true_parameters, observations = simulate_observations(module.simulator(), task_key)
    else:
        with zipfile.ZipFile(wheel_path) as wheel:
            observations = np.stack(
                [read_sbibm_csv(wheel, name, k, "observation.csv")[0] for k in range(1, 11)]
            )
            true_parameters = np.stack(
                [read_sbibm_csv(wheel, name, k, "true_parameters.csv")[0] for k in range(1, 11)]
            )
    references = []
    for k in range(1, NUM_OBSERVATIONS + 1):
        start = time.perf_counter()
        key = jax.random.fold_in(task_key, k)
        x_o = observations[k - 1]
        samples = np.asarray(module.sample_reference_posterior(key, x_o, num_samples))
        if samples.shape != (num_samples, true_parameters.shape[1]):
            raise RuntimeError(f"{name} observation {k}: got samples of shape {samples.shape}.")
        if not np.isfinite(samples).all():
            raise RuntimeError(f"{name} observation {k}: non-finite reference samples.")
        references.append(samples)
        print(f"{name} observation {k}: {time.perf_counter() - start:.1f} s", flush=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.npz"
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(
        tmp,
        observations=observations.astype(np.float32),
        true_parameters=true_parameters.astype(np.float32),
        reference_samples=np.stack(references).astype(np.float32),
    )
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point (see the module docstring)."""
    from . import names

    parser = argparse.ArgumentParser(prog="python -m sbi_kit.tasks.generate", description=__doc__)
    parser.add_argument(
        "--tasks",
        nargs="+",
        default=names(),
        choices=names(),
        metavar="TASK",
        help=f"tasks to regenerate (default: all of {names()})",
    )
    parser.add_argument(
        "--sbibm-wheel",
        type=Path,
        default=None,
        help="path to sbibm-1.1.0-py2.py3-none-any.whl (else downloaded by pip)",
    )
    parser.add_argument(
        "--num-samples",
        type=int,
        default=NUM_REFERENCE_SAMPLES,
        help="reference samples per observation (default 10000)",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=DATA_DIR,
        help="output folder (default: the package's data folder)",
    )
    args = parser.parse_args(argv)

    import jax

    jax.config.update("jax_enable_x64", True)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.sbibm_wheel or download_sbibm_wheel(Path(tmp))
        for name in args.tasks:
            start = time.perf_counter()
            path = generate_task(name, wheel, num_samples=args.num_samples, out_dir=args.out_dir)
            size = path.stat().st_size / 1e6
            print(f"{name}: wrote {path} ({size:.2f} MB) in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
