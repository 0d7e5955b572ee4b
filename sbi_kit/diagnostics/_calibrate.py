"""``calibrate``: TARP, SBC and HPD coverage of a trained posterior in one jitted pass, and the
:class:`CalibrationReport` that ``sk.save`` stores with the posterior."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array
from scipy.stats import norm

from .._types import Key
from .._checks import check_finite, check_key
from ._coverage import coverage_summary, hpd_counts
from ._sbc import default_rank_bins, ranks, sbc_test
from ._tarp import tarp_counts, tarp_summary
from ._uniformity import ecdf_on_grid, grid

WELL = "well calibrated"
OVER = "overconfident"
UNDER = "underconfident"
MIXED = "miscalibrated"
VERDICTS = (WELL, OVER, UNDER, MIXED)

LOG_DENSITY = "-log q"
"""Name of the SBC statistic ``−log q(θ | x)`` in a report."""

ATC_TOLERANCE = 0.01
"""A significant TARP curve with ``|ATC|`` below this has no clear direction (``miscalibrated``)."""


def _floats(values) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(values, dtype=np.float64).ravel())


def combine_verdicts(verdicts) -> str:
    """The overall verdict from the tests' verdicts (``None`` entries are skipped).

    ``well calibrated`` if every test says so; ``overconfident`` (``underconfident``) if every
    test that found a problem says overconfident (underconfident); ``miscalibrated`` otherwise.
    """
    found = {v for v in verdicts if v is not None and v != WELL}
    if not found:
        return WELL
    return found.pop() if len(found) == 1 else MIXED


def tarp_verdict(atc: float, p_value: float, significance: float) -> str:
    """``well calibrated`` if ``p ≥ significance``; otherwise the sign of the ATC decides."""
    if p_value >= significance:
        return WELL
    if atc <= -ATC_TOLERANCE:
        return OVER
    if atc >= ATC_TOLERANCE:
        return UNDER
    return MIXED


def coverage_verdict(area: float, p_value: float, significance: float) -> str:
    """``well calibrated`` if ``p ≥ significance``; otherwise below the diagonal (area < 0) is
    overconfident, above it underconfident (conservative)."""
    if p_value >= significance:
        return WELL
    return OVER if area < 0 else UNDER


def sbc_verdict(
    names: tuple[str, ...],
    p_values,
    bias,
    dispersion,
    significance: float,
) -> str:
    """The SBC verdict, Bonferroni-corrected over the ``k`` rank columns.

    A column fails if its χ² p-value or the two-sided p-value of its dispersion z-score is
    below ``significance / k``. No failure: ``well calibrated``. Otherwise the direction comes
    from the failing columns' significant shape scores: for a marginal, a U-shaped histogram
    (dispersion > 0) is overconfident and a dome (< 0) underconfident; for ``−log q``, high
    ranks (bias > 0: the truth sits where q is low) are overconfident and low ranks
    underconfident. Agreeing directions give that verdict, anything else ``miscalibrated``.
    """
    k = len(names)
    level = significance / k
    z_crit = float(norm.isf(level / 2))
    directions = set()
    failed = False
    for name, p, b, s in zip(names, p_values, bias, dispersion, strict=True):
        p_disp = 2 * float(norm.sf(abs(s)))
        if p >= level and p_disp >= level:
            continue
        failed = True
        score = b if name == LOG_DENSITY else s
        if abs(score) >= z_crit:
            directions.add(OVER if score > 0 else UNDER)
    if not failed:
        return WELL
    return directions.pop() if len(directions) == 1 else MIXED


@dataclasses.dataclass(frozen=True, repr=False)
class CalibrationReport:
    """The result of :func:`calibrate`: numbers, curves and verdicts (see ``docs/calibration.md``).

    Immutable and hashable (tuples only), so it can sit on a posterior as a static field;
    ``sk.save`` stores it in the file's header and ``sk.load`` restores it as
    ``posterior.calibration``.

    Attributes:
        verdict: overall: ``"well calibrated"``, ``"overconfident"``, ``"underconfident"`` or
            ``"miscalibrated"`` (a problem without one direction).
        num_simulations: simulations used (after dropping non-finite ones).
        num_posterior_samples: posterior samples per simulation, ``L``.
        significance: the level of every test.
        tarp_verdict, tarp_atc, tarp_pvalue: TARP verdict, area-to-curve and one-sample KS
            p-value; ``tarp_alpha``, ``tarp_ecp`` the curve.
        sbc_verdict: SBC verdict; ``sbc_names`` the rank columns (parameters, then
            ``"-log q"`` when the posterior has a density); ``sbc_pvalues``, ``sbc_bias``,
            ``sbc_dispersion`` per column; ``sbc_ranks`` the ranks, ``(num_simulations, k)``.
        coverage_verdict, coverage_area, coverage_pvalue, coverage_levels, coverage: HPD
            expected coverage (``None`` when the posterior defines no density).
        num_dropped: simulations dropped because θ or x was NaN/inf.
    """

    VERDICTS: ClassVar[tuple[str, ...]] = VERDICTS

    verdict: str
    num_simulations: int
    num_posterior_samples: int
    significance: float
    tarp_verdict: str
    tarp_atc: float
    tarp_pvalue: float
    tarp_alpha: tuple[float, ...]
    tarp_ecp: tuple[float, ...]
    sbc_verdict: str
    sbc_names: tuple[str, ...]
    sbc_pvalues: tuple[float, ...]
    sbc_bias: tuple[float, ...]
    sbc_dispersion: tuple[float, ...]
    sbc_ranks: tuple[tuple[int, ...], ...]
    coverage_verdict: str | None = None
    coverage_area: float | None = None
    coverage_pvalue: float | None = None
    coverage_levels: tuple[float, ...] | None = None
    coverage: tuple[float, ...] | None = None
    num_dropped: int = 0

    def __post_init__(self):
        for name in ("verdict", "tarp_verdict", "sbc_verdict"):
            if getattr(self, name) not in VERDICTS:
                raise ValueError(f"CalibrationReport: {name} must be one of {VERDICTS}.")
        k = len(self.sbc_names)
        if not (len(self.sbc_pvalues) == len(self.sbc_bias) == len(self.sbc_dispersion) == k):
            raise ValueError("CalibrationReport: the SBC fields must have one entry per column.")
        if len(self.tarp_alpha) != len(self.tarp_ecp):
            raise ValueError("CalibrationReport: tarp_alpha and tarp_ecp differ in length.")

    # --- views -------------------------------------------------------------------------------
    @property
    def ranks(self) -> np.ndarray:
        """The SBC ranks as an integer array ``(num_simulations, k)``."""
        return np.asarray(self.sbc_ranks, dtype=np.int64).reshape(-1, len(self.sbc_names))

    def metrics(self) -> dict[str, Any]:
        """The headline numbers as a flat JSON-ready dict (for ``metrics.json``)."""
        out: dict[str, Any] = {
            "calibration_verdict": self.verdict,
            "num_simulations": self.num_simulations,
            "num_posterior_samples": self.num_posterior_samples,
            "significance": self.significance,
            "tarp_verdict": self.tarp_verdict,
            "tarp_atc": self.tarp_atc,
            "tarp_ks_pvalue": self.tarp_pvalue,
            "sbc_verdict": self.sbc_verdict,
            "sbc_pvalues": dict(zip(self.sbc_names, self.sbc_pvalues, strict=True)),
            "sbc_dispersion": dict(zip(self.sbc_names, self.sbc_dispersion, strict=True)),
            "sbc_bias": dict(zip(self.sbc_names, self.sbc_bias, strict=True)),
        }
        if self.coverage_verdict is not None:
            out |= {
                "coverage_verdict": self.coverage_verdict,
                "coverage_area": self.coverage_area,
                "coverage_ks_pvalue": self.coverage_pvalue,
            }
        return out

    def summary(self) -> str:
        """A few human-readable lines."""
        lines = [
            f"calibration: {self.verdict} ({self.num_simulations} simulations × "
            f"{self.num_posterior_samples} posterior samples, tests at level {self.significance})",
            f"  TARP: {self.tarp_verdict}; ATC = {self.tarp_atc:+.4f}, "
            f"KS p = {self.tarp_pvalue:.3g}",
            f"  SBC:  {self.sbc_verdict}; "
            + ", ".join(
                f"{n}: p = {p:.3g} (dispersion {s:+.1f})"
                for n, p, s in zip(
                    self.sbc_names, self.sbc_pvalues, self.sbc_dispersion, strict=True
                )
            ),
        ]
        if self.coverage_verdict is not None:
            lines.append(
                f"  HPD coverage: {self.coverage_verdict}; area = {self.coverage_area:+.4f}, "
                f"KS p = {self.coverage_pvalue:.3g}"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"CalibrationReport(verdict={self.verdict!r}, tarp_atc={self.tarp_atc:.4f}, "
            f"tarp_pvalue={self.tarp_pvalue:.3g}, sbc_verdict={self.sbc_verdict!r}, "
            f"num_simulations={self.num_simulations})"
        )

    __str__ = summary

    def attach(self, posterior):
        """A copy of ``posterior`` carrying this report as ``posterior.calibration``."""
        return dataclasses.replace(posterior, calibration=self)

    # --- serialisation (sk.save / sk.load) ---------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (lists for tuples)."""

        def plain(v):
            if isinstance(v, tuple):
                return [plain(e) for e in v]
            return v

        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CalibrationReport:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"CalibrationReport.from_dict: unknown fields {sorted(unknown)}.")

        def tup(v):
            if isinstance(v, list):
                return tuple(tup(e) for e in v)
            return v

        return cls(**{k: tup(v) for k, v in data.items()})


