"""How much of a JAX call's wall time went to tracing, lowering and XLA compilation.

JAX reports these durations through ``jax.monitoring``; :class:`CompileTimer` adds them up while it
is active. Tracing of a jitted function nested inside another can be reported inside the outer
trace, so ``trace`` may count a little twice; ``backend_compile`` and ``lowering`` do not nest.
"""

from __future__ import annotations

import collections

import jax

EVENTS = {
    "/jax/core/compile/jaxpr_trace_duration": "trace",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "lowering",
    "/jax/core/compile/backend_compile_duration": "backend_compile",
}


class CompileTimer:
    """Context manager: ``with CompileTimer() as ct: ...; ct.seconds`` (all compile work)."""

    def __init__(self):
        self.durations: dict[str, float] = collections.defaultdict(float)
        self.count = 0

    def _listener(self, event: str, duration: float, **_kwargs) -> None:
        name = EVENTS.get(event)
        if name is not None:
            self.durations[name] += float(duration)
            if name == "backend_compile":
                self.count += 1

    def __enter__(self) -> CompileTimer:
        jax.monitoring.register_event_duration_secs_listener(self._listener)
        return self

    def __exit__(self, *exc) -> None:
        jax.monitoring.unregister_event_duration_listener(self._listener)

    @property
    def seconds(self) -> float:
        return float(sum(self.durations.values()))

    def as_dict(self) -> dict:
        return {
            "seconds": self.seconds,
            "num_compiles": self.count,
            **{k: float(v) for k, v in self.durations.items()},
        }
