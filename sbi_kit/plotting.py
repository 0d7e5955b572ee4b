"""Plots (matplotlib): pair plots of posterior samples, loss curves and calibration plots.

Every function returns the matplotlib ``Figure`` and never calls ``show``; save it with
``fig.savefig(path)``. Importing this module does not choose a matplotlib backend (the
``sbi-kit`` command uses Agg); ``import sbi_kit`` imports it on first use of ``sk.plotting``.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D


def pair_plot(
    samples: dict[str, np.ndarray] | np.ndarray,
    *,
    labels: Sequence[str] | None = None,
    true_parameters: np.ndarray | None = None,
    title: str | None = None,
    bins: int = 40,
    levels: Sequence[float] = (0.5, 0.9),
    quantiles: tuple[float, float] = (0.005, 0.995),
    max_points: int = 2000,
):
    """Marginal histograms on the diagonal and credible-region contours below it.

    Every sample set stays visible where sets overlap: histograms are outlines over a light
    fill, and each pairwise panel shows a set as contour lines of its highest-density regions
    (``levels``, e.g. the 50 % and 90 % regions) over a translucent fill and a faint scatter
    of ``max_points`` draws. The axes span the central ``quantiles`` of every set (and the true
    parameters), not the prior, so a narrow posterior fills its panels and a few outlying
    draws do not stretch them; draws outside are left out. The diagonal panels carry the
    parameter names, the legend sits in the empty upper triangle (beside a 1-d plot), and
    ``title`` names the figure.

    Args:
        samples: an array ``(n, d)`` or ``{name: (n_k, d)}`` for several sets on one figure
            (drawn in order, each in its own colour).
        labels: names of the d parameters.
        true_parameters: optional ``(d,)`` point marked on every panel.
        title: optional figure title (e.g. task, observation and C2ST).
        bins: histogram bins per axis (the contours use a grid twice as fine, smoothed).
        levels: credibility levels of the contours, each in (0, 1).
        quantiles: the lower and upper quantile of every set that the axes must show.
        max_points: draws per set in the faint scatter (0 for none).

    Returns:
        the matplotlib Figure.

    Examples:
        >>> import pathlib, tempfile
        >>> import matplotlib.pyplot as plt, numpy as np, sbi_kit.plotting as skp
        >>> rng = np.random.default_rng(0)
        >>> sets = {"a": rng.normal(size=(500, 2)), "b": rng.normal(1.0, 0.5, (500, 2))}
        >>> sets["a"][0] = 1e6  # one outlying draw does not stretch the axes
        >>> fig = skp.pair_plot(sets, labels=["μ", "σ"], true_parameters=[0.0, 1.0], title="demo")
        >>> [ax.get_xlabel() for ax in fig.axes[2:]]  # the bottom row of the 2 x 2 grid
        ['μ', 'σ']
        >>> [fig.axes[0].get_title(), fig.axes[3].get_title()]  # the diagonal is labelled
        ['μ', 'σ']
        >>> bool(fig.axes[2].get_xlim()[1] < 10)
        True
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     fig.savefig(pathlib.Path(tmp) / "pair_plot.png")
        >>> plt.close(fig)
    """
    sets = samples if isinstance(samples, dict) else {"samples": samples}
    sets = {k: np.asarray(v, dtype=float) for k, v in sets.items()}
    dims = {v.shape[1] for v in sets.values() if v.ndim == 2}
    if not sets or len(dims) != 1 or any(v.ndim != 2 or len(v) == 0 for v in sets.values()):
        raise ValueError(
            f"pair_plot: every sample set must have shape (n, d) with n >= 1 and one d, got "
            f"{[v.shape for v in sets.values()]}."
        )
    if not all(0.0 < lv < 1.0 for lv in levels):
        raise ValueError(f"pair_plot: `levels` must lie in (0, 1), got {tuple(levels)}.")
    d = dims.pop()
    labels = list(labels) if labels is not None else [f"θ{i + 1}" for i in range(d)]
    if len(labels) != d:
        raise ValueError(f"pair_plot: {len(labels)} labels for {d} parameters.")
    truth = None if true_parameters is None else np.asarray(true_parameters, dtype=float)
    if truth is not None and truth.shape != (d,):
        raise ValueError(f"pair_plot: `true_parameters` must have shape ({d},), got {truth.shape}.")
    sets = {k: v[np.isfinite(v).all(axis=1)] for k, v in sets.items()}
    limits = _limits(list(sets.values()), truth, quantiles)
    colors = {name: f"C{k}" for k, name in enumerate(sets)}

    width = 2.3 * d + (2.6 if d == 1 else 0.8)
    fig, axes = plt.subplots(d, d, figsize=(width, 2.3 * d + 0.8), squeeze=False)
    for i in range(d):
        for j in range(d):
            ax = axes[i, j]
            if j > i:
                ax.axis("off")
                continue
            if i == j:
                _diagonal(ax, sets, colors, i, limits[i], bins)
                ax.set_title(labels[i], fontsize="medium")
                if truth is not None:
                    ax.axvline(truth[i], color="k", ls="--", lw=1.2, zorder=10)
            else:
                _pair(ax, sets, colors, j, i, limits[j], limits[i], bins, levels, max_points)
                ax.set_ylim(limits[i])
                if truth is not None:
                    ax.plot(truth[j], truth[i], "*", color="k", mec="w", mew=0.8, ms=11, zorder=10)
            ax.set_xlim(limits[j])
            if i == d - 1:
                ax.set_xlabel(labels[j])
            else:
                ax.tick_params(labelbottom=False)
            if j == 0 and i > 0:
                ax.set_ylabel(labels[i])
            elif i != j:
                ax.tick_params(labelleft=False)
    handles = [Line2D([], [], color=c, lw=2, label=name) for name, c in colors.items()]
    if truth is not None:
        style = dict(ls="--", lw=1.2) if d == 1 else dict(ls="none", marker="*", mec="w", ms=11)
        handles.append(Line2D([], [], color="k", label="true θ", **style))
    if levels and d > 1:
        shown = ", ".join(f"{lv:.0%}" for lv in sorted(levels))
        handles.append(Line2D([], [], color="0.4", lw=1, label=f"{shown} regions"))
    if title:
        fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    if d == 1:
        fig.subplots_adjust(right=0.5)
        fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.52, 0.85), frameon=False)
    else:
        top = axes[0, d - 1].get_position()
        fig.legend(
            handles=handles, loc="upper right", bbox_to_anchor=(top.x1, top.y1), fontsize="small"
        )
    return fig


def _limits(sets: list[np.ndarray], truth: np.ndarray | None, quantiles) -> np.ndarray:
    """Per-parameter ``(lo, hi)``: the central ``quantiles`` of every set, padded by 5 %."""
    q_lo, q_hi = quantiles
    parts = [np.quantile(v, [q_lo, q_hi], axis=0) for v in sets if len(v)]
    lo = np.min([p[0] for p in parts], axis=0)
    hi = np.max([p[1] for p in parts], axis=0)
    if truth is not None:
        ok = np.isfinite(truth)
        lo, hi = np.where(ok, np.minimum(lo, truth), lo), np.where(ok, np.maximum(hi, truth), hi)
    width = hi - lo
    pad = np.where(width > 0, 0.05 * width, np.maximum(0.5, 0.05 * np.abs(lo)))
    return np.stack([lo - pad, hi + pad], axis=1)


def _diagonal(ax, sets, colors, i, lim, bins):
    for name, v in sets.items():
        kw = dict(bins=bins, range=tuple(lim), density=True, color=colors[name])
        ax.hist(v[:, i], histtype="stepfilled", alpha=0.15, **kw)
        ax.hist(v[:, i], histtype="step", lw=1.5, **kw)
    ax.set_yticks([])


def _pair(ax, sets, colors, j, i, xlim, ylim, bins, levels, max_points):
    """Faint scatter of every set first, then each set's filled regions, then its lines."""
    from scipy.ndimage import gaussian_filter

    for name, v in sets.items():
        pts = v[:max_points]
        ax.scatter(pts[:, j], pts[:, i], s=2, alpha=0.08, lw=0, color=colors[name], rasterized=True)
    grids = {}
    for name, v in sets.items():
        h, xe, ye = np.histogram2d(v[:, j], v[:, i], bins=2 * bins, range=[xlim, ylim])
        h = gaussian_filter(h, 1.5)
        xc, yc = (xe[:-1] + xe[1:]) / 2, (ye[:-1] + ye[1:]) / 2
        grids[name] = (xc, yc, h.T, _density_levels(h, levels))
    for name, (xc, yc, h, thresholds) in grids.items():
        if thresholds:
            ax.contourf(
                xc, yc, h, levels=[thresholds[0], h.max()], colors=[colors[name]], alpha=0.18
            )
    for name, (xc, yc, h, thresholds) in grids.items():
        if thresholds:
            widths = np.linspace(1.0, 1.8, len(thresholds))
            ax.contour(xc, yc, h, levels=thresholds, colors=[colors[name]], linewidths=widths)