def _has_log_prob(posterior, theta: Array, x: Array) -> bool:
    try:
        eqx.filter_eval_shape(posterior.log_prob, theta[:1], x[0])
    except NotImplementedError:
        return False
    return True


@eqx.filter_jit
def _run(posterior, key, theta, x, num_samples, with_log_prob, batch_size, references, metric):
    """Samples, TARP counts, SBC ranks and HPD counts for all simulations (no Python loop)."""
    key_sample, key_ref = jax.random.split(key)
    keys = jax.random.split(key_sample, theta.shape[0])

    def one(args):
        k, xi, ti = args
        s = posterior.sample(k, xi, num_samples)
        if not with_log_prob:
            return s, jnp.zeros((num_samples,), s.dtype), jnp.zeros((), s.dtype)
        lp = posterior.log_prob(jnp.concatenate([s, ti[None]]), xi)
        return s, lp[:-1], lp[-1]

    samples, lp_samples, lp_theta = jax.lax.map(one, (keys, x, theta), batch_size=batch_size)
    samples = jnp.swapaxes(samples, 0, 1)  # (L, n, d)
    lp_samples = lp_samples.T  # (L, n)
    t_counts = tarp_counts(key_ref, samples, theta, references, metric, True)
    r = ranks(samples, theta)
    if with_log_prob:
        r = jnp.concatenate([r, ranks(-lp_samples[..., None], -lp_theta[:, None])], axis=1)
    h_counts = hpd_counts(lp_samples, lp_theta)
    return t_counts, r, h_counts


