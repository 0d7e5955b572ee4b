"""The figures of docs/pfn.md: predictive bands of the shipped GP-PFN and LC-PFN.

python benchmarks/pfn_figures.py          # writes docs/img/pfn-gp.png and docs/img/pfn-lc.png
"""

from __future__ import annotations

from pathlib import Path

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import sbi_kit as sk

IMG = Path(__file__).resolve().parents[1] / "docs" / "img"


def gp_figure():
    pfn = sk.PFN.pretrained("gp")
    kernel, noise = sk.pfn.RBF(lengthscale=0.2, outputscale=1.0), 0.1
    data = sk.pfn.GPPrior(kernel, noise_std=noise).sample(jax.random.key(7), 50)
    x, y = np.asarray(data.x), np.asarray(data.y)
    grid = np.linspace(0, 1, 200)[:, None]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
    for ax, n in zip(axes, (3, 10, 40), strict=True):
        d = pfn.predict(x[:n], y[:n], grid)
        lo, hi = (np.asarray(d.icdf(np.full(200, q, np.float32))) for q in (0.05, 0.95))
        m, v = sk.pfn.gp_predictive(kernel, noise, x[:n], y[:n], grid)
        ax.fill_between(grid[:, 0], lo, hi, color="C0", alpha=0.3, label="PFN 90 % band")
        ax.plot(grid[:, 0], np.asarray(d.mean), "C0", label="PFN mean")
        ax.plot(grid[:, 0], m, "k--", lw=1, label="exact GP mean")
        ax.plot(grid[:, 0], m - 1.645 * np.sqrt(v), "k:", lw=1, label="exact GP 90 % band")
        ax.plot(grid[:, 0], m + 1.645 * np.sqrt(v), "k:", lw=1)
        ax.plot(x[:n, 0], y[:n], "o", color="C3", ms=4, label="context")
        ax.set_title(f"{n} context points")
        ax.set_xlabel("x")
    axes[0].set_ylabel("y")
    axes[0].legend(fontsize=8, loc="lower left")
    fig.suptitle("sk.PFN.pretrained('gp'): one forward pass against the exact GP predictive")
    fig.tight_layout()
    fig.savefig(IMG / "pfn-gp.png", dpi=110)
    plt.close(fig)


def lc_figure():
    pfn = sk.PFN.pretrained("lc")
    prior = sk.pfn.LearningCurvePrior(num_epochs=100)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=False)
    for ax, seed, n in zip(axes, (3, 11, 21), (10, 20, 40), strict=True):
        curve = np.asarray(prior.sample(jax.random.key(seed), 100).y)
        e = sk.pfn.extrapolate(pfn, curve[:n], levels=(0.05, 0.25, 0.5, 0.75, 0.95))
        ax.fill_between(
            e.epochs, e.quantiles[0], e.quantiles[4], color="C0", alpha=0.2, label="90 % band"
        )
        ax.fill_between(
            e.epochs, e.quantiles[1], e.quantiles[3], color="C0", alpha=0.35, label="50 % band"
        )
        ax.plot(e.epochs, e.quantiles[2], "C0", label="median")
        ax.plot(np.arange(1, n + 1), curve[:n], "o", color="C3", ms=3, label="observed")
        ax.plot(np.arange(n + 1, 101), curve[n:], ".", color="0.5", ms=2, label="held out")
        p = e.probability_above(float(curve[:n].max()))
        ax.set_title(f"{n} epochs seen; P(final > best so far) = {p:.2f}", fontsize=10)
        ax.set_xlabel("epoch")
    axes[0].set_ylabel("performance")
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle("sk.pfn.extrapolate with sk.PFN.pretrained('lc'): curves from the LC prior")
    fig.tight_layout()
    fig.savefig(IMG / "pfn-lc.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    gp_figure()
    lc_figure()