def _density_levels(h: np.ndarray, levels: Sequence[float]) -> list[float]:
    """Ascending density thresholds whose super-level sets hold ``levels`` of the mass."""
    total = h.sum()
    if total <= 0:
        return []
    flat = np.sort(h.ravel())[::-1]
    mass = np.cumsum(flat) / total
    out = {float(flat[min(np.searchsorted(mass, lv), flat.size - 1)]) for lv in levels}
    return sorted(t for t in out if h.min() < t < h.max())


def loss_curve(history):
    """Training and validation loss per epoch, with the kept epoch marked (and, with a
    learning-rate schedule, the epochs after which the rate was reduced).

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
    for i, epoch in enumerate(history.learning_rate_reductions):
        label = "learning rate reduced" if i == 0 else None
        ax.axvline(epoch + 1, color="0.6", ls="--", lw=0.8, label=label)
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
    ax.fill_between(
        levels,
        levels,
        coverage,
        where=coverage < levels,
        color="C3",
        alpha=0.2,
        lw=0,
        label="overconfident",
    )
    ax.fill_between(
        levels,
        levels,
        coverage,
        where=coverage >= levels,
        color="C2",
        alpha=0.2,
        lw=0,
        label="conservative",
    )
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
        ax.fill_between(
            np.arange(bins + 1) - 0.5,
            np.append(lo, lo[-1]),
            np.append(hi, hi[-1]),
            step="post",
            color="0.85",
            lw=0,
            label=f"{confidence:.0%} band",
        )
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