def calibrate(
    key: Key,
    posterior,
    simulator,
    num_simulations: int = 1000,
    *,
    num_posterior_samples: int = 1000,
    significance: float = 0.01,
    num_bins: int | None = None,
    references: str | Array = "random",
    metric: str = "euclidean",
    batch_size: int = 50,
    simulations: tuple[Array, Array] | None = None,
) -> CalibrationReport:
    """Checks a trained posterior's calibration with TARP, SBC and HPD expected coverage.

    Draws ``θ_i`` from the simulator's prior and ``x_i`` from the simulator
    (``sk.simulate``; non-finite simulations are dropped), then ``L`` posterior samples (and,
    where the posterior has ``log_prob``, the log-densities) for every ``x_i`` in one jitted,
    batched pass (``lax.map`` over chunks of ``batch_size`` simulations, each chunk
    vmapped), and runs:

    - TARP (Lemos et al. 2023) with random reference points on min–max normalised θ:
      ATC and a one-sample KS test of the TARP credibilities;
    - SBC (Talts et al. 2018): ranks per parameter and of ``−log q(θ | x)``, a χ² uniformity
      test and shape scores per column;
    - expected coverage of HPD regions (Hermans et al. 2022), if ``log_prob`` is defined.

    Each test gives a verdict at level ``significance``; see ``docs/calibration.md`` and
    :func:`combine_verdicts` for how they are read and combined.

    Args:
        key: PRNG key.
        posterior: a trained posterior with ``sample(key, x_o, n)`` (and ideally
            ``log_prob(theta, x_o)``), e.g. the result of ``sk.NPE().fit``.
        simulator: an ``sk.Simulator`` or a task (``sk.tasks.get(name)``).
        num_simulations: number of (θ, x) pairs; 1,000 resolves miscalibration of a few %.
        num_posterior_samples: ``L``, posterior samples per simulation.
        significance: level of each test.
        num_bins: TARP/coverage grid size and SBC histogram bins; defaults as in
            :func:`tarp` and :func:`sbc_test`.
        references: TARP reference points, ``"random"`` or an array ``(num_simulations, d)``.
        metric: TARP distance, ``"euclidean"`` or ``"manhattan"``.
        batch_size: simulations per vmapped chunk (bounds memory: ``batch_size · L`` samples
            and log-densities are live at once).
        simulations: optional held-out pairs ``(theta, x)`` of shapes
            ``(num_simulations, dim_theta)`` and ``(num_simulations, *x_shape)``, drawn from
            the prior and the simulator, to use instead of simulating new ones.

    Returns:
        a :class:`CalibrationReport`; attach it with ``report.attach(posterior)`` so that
        ``sk.save`` stores it.

    Examples:
        >>> import jax, sbi_kit as sk
        >>> task = sk.tasks.get("gaussian_linear")
        >>> theta, x = sk.simulate(jax.random.key(0), task, 500)
        >>> npe = sk.NPE(training=sk.Training(max_epochs=2))
        >>> posterior = npe.fit(jax.random.key(1), theta, x, prior=task.prior, progress=False)
        >>> report = sk.diagnostics.calibrate(jax.random.key(2), posterior, task, 100,
        ...                                   num_posterior_samples=50)
        >>> report.verdict in sk.diagnostics.CalibrationReport.VERDICTS
        True
        >>> posterior = report.attach(posterior)   # sk.save(path, posterior) stores it
        >>> posterior.calibration.num_simulations
        100
    """
    from ..simulators import simulate
    from ..simulators._simulate import as_simulator

    fn = "calibrate"
    check_key(key, fn)
    sim = as_simulator(simulator)
    for name, v in (
        ("num_simulations", num_simulations),
        ("num_posterior_samples", num_posterior_samples),
        ("batch_size", batch_size),
    ):
        if not isinstance(v, int | np.integer) or v < 1:
            raise ValueError(f"{fn}: {name} must be a positive integer, got {v!r}.")
    if num_simulations < 2:
        raise ValueError(f"{fn}: needs at least 2 simulations, got {num_simulations}.")
    if not 0 < significance < 1:
        raise ValueError(f"{fn}: significance must lie in (0, 1), got {significance!r}.")
    if metric not in ("euclidean", "manhattan"):
        raise ValueError(f"{fn}: metric must be 'euclidean' or 'manhattan', got {metric!r}.")
    if getattr(posterior, "dim_theta", sim.dim_theta) != sim.dim_theta:
        raise ValueError(
            f"{fn}: the posterior has dim_theta = {posterior.dim_theta} but the simulator's "
            f"prior has {sim.dim_theta}."
        )
    key_sim, key_run = jax.random.split(key)
    if simulations is None:
        sims = simulate(key_sim, sim, int(num_simulations), progress=False)
        theta, x = sims
        num_dropped = sims.num_dropped
    else:
        theta, x = (jnp.asarray(a) for a in simulations)
        if theta.shape != (num_simulations, sim.dim_theta) or x.shape[:1] != (num_simulations,):
            raise ValueError(
                f"{fn}: `simulations` must be (theta, x) with {num_simulations} rows and theta of "
                f"shape ({num_simulations}, {sim.dim_theta}); got {theta.shape} and {x.shape}."
            )
        check_finite(theta, "simulations[0]", fn)
        check_finite(x, "simulations[1]", fn)
        num_dropped = 0
    n = int(theta.shape[0])
    if n < 2:
        raise ValueError(f"{fn}: fewer than 2 finite simulations ({num_dropped} dropped).")
    if not isinstance(references, str):
        references = jnp.asarray(references)
        if references.shape != (num_simulations, sim.dim_theta):
            raise ValueError(
                f"{fn}: `references` must have shape ({num_simulations}, {sim.dim_theta}), got "
                f"{references.shape}."
            )
        if num_dropped:
            raise ValueError(
                f"{fn}: {num_dropped} simulations were dropped; pass "
                "references='random' or a simulator without failures."
            )
        references = references.astype(theta.dtype)
    elif references != "random":
        raise ValueError(f"{fn}: references must be 'random' or an array, got {references!r}.")
    with_log_prob = _has_log_prob(posterior, theta, x)
    L = int(num_posterior_samples)
    t_counts, r, h_counts = _run(
        posterior,
        key_run,
        theta,
        x,
        L,
        with_log_prob,
        int(min(batch_size, n)),
        references,
        metric,
    )
    bad = int(np.sum(np.asarray(t_counts) > L))
    if bad:
        raise ValueError(
            f"{fn}: the posterior drew NaN or inf samples for {bad} of {n} simulations; "
            "calibration needs finite samples (check the trained estimator)."
        )
    bins = max(1, n // 10) if num_bins is None else int(num_bins)
    # TARP
    ecp = ecdf_on_grid(t_counts, L, bins)
    alpha = grid(bins)
    atc, tarp_p = tarp_summary(ecp, alpha, num_sims=n)
    t_verdict = tarp_verdict(atc, tarp_p, significance)
    # SBC
    names = tuple(sim.labels()) + ((LOG_DENSITY,) if with_log_prob else ())
    rank_bins = default_rank_bins(n, L) if num_bins is None else min(int(num_bins), L + 1)
    test = sbc_test(np.asarray(r), L, num_bins=max(2, rank_bins))
    s_verdict = sbc_verdict(names, test.p_values, test.bias, test.dispersion, significance)
    # HPD coverage
    cov_fields: dict[str, Any] = {}
    c_verdict = None
    if with_log_prob:
        coverage = ecdf_on_grid(h_counts, L, bins)
        area, cov_p = coverage_summary(alpha, coverage, num_sims=n)
        c_verdict = coverage_verdict(area, cov_p, significance)
        cov_fields = dict(
            coverage_verdict=c_verdict,
            coverage_area=area,
            coverage_pvalue=cov_p,
            coverage_levels=_floats(alpha),
            coverage=_floats(coverage),
        )
    return CalibrationReport(
        verdict=combine_verdicts((t_verdict, s_verdict, c_verdict)),
        num_simulations=n,
        num_posterior_samples=L,
        significance=float(significance),
        tarp_verdict=t_verdict,
        tarp_atc=float(atc),
        tarp_pvalue=float(tarp_p),
        tarp_alpha=_floats(alpha),
        tarp_ecp=_floats(ecp),
        sbc_verdict=s_verdict,
        sbc_names=names,
        sbc_pvalues=_floats(test.p_values),
        sbc_bias=_floats(test.bias),
        sbc_dispersion=_floats(test.dispersion),
        sbc_ranks=tuple(tuple(int(v) for v in row) for row in np.asarray(r)),
        num_dropped=int(num_dropped),
        **cov_fields,
    )
