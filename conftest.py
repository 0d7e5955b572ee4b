"""Settings for the whole test run (the tests in ``tests/`` and the package's doctests).

XLA compilation is most of the default run's time on a fresh machine: the tests use tiny
problems, so each compiled program runs for milliseconds after compiling for 0.1-5 s. The test
run therefore asks XLA's CPU backend for cheap code generation (no LLVM optimisation, the
classic emitters instead of the fusion emitters). This changes how fast the compiled code runs,
not what it computes; tests/README.md has the measured effect. It is set here, before any JAX
computation initialises the backend, and applies to worker processes and subprocesses because
it is an environment variable. A flag already in ``XLA_FLAGS`` is left as the user set it.
"""

import os

TEST_XLA_FLAGS = {
    "--xla_backend_optimization_level": "0",
    "--xla_cpu_use_fusion_emitters": "false",
}


def _with_test_flags(existing: str) -> str:
    chosen = {part.split("=", 1)[0] for part in existing.split()}
    added = [f"{flag}={value}" for flag, value in TEST_XLA_FLAGS.items() if flag not in chosen]
    return " ".join([existing, *added]).strip()


os.environ["XLA_FLAGS"] = _with_test_flags(os.environ.get("XLA_FLAGS", ""))
