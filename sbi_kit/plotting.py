"""Plots (matplotlib): pair plots of posterior samples and training loss curves.

Every function returns the matplotlib ``Figure`` and never calls ``show``; save it with
``fig.savefig(path)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def pair_plot(
    samples: dict[str, np.ndarray] | np.ndarray,
    *,
    labels: Sequence[str] | None = None,
    true_parameters: np.ndarray | None = None,
    bins: int = 40,
    max_points: int = 5000,
):
    """Histograms on the diagonal and scatter plots below it, for one or more sample sets.

    Args:
        samples: an array ``(n, d)`` or ``{name: (n_k, d)}`` for several sets on one figure.
        labels: names of the d parameters.
        true_parameters: optional ``(d,)`` point marked on every panel.
        bins: histogram bins.
        max_points: points per set in the scatter panels.

    Returns:
        the matplotlib Figure.
    """
    sets = samples if isinstance(samples, dict) else {"samples": samples}
    sets = {k: np.asarray(v) for k, v in sets.items()}
    dims = {v.shape[1] for v in sets.values() if v.ndim == 2}
    if len(dims) != 1 or any(v.ndim != 2 for v in sets.values()):
        raise ValueError(
            f"pair_plot: every sample set must have shape (n, d) with one d, got "
            f"{[v.shape for v in sets.values()]}."
        )
    d = dims.pop()
    labels = list(labels) if labels is not None else [f"θ{i + 1}" for i in range(d)]
    fig, axes = plt.subplots(d, d, figsize=(2.2 * d + 1, 2.2 * d + 1), squeeze=False)
    lo = np.min([v.min(axis=0) for v in sets.values()], axis=0)
    hi = np.max([v.max(axis=0) for v in sets.values()], axis=0)
    for i in range(d):
        for j in range(d):
            ax = axes[i, j]
            if j > i:
                ax.axis("off")
                continue
            for k, (name, v) in enumerate(sets.items()):
                color = f"C{k}"
                if i == j:
                    ax.hist(
                        v[:, i],
                        bins=bins,
                        range=(lo[i], hi[i]),
                        density=True,
                        histtype="step",
                        color=color,
                        label=name,
                    )
                else:
                    pts = v[:max_points]
                    ax.scatter(pts[:, j], pts[:, i], s=1, alpha=0.3, color=color, rasterized=True)
            if true_parameters is not None:
                tp = np.asarray(true_parameters)
                if i == j:
                    ax.axvline(tp[i], color="k", lw=1)
                else:
                    ax.plot(tp[j], tp[i], "k+", ms=8)
            if i == d - 1:
                ax.set_xlabel(labels[j])
            if j == 0 and i > 0:
                ax.set_ylabel(labels[i])
    axes[0, 0].legend(fontsize="small", loc="upper left")
    fig.tight_layout()
    return fig


def loss_curve(history):
    """Training and validation loss per epoch, with the kept epoch marked.

    Args:
        history: a :class:`sk.History` (``posterior.history``).

    Returns:
        the matplotlib Figure.
    """
    fig, ax = plt.subplots(figsize=(5, 3.5))
    epochs = np.arange(1, len(history.train_loss) + 1)
    ax.plot(epochs, history.train_loss, label="training")
    ax.plot(epochs, history.validation_loss, label="validation")
    if history.best_epoch >= 0:
        ax.axvline(history.best_epoch + 1, color="k", ls=":", lw=1, label="kept")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (negative log-density)")
    ax.legend()
    fig.tight_layout()
    return fig
