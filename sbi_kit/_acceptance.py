"""Rejection in batches: keep the accepted rows of a stream of draws until there are enough.

Shared by the tasks' box-truncated reference samplers (``tasks/_rejection.py``) and TSNPE's
truncated proposals (``inference/_snpe_rounds.py``); each caller chooses its own draws, keys
and acceptance test.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def accept_in_batches(
    draw: Callable[[int], np.ndarray],
    accept: Callable[[np.ndarray], np.ndarray],
    num_samples: int,
    max_batches: int,
) -> tuple[np.ndarray | None, int]:
    """Calls ``draw(i)`` for ``i = 0, 1, …`` and keeps the rows where ``accept`` holds, in order.

    Keeping the first ``num_samples`` accepted rows of an i.i.d. stream gives exact samples of
    the draws' distribution restricted to the accepted set.

    Args:
        draw: ``draw(i) -> (n, d)`` the ``i``-th batch of draws.
        accept: ``accept(batch) -> (n,)`` booleans.
        num_samples: rows wanted.
        max_batches: batches drawn at most.

    Returns:
        ``(rows, accepted)``: the first ``num_samples`` accepted rows (``None`` if
        ``max_batches`` batches did not give enough) and the number of rows accepted in all.

    Examples:
        >>> import numpy as np
        >>> rows, n = accept_in_batches(lambda i: np.arange(4.0)[:, None] + 4 * i,
        ...                             lambda b: b[:, 0] % 2 == 0, 3, 10)
        >>> rows[:, 0].tolist(), n
        ([0.0, 2.0, 4.0], 4)
    """
    kept: list[np.ndarray] = []
    accepted = 0
    for i in range(max_batches):
        batch = np.asarray(draw(i))
        inside = np.asarray(accept(batch), dtype=bool)
        kept.append(batch[inside])
        accepted += int(inside.sum())
        if accepted >= num_samples:
            return np.concatenate(kept)[:num_samples], accepted
    return None, accepted
