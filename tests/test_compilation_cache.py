"""sbi_kit switches on JAX's persistent compilation cache on import; users can move it or
switch it off."""

from pathlib import Path

import jax
import pytest

import sbi_kit as sk
from sbi_kit._compilation_cache import (
    default_compilation_cache_dir,
    enable_default_compilation_cache,
)


def test_the_default_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("SBI_KIT_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_compilation_cache_dir() == tmp_path / "sbi_kit" / "xla"
    monkeypatch.setenv("SBI_KIT_CACHE_DIR", str(tmp_path / "mine"))
    assert default_compilation_cache_dir() == tmp_path / "mine"
    for off in ("off", "none", "", " OFF "):
        monkeypatch.setenv("SBI_KIT_CACHE_DIR", off)
        assert default_compilation_cache_dir() is None


def test_set_compilation_cache_moves_it_and_switches_it_off(tmp_path, restore_compilation_cache):
    folder = sk.set_compilation_cache(tmp_path / "a" / "b")
    assert folder == tmp_path / "a" / "b" and folder.is_dir()
    assert jax.config.jax_compilation_cache_dir == str(folder)
    assert sk.set_compilation_cache(None) is None
    assert jax.config.jax_compilation_cache_dir is None


def test_a_folder_the_user_chose_is_kept(tmp_path, restore_compilation_cache, monkeypatch):
    sk.set_compilation_cache(tmp_path / "chosen")
    monkeypatch.setenv("SBI_KIT_CACHE_DIR", str(tmp_path / "other"))
    assert enable_default_compilation_cache() == tmp_path / "chosen"
    assert not (tmp_path / "other").exists()


def test_an_unusable_default_folder_warns_and_compiles_without_a_cache(
    tmp_path, restore_compilation_cache, monkeypatch
):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    sk.set_compilation_cache(None)
    monkeypatch.setenv("SBI_KIT_CACHE_DIR", str(blocker / "xla"))
    with pytest.warns(RuntimeWarning, match="compiling without a persistent cache"):
        assert enable_default_compilation_cache() is None
    assert jax.config.jax_compilation_cache_dir is None


def test_importing_sbi_kit_switched_the_cache_on_unless_asked_not_to():
    import os

    chosen = os.environ.get("SBI_KIT_CACHE_DIR")
    if chosen is not None and chosen.strip().lower() in ("", "none", "off"):
        pytest.skip("this run switched the cache off")
    assert jax.config.jax_compilation_cache_dir is not None
    assert Path(jax.config.jax_compilation_cache_dir).is_dir()
