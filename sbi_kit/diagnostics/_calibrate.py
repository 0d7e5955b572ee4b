"""``calibrate``: TARP, SBC and HPD coverage of a trained posterior in one jitted pass, and the
:class:`CalibrationReport` that ``sk.save`` stores with the posterior."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array
from scipy.stats import norm

from .._checks import check_finite, check_key
from .._types import Key
from ..inference import AbstractDensityPosterior, AbstractPosterior, AbstractPotentialPosterior
from ..simulators import Simulator, as_simulator, simulate
from ._coverage import coverage_summary, hpd_counts
from ._sbc import default_rank_bins, ranks, sbc_test
from ._tarp import (
    AbstractDistance,
    EuclideanDistance,
    check_metric,
    tarp_counts,
    tarp_summary,
)
from ._uniformity import ecdf_on_grid, grid

P = TypeVar("P", bound=AbstractPosterior)
_DEFAULT_METRIC = EuclideanDistance()

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

    Args:
        verdicts: verdicts of single tests (each one of ``CalibrationReport.VERDICTS``) or
            ``None`` for a test that did not run.

    Returns:
        the overall verdict.

    Examples:
        >>> import sbi_kit as sk
        >>> sk.diagnostics.combine_verdicts(["well calibrated", "overconfident", None])
        'overconfident'
        >>> sk.diagnostics.combine_verdicts(["underconfident", "overconfident"])
        'miscalibrated'
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

    Immutable and hashable (tuples only). :meth:`attach` gives a copy of a posterior that
    carries the report as ``posterior.calibration`` (metadata that travels with the posterior
    object outside its pytree, so jitted calls never hash it); ``sk.save`` stores it in the
    file's header and ``sk.load`` restores it as ``posterior.calibration``.

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

    Examples:
        >>> import sbi_kit as sk
        >>> ok = "well calibrated"
        >>> report = sk.diagnostics.CalibrationReport(
        ...     verdict=ok, num_simulations=2, num_posterior_samples=1, significance=0.01,
        ...     tarp_verdict=ok, tarp_atc=0.0, tarp_pvalue=1.0, tarp_alpha=(0.0, 1.0),
        ...     tarp_ecp=(0.0, 1.0), sbc_verdict=ok, sbc_names=("θ1",), sbc_pvalues=(1.0,),
        ...     sbc_bias=(0.0,), sbc_dispersion=(0.0,), sbc_ranks=((0,), (1,)))
        >>> report.metrics()["calibration_verdict"], report.ranks.shape
        ('well calibrated', (2, 1))
        >>> sk.diagnostics.CalibrationReport.from_dict(report.to_dict()) == report
        True
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

    def attach(self, posterior: P) -> P:
        """A copy of ``posterior`` that carries this report as ``posterior.calibration``.

        The copy shares the posterior's arrays; ``posterior`` itself is left unchanged. The
        report is metadata (``posterior.with_metadata(calibration=report)``), not a pytree
        field: a copy made by a pytree transformation (``jax.tree.map``, a jitted function's
        output) does not carry it.

        Args:
            posterior: a trained posterior (an :class:`~sbi_kit.inference.AbstractPosterior`).

        Returns:
            the copy, of the same class as ``posterior``.

        Raises:
            TypeError: if ``posterior`` is not an ``AbstractPosterior``.
        """
        if not isinstance(posterior, AbstractPosterior):
            raise TypeError(
                "CalibrationReport.attach: `posterior` must be an sk.inference.AbstractPosterior, "
                f"got {type(posterior).__name__}."
            )
        return posterior.with_metadata(calibration=self)

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


@eqx.filter_jit
def _run(posterior, key, theta, x, num_samples, has_density, batch_size, references, metric):
    """Samples, TARP counts, SBC ranks and HPD counts for all simulations (no Python loop)."""
    key_sample, key_ref = jax.random.split(key)
    keys = jax.random.split(key_sample, theta.shape[0])

    def one(args):
        k, xi, ti = args
        s = posterior.draw(k, xi, num_samples)
        if not has_density:
            return s, jnp.zeros((num_samples,), s.dtype), jnp.zeros((), s.dtype)
        lp = posterior.log_prob(jnp.concatenate([s, ti[None]]), xi)
        return s, lp[:-1], lp[-1]

    samples, lp_samples, lp_theta = jax.lax.map(one, (keys, x, theta), batch_size=batch_size)
    samples = jnp.swapaxes(samples, 0, 1)  # (L, n, d)
    lp_samples = lp_samples.T  # (L, n)
    t_counts = tarp_counts(key_ref, samples, theta, references, metric, True)
    r = ranks(samples, theta)
    if has_density:
        r = jnp.concatenate([r, ranks(-lp_samples[..., None], -lp_theta[:, None])], axis=1)
    h_counts = hpd_counts(lp_samples, lp_theta)
    return t_counts, r, h_counts


def _check_arguments(
    fn: str,
    key,
    posterior,
    simulator,
    num_simulations,
    num_posterior_samples,
    significance,
    metric,
    batch_size,
) -> tuple[Simulator, AbstractDistance]:
    """The simulator (of a task) and the TARP distance, once every argument is checked."""
    check_key(key, fn)
    sim = check_posterior_and_simulator(fn, posterior, simulator)
    for name, v in (
        ("num_simulations", num_simulations),
        ("num_posterior_samples", num_posterior_samples),
        ("batch_size", 1 if batch_size is None else batch_size),
    ):
        if not isinstance(v, int | np.integer) or v < 1:
            raise ValueError(f"{fn}: {name} must be a positive integer, got {v!r}.")
    if num_simulations < 2:
        raise ValueError(f"{fn}: needs at least 2 simulations, got {num_simulations}.")
    if not 0 < significance < 1:
        raise ValueError(f"{fn}: significance must lie in (0, 1), got {significance!r}.")
    metric = check_metric(metric, fn)
    return sim, metric


def check_posterior_and_simulator(fn: str, posterior, simulator) -> Simulator:
    """The simulator (of a task), once ``posterior`` is a trained posterior of its θ."""
    if not isinstance(posterior, AbstractPosterior):
        raise TypeError(
            f"{fn}: `posterior` must be a trained posterior (an sk.inference.AbstractPosterior "
            f"such as the result of sk.NPE().fit), got {type(posterior).__name__}."
        )
    sim = as_simulator(simulator)
    if posterior.dim_theta != sim.dim_theta:
        raise ValueError(
            f"{fn}: the posterior has dim_theta = {posterior.dim_theta} but the simulator's "
            f"prior has {sim.dim_theta}."
        )
    return sim


def _get_simulations(
    fn: str, key: Key, sim: Simulator, num_simulations: int, simulations
) -> tuple[Array, Array, int]:
    """``(theta, x, num_dropped)``: new simulations, or the held-out ones given, checked."""
    if simulations is None:
        sims = simulate(key, sim, int(num_simulations), progress=False)
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
    if theta.shape[0] < 2:
        raise ValueError(f"{fn}: fewer than 2 finite simulations ({num_dropped} dropped).")
    return theta, x, int(num_dropped)


def _check_references(
    fn: str, references, theta: Array, num_simulations: int, num_dropped: int
) -> str | Array:
    """``"random"``, or the TARP reference points as an array in the dtype of ``theta``."""
    if isinstance(references, str):
        if references != "random":
            raise ValueError(f"{fn}: references must be 'random' or an array, got {references!r}.")
        return references
    references = jnp.asarray(references)
    dim_theta = theta.shape[1]
    if references.shape != (num_simulations, dim_theta):
        raise ValueError(
            f"{fn}: `references` must have shape ({num_simulations}, {dim_theta}), got "
            f"{references.shape}."
        )
    if num_dropped:
        raise ValueError(
            f"{fn}: {num_dropped} simulations were dropped; pass "
            "references='random' or a simulator without failures."
        )
    return references.astype(theta.dtype)


def _check_sample_counts(fn: str, t_counts: Array, num_samples: int) -> None:
    """Refuses non-finite posterior samples (flagged by TARP counts above ``L``)."""
    counts = np.asarray(t_counts)
    bad = int(np.sum(counts > num_samples))
    if bad:
        raise ValueError(
            f"{fn}: the posterior drew NaN or inf samples for {bad} of {counts.shape[0]} "
            "simulations; calibration needs finite samples (check the trained estimator)."
        )


def _tarp_fields(t_counts: Array, num_samples: int, bins: int, significance: float) -> dict:
    """The TARP part of the report: verdict, ATC, one-sample KS p-value and the curve."""
    n = int(t_counts.shape[0])
    ecp = ecdf_on_grid(t_counts, num_samples, bins)
    alpha = grid(bins)
    atc, p_value = tarp_summary(ecp, alpha, num_sims=n)
    return dict(
        tarp_verdict=tarp_verdict(atc, p_value, significance),
        tarp_atc=float(atc),
        tarp_pvalue=float(p_value),
        tarp_alpha=_floats(alpha),
        tarp_ecp=_floats(ecp),
    )


def _sbc_fields(
    r: Array, names: tuple[str, ...], num_samples: int, num_bins: int | None, significance: float
) -> dict:
    """The SBC part of the report: verdict, per-column χ² p-values and shape scores, ranks."""
    r = np.asarray(r)
    n = r.shape[0]
    if num_bins is None:
        rank_bins = default_rank_bins(n, num_samples)
    else:
        rank_bins = min(int(num_bins), num_samples + 1)
    test = sbc_test(r, num_samples, num_bins=max(2, rank_bins))
    return dict(
        sbc_verdict=sbc_verdict(names, test.p_values, test.bias, test.dispersion, significance),
        sbc_names=names,
        sbc_pvalues=_floats(test.p_values),
        sbc_bias=_floats(test.bias),
        sbc_dispersion=_floats(test.dispersion),
        sbc_ranks=tuple(tuple(int(v) for v in row) for row in r),
    )


def _coverage_fields(h_counts: Array, num_samples: int, bins: int, significance: float) -> dict:
    """The HPD expected-coverage part of the report: verdict, signed area, KS p-value, curve."""
    n = int(h_counts.shape[0])
    coverage = ecdf_on_grid(h_counts, num_samples, bins)
    alpha = grid(bins)
    area, p_value = coverage_summary(alpha, coverage, num_sims=n)
    return dict(
        coverage_verdict=coverage_verdict(area, p_value, significance),
        coverage_area=area,
        coverage_pvalue=p_value,
        coverage_levels=_floats(alpha),
        coverage=_floats(coverage),
    )


def calibrate(
    key: Key,
    posterior: AbstractPosterior,
    simulator,
    num_simulations: int = 1000,
    *,
    num_posterior_samples: int = 1000,
    significance: float = 0.01,
    num_bins: int | None = None,
    references: str | Array = "random",
    metric: AbstractDistance = _DEFAULT_METRIC,
    batch_size: int | None = None,
    simulations: tuple[Array, Array] | None = None,
) -> CalibrationReport:
    """Checks a trained posterior's calibration with TARP, SBC and HPD expected coverage.

    Draws ``θ_i`` from the simulator's prior and ``x_i`` from the simulator
    (``sk.simulate``; non-finite simulations are dropped), then ``L`` posterior samples (and,
    where the posterior has a density, the log-densities) for every ``x_i`` in one jitted,
    batched pass (``lax.map`` over chunks of ``batch_size`` simulations, each chunk
    vmapped), and runs:

    - TARP (Lemos et al. 2023) with random reference points on min–max normalised θ:
      ATC and a one-sample KS test of the TARP credibilities;
    - SBC (Talts et al. 2018): ranks per parameter and of ``−log q(θ | x)``, a χ² uniformity
      test and shape scores per column;
    - expected coverage of HPD regions (Hermans et al. 2022).

    The ``−log q`` ranks and HPD coverage need ``log_prob``: they run for an
    :class:`~sbi_kit.inference.AbstractDensityPosterior` or an
    :class:`~sbi_kit.inference.AbstractPotentialPosterior` (whose ``log_prob`` is unnormalised,
    which both tests allow), and are left out for a posterior that only samples.

    Each test gives a verdict at level ``significance``; see ``docs/calibration.md`` and
    :func:`combine_verdicts` for how they are read and combined.

    Args:
        key: PRNG key.
        posterior: a trained posterior (an :class:`~sbi_kit.inference.AbstractPosterior`),
            e.g. the result of ``sk.NPE().fit``.
        simulator: an ``sk.Simulator`` or a task (``sk.tasks.get(name)``).
        num_simulations: number of (θ, x) pairs; 1,000 resolves miscalibration of a few %.
        num_posterior_samples: ``L``, posterior samples per simulation.
        significance: level of each test.
        num_bins: TARP/coverage grid size and SBC histogram bins; defaults as in
            :func:`tarp` and :func:`sbc_test`.
        references: TARP reference points, ``"random"`` or an array ``(num_simulations, d)``.
        metric: TARP distance, ``EuclideanDistance()`` (default) or ``ManhattanDistance()``.
        batch_size: simulations per vmapped chunk (bounds memory: ``batch_size · L`` samples
            and log-densities are live at once). ``None``: 50, or 1 for an MCMC posterior
            (vmapped NUTS makes every simulation wait for the slowest trajectory: 10
            simulations of an NLE two_moons posterior took 210 s in chunks of 10 and 86 s one
            by one).
        simulations: optional held-out pairs ``(theta, x)`` of shapes
            ``(num_simulations, dim_theta)`` and ``(num_simulations, *x_shape)``, drawn from
            the prior and the simulator, to use instead of simulating new ones.

    Returns:
        a :class:`CalibrationReport`; attach it with ``report.attach(posterior)`` so that
        ``sk.save`` stores it.

    Raises:
        TypeError: if ``posterior`` is not an ``AbstractPosterior``, ``simulator`` is neither a
            simulator nor a task, or ``metric`` is not a distance object.
        ValueError: on bad counts or shapes, a posterior whose ``dim_theta`` differs from the
            simulator's, or non-finite posterior samples.

    Examples:
        >>> import jax, sbi_kit as sk
        >>> task = sk.tasks.get("gaussian_linear")
        >>> theta, x = sk.simulate(jax.random.key(0), task, 300)
        >>> npe = sk.NPE(flow=sk.estimators.MAF(layers=1, width=8, depth=1),
        ...              training=sk.Training(max_epochs=2))
        >>> posterior = npe.fit(jax.random.key(1), theta, x, prior=task.prior, progress=False)
        >>> report = sk.diagnostics.calibrate(jax.random.key(2), posterior, task, 300,
        ...                                   num_posterior_samples=20)
        >>> report.verdict in sk.diagnostics.CalibrationReport.VERDICTS
        True
        >>> posterior = report.attach(posterior)   # sk.save(path, posterior) stores it
        >>> posterior.calibration.num_simulations
        300
    """
    fn = "calibrate"
    sim, metric = _check_arguments(
        fn,
        key,
        posterior,
        simulator,
        num_simulations,
        num_posterior_samples,
        significance,
        metric,
        batch_size,
    )
    if batch_size is None:
        batch_size = 1 if isinstance(posterior, AbstractPotentialPosterior) else 50
    key_sim, key_run = jax.random.split(key)
    theta, x, num_dropped = _get_simulations(fn, key_sim, sim, num_simulations, simulations)
    references = _check_references(fn, references, theta, num_simulations, num_dropped)
    # −log q ranks and HPD coverage need log_prob. An AbstractPotentialPosterior's is
    # unnormalised (off by a constant per x_i), which neither test notices: both only compare
    # log q at the truth with log q at samples given the same x_i.
    has_density = isinstance(posterior, AbstractDensityPosterior | AbstractPotentialPosterior)
    n, num_samples = int(theta.shape[0]), int(num_posterior_samples)
    t_counts, r, h_counts = _run(
        posterior,
        key_run,
        theta,
        x,
        num_samples,
        has_density,
        int(min(batch_size, n)),
        references,
        metric,
    )
    _check_sample_counts(fn, t_counts, num_samples)
    bins = max(1, n // 10) if num_bins is None else int(num_bins)
    names = tuple(sim.labels()) + ((LOG_DENSITY,) if has_density else ())
    tarp_fields = _tarp_fields(t_counts, num_samples, bins, significance)
    sbc_fields = _sbc_fields(r, names, num_samples, num_bins, significance)
    coverage_fields = (
        _coverage_fields(h_counts, num_samples, bins, significance) if has_density else {}
    )
    verdicts = (
        tarp_fields["tarp_verdict"],
        sbc_fields["sbc_verdict"],
        coverage_fields.get("coverage_verdict"),
    )
    return CalibrationReport(
        verdict=combine_verdicts(verdicts),
        num_simulations=n,
        num_posterior_samples=num_samples,
        significance=float(significance),
        num_dropped=num_dropped,
        **tarp_fields,
        **sbc_fields,
        **coverage_fields,
    )
