"""JAX's persistent compilation cache, on by default for sbi_kit.

A compiled training epoch of a neural spline flow takes seconds to build with XLA on a CPU; the
same program in a later Python process (another seed, another script, the next test file) is
read back from disk in milliseconds. Importing sbi_kit points JAX's persistent cache at a
folder unless the user already chose one:

* ``$SBI_KIT_CACHE_DIR`` when set (``none`` / ``off`` / empty switches the cache off);
* otherwise ``$XDG_CACHE_HOME/sbi_kit/xla`` or ``~/.cache/sbi_kit/xla``.

:func:`set_compilation_cache` changes the folder, or switches the cache off, at run time.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import jax
from jax.experimental.compilation_cache import compilation_cache as _jax_cache

MIN_COMPILE_SECONDS = 0.0
"""Programs that compiled faster than this are not written to the cache."""

OFF_VALUES = ("", "none", "off")
"""Values of ``SBI_KIT_CACHE_DIR`` (and the CLI's ``--cache-dir``) that switch the cache off."""


def default_compilation_cache_dir() -> Path | None:
    """The folder sbi_kit uses when nothing else was chosen, or ``None`` if switched off."""
    chosen = os.environ.get("SBI_KIT_CACHE_DIR")
    if chosen is not None:
        return None if chosen.strip().lower() in OFF_VALUES else Path(chosen).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sbi_kit" / "xla"


def set_compilation_cache(path: str | os.PathLike | None) -> Path | None:
    """Points JAX's persistent compilation cache at ``path`` (created if missing), or off.

    The cache holds compiled XLA programs keyed by the program, the JAX version and the device,
    so a stale entry is never used for another program; deleting the folder is always safe.

    Args:
        path: a folder, or ``None`` to switch the persistent cache off.

    Returns:
        the folder in use, or ``None``.

    Raises:
        TypeError: if ``path`` is neither a path nor ``None``.
        ValueError: if the folder cannot be created.

    Examples:
        >>> import tempfile, sbi_kit as sk
        >>> folder = sk.set_compilation_cache(tempfile.mkdtemp())
        >>> folder.is_dir()
        True
        >>> sk.set_compilation_cache(None) is None
        True
    """
    if path is None:
        jax.config.update("jax_compilation_cache_dir", None)
        _jax_cache.reset_cache()  # JAX opens its cache once; make it read the new setting
        return None
    if not isinstance(path, str | os.PathLike):
        raise TypeError(
            f"set_compilation_cache: `path` must be a folder path or None, got {path!r}."
        )
    folder = Path(path).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(
            f"set_compilation_cache: the folder {str(folder)!r} cannot be created: {e}"
        ) from None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    _jax_cache.reset_cache()
    return folder


def enable_default_compilation_cache() -> Path | None:
    """What importing sbi_kit does: the default folder, unless the user chose one already.

    A folder that cannot be created gives a warning and no cache (never an import error).
    """
    if jax.config.jax_compilation_cache_dir:
        return Path(jax.config.jax_compilation_cache_dir)
    folder = default_compilation_cache_dir()
    if folder is None:
        return None
    try:
        return set_compilation_cache(folder)
    except ValueError as e:
        warnings.warn(
            f"sbi_kit: compiling without a persistent cache ({e}); set SBI_KIT_CACHE_DIR to a "
            "writable folder, or to 'off'.",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
