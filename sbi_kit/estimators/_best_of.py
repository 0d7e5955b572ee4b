"""A choice between flow specs, made by ``fit`` from the held-out (validation) loss."""

from __future__ import annotations

import equinox as eqx

from ._flows import AbstractFlow


def _candidates(value) -> tuple:
    if not isinstance(value, tuple | list):
        raise TypeError(
            f"BestOf: `candidates` must be a tuple or list of flow specs, got {value!r}."
        )
    return tuple(value)


class BestOf(eqx.Module):
    """Several flow specs, of which ``fit`` keeps the one that generalises best.

    A method whose ``flow`` is ``BestOf(candidates)`` trains one network per candidate, each
    exactly as it would train alone (the same key, so the same initialisation seed, validation
    split, z-scoring and batches), and returns the posterior of the candidate with the lowest
    validation loss: the mean negative log-density of the held-out pairs, comparable across
    candidates because they share the split and the z-scoring. The returned posterior is
    bit-identical to a fit with that candidate alone; its ``method.flow`` is the chosen spec
    (so ``sk.save`` / ``sk.load`` see a plain flow) and its ``history.choice`` lists every
    candidate with its loss. Training costs the sum of the candidates' trainings. In
    ``sk.sequential``'s rounds every candidate is carried forward, and from round 2 on the
    choice is made by how well each candidate's networks of the previous round predicted the
    new round's simulations (``sk.inference.held_out_loss``), not by the validation loss.

    Why: no one flow family is best on every problem. On sbibm's tasks an affine
    autoregressive flow (``MAF``) learned slcp's Gaussian likelihood better than a spline flow
    (``NSF``), which was better on two_moons and sir; the validation loss picked the flow with
    the lower C2ST in nine of ten comparisons measured (the miss: sir at 10,000 simulations;
    docs/nle.md). It measures the fit averaged over the training distribution, not at one
    observation.

    Args:
        candidates: two or more distinct flow specs (:class:`AbstractFlow`), tried in order;
            a tie keeps the first.

    Raises:
        TypeError: a candidate that is not a flow spec, or ``candidates`` not a tuple / list.
        ValueError: fewer than two candidates, or the same spec twice.

    Examples:
        >>> import sbi_kit as sk
        >>> choice = sk.estimators.BestOf((sk.estimators.NSF(), sk.estimators.MAF()))
        >>> [type(f).__name__ for f in choice.candidates]
        ['NSF', 'MAF']
        >>> sk.NLE(flow=choice).flow == choice
        True
    """

    candidates: tuple[AbstractFlow, ...] = eqx.field(converter=_candidates)

    def __check_init__(self):
        if len(self.candidates) < 2:
            raise ValueError(
                f"BestOf: `candidates` must hold at least two flow specs, got "
                f"{len(self.candidates)}."
            )
        for i, flow in enumerate(self.candidates):
            if not isinstance(flow, AbstractFlow):
                raise TypeError(
                    f"BestOf: candidate {i} must be a flow spec such as sk.estimators.NSF(), "
                    f"got {flow!r}."
                )
        for i, flow in enumerate(self.candidates):
            if flow in self.candidates[:i]:
                raise ValueError(f"BestOf: candidate {i}, {flow!r}, appears twice.")
