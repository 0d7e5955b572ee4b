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

    Examples:
        >>> import pathlib, tempfile
        >>> import matplotlib.pyplot as plt, numpy as np, sbi_kit.plotting as skp
        >>> rng = np.random.default_rng(0)
        >>> sets = {"a": rng.normal(size=(500, 2)), "b": rng.normal(1.0, 0.5, (500, 2))}
        >>> fig = skp.pair_plot(sets, labels=["μ", "σ"], true_parameters=[0.0, 1.0])
        >>> [ax.get_xlabel() for ax in fig.axes[2:]]  # the bottom row of the 2 x 2 grid
        ['μ', 'σ']
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     fig.savefig(pathlib.Path(tmp) / "pair_plot.png")
        >>> plt.close(fig)
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


# --- calibration plots (TARP, SBC, HPD coverage) --------------------------------------------


def _report_field(obj, name):
    """``obj.name`` if ``obj`` is a CalibrationReport-like object, else ``None``."""
    return getattr(obj, name, None) if hasattr(obj, "tarp_ecp") else None


def tarp_plot(ecp, alpha=None, *, ax=None, label: str = "TARP"):
    """The TARP curve: expected coverage against credibility level, with the diagonal.

    A calibrated posterior follows the diagonal. Below it for α > 1/2 (negative ATC): the
    posterior is too narrow (overconfident); above it: too wide (underconfident). With
    bootstrap replicates, the median and the 2.5–97.5 % band are drawn.

    Args:
        ecp: ``(K,)`` or ``(num_bootstrap, K)`` from :func:`sk.diagnostics.tarp`, or a
            :class:`~sbi_kit.diagnostics.CalibrationReport`.
        alpha: ``(K,)`` credibility levels (taken from the report if one is given).
        ax: optional matplotlib Axes to draw on.
        label: legend label.

    Returns:
        the matplotlib Figure.

    Examples:
        >>> import matplotlib.pyplot as plt, numpy as np, sbi_kit.plotting as skp
        >>> a = np.linspace(0, 1, 11)
        >>> fig = skp.tarp_plot(a ** 1.2, a)
        >>> fig.axes[0].get_xlabel()
        'credibility level α'
        >>> plt.close(fig)
    """
    if _report_field(ecp, "tarp_ecp") is not None:
        report = ecp
        ecp, alpha = np.asarray(report.tarp_ecp), np.asarray(report.tarp_alpha)
        label = f"{label} (ATC {report.tarp_atc:+.3f}, KS p {report.tarp_pvalue:.2g})"
    if alpha is None:
        raise ValueError("tarp_plot: pass alpha (the credibility levels) with the ECP values.")
    ecp, alpha = np.asarray(ecp, dtype=float), np.asarray(alpha, dtype=float)
    if ecp.shape[-1:] != alpha.shape or ecp.ndim not in (1, 2):
        raise ValueError(f"tarp_plot: ecp {ecp.shape} does not match alpha {alpha.shape}.")
    fig, ax = _figure(ax)
    ax.plot([0, 1], [0, 1], color="k", ls="--", lw=1, label="calibrated")
    if ecp.ndim == 2:
        lo, mid, hi = np.percentile(ecp, [2.5, 50, 97.5], axis=0)
        ax.fill_between(alpha, lo, hi, color="C0", alpha=0.3, lw=0, label="95 % bootstrap")
        ecp = mid
    ax.plot(alpha, ecp, color="C0", label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("credibility level α")
    ax.set_ylabel("expected coverage")
    ax.text(0.62, 0.08, "overconfident", transform=ax.transAxes, fontsize="small", color="0.4")
    ax.text(0.06, 0.88, "underconfident", transform=ax.transAxes, fontsize="small", color="0.4")
    ax.legend(loc="upper left", fontsize="small", bbox_to_anchor=(0.0, 0.83))
    fig.tight_layout()
    return fig


def coverage_plot(levels, coverage=None, *, ax=None, label: str = "HPD regions"):
    """Expected coverage of highest-posterior-density regions against their credibility.

    On the diagonal: calibrated. Below: the regions are too small (overconfident). Above:
    conservative (underconfident), usually the safer error.

    Args:
        levels: ``(K,)`` credibility levels from :func:`sk.diagnostics.expected_coverage`, or a
            :class:`~sbi_kit.diagnostics.CalibrationReport`.
        coverage: ``(K,)`` expected coverage (taken from the report if one is given).
        ax: optional matplotlib Axes.
        label: legend label.

    Returns:
        the matplotlib Figure.

    Examples:
        >>> import matplotlib.pyplot as plt, numpy as np, sbi_kit.plotting as skp
        >>> c = np.linspace(0, 1, 11)
        >>> fig = skp.coverage_plot(c, c ** 0.8)
        >>> fig.axes[0].get_xlabel()
        'credibility level'
        >>> plt.close(fig)
    """
    if _report_field(levels, "tarp_ecp") is not None:
        report = levels
        if report.coverage is None:
            raise ValueError("coverage_plot: this report has no coverage (no posterior density).")
        levels, coverage = np.asarray(report.coverage_levels), np.asarray(report.coverage)
        label = f"{label} (area {report.coverage_area:+.3f})"
    if coverage is None:
        raise ValueError("coverage_plot: pass the coverage values with the levels.")
    levels, coverage = np.asarray(levels, dtype=float), np.asarray(coverage, dtype=float)
    if levels.ndim != 1 or levels.shape != coverage.shape:
        raise ValueError(f"coverage_plot: levels {levels.shape} and coverage {coverage.shape}.")
    fig, ax = _figure(ax)
    ax.plot([0, 1], [0, 1], color="k", ls="--", lw=1, label="calibrated")
    ax.plot(levels, coverage, color="C1", label=label)
    ax.fill_between(levels, levels, coverage, where=coverage < levels, color="C3", alpha=0.2,
                    lw=0, label="overconfident")
    ax.fill_between(levels, levels, coverage, where=coverage >= levels, color="C2", alpha=0.2,
                    lw=0, label="conservative")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("credibility level")
    ax.set_ylabel("expected coverage")
    ax.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    return fig


def rank_histogram(
    ranks,
    num_posterior_samples: int | None = None,
    *,
    num_bins: int | None = None,
    labels: Sequence[str] | None = None,
    confidence: float = 0.99,
):
    """SBC rank histograms, one panel per column, with a binomial confidence band.

    Under exact inference each bin count is Binomial(num_sims, p_b), with ``p_b`` the bin's
    share of the ``L + 1`` possible ranks; the grey band holds ``confidence`` of that
    distribution. A U shape means an overconfident posterior, a dome an underconfident one, a
    slope a biased one (for ``-log q``: mass at high ranks is overconfident).

    Args:
        ranks: ``(num_sims, k)`` integer ranks from :func:`sk.diagnostics.sbc_ranks`, or a
            :class:`~sbi_kit.diagnostics.CalibrationReport`.
        num_posterior_samples: ``L`` (taken from the report if one is given).
        num_bins: histogram bins (default: about 20 simulations per bin, at most 50).
        labels: column names (the report's by default).
        confidence: coverage of the band.

    Returns:
        the matplotlib Figure.

    Examples:
        >>> import matplotlib.pyplot as plt, numpy as np, sbi_kit.plotting as skp
        >>> r = np.random.default_rng(0).integers(0, 101, size=(500, 2))
        >>> fig = skp.rank_histogram(r, 100)
        >>> len(fig.axes)  # one panel per column of ranks
        2
        >>> plt.close(fig)
    """
    from scipy.stats import binom

    from .diagnostics import default_rank_bins

    if _report_field(ranks, "sbc_ranks") is not None:
        report = ranks
        ranks = report.ranks
        num_posterior_samples = report.num_posterior_samples
        labels = labels if labels is not None else report.sbc_names
    if num_posterior_samples is None:
        raise ValueError("rank_histogram: pass num_posterior_samples (L) with the ranks.")
    r = np.asarray(ranks)
    r = r[:, None] if r.ndim == 1 else r
    if r.ndim != 2 or r.min() < 0 or r.max() > num_posterior_samples:
        raise ValueError(
            f"rank_histogram: ranks must be (num_sims, k) integers in 0..{num_posterior_samples}."
        )
    n, k = r.shape
    L = int(num_posterior_samples)
    bins = default_rank_bins(n, L) if num_bins is None else int(num_bins)
    share = np.bincount(np.arange(L + 1) * bins // (L + 1), minlength=bins) / (L + 1)
    lo = binom.ppf((1 - confidence) / 2, n, share)
    hi = binom.ppf((1 + confidence) / 2, n, share)
    labels = list(labels) if labels is not None else [f"θ{i + 1}" for i in range(k)]
    fig, axes = plt.subplots(1, k, figsize=(3.2 * k, 2.8), squeeze=False)
    centers = np.arange(bins)
    for j, ax in enumerate(axes[0]):
        counts = np.bincount(r[:, j] * bins // (L + 1), minlength=bins)
        ax.fill_between(np.arange(bins + 1) - 0.5, np.append(lo, lo[-1]), np.append(hi, hi[-1]),
                        step="post", color="0.85", lw=0, label=f"{confidence:.0%} band")
        ax.bar(centers, counts, width=1.0, color="C0", alpha=0.8, edgecolor="white", lw=0.3)
        ax.axhline(n / bins, color="k", lw=0.8, ls=":")
        ax.set_xlim(-0.5, bins - 0.5)
        ax.set_xticks([0, bins - 1], ["0", f"{L}"])
        ax.set_xlabel(f"rank of {labels[j] if j < len(labels) else f'column {j + 1}'}")
        if j == 0:
            ax.set_ylabel("simulations")
            ax.legend(fontsize="small", loc="upper center")
    fig.tight_layout()
    return fig


def _figure(ax):
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.2, 4.2))
        return fig, ax
    return ax.figure, ax
