"""The public surface: what ``import symvg`` offers, and each module's ``__all__``."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import symvg


def test_every_public_name_resolves_and_is_documented():
    for name in symvg.__all__:
        obj = getattr(symvg, name)
        assert name == "__version__" or (obj.__doc__ or "").strip(), name
        assert f"{name}" in symvg.__doc__ or name.startswith("_") or name[0].isupper(), name


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'activations'"):
        symvg.activations  # the catalogue module lives in symvg.symbolic; `activation` is the function


def _modules():
    for info in pkgutil.walk_packages(symvg.__path__, "symvg."):
        if info.name != "symvg.__main__":
            yield info.name, info.ispkg


@pytest.mark.parametrize("name,ispkg", list(_modules()))
def test_all_lists_public_names_that_exist(name, ispkg):
    mod = importlib.import_module(name)
    if not hasattr(mod, "__all__"):
        assert ispkg or name.rpartition(".")[2].startswith("_"), f"{name} has no __all__"
        return
    private = [n for n in mod.__all__ if n.startswith("_")]
    missing = [n for n in mod.__all__ if not hasattr(mod, n)]
    assert not private and not missing, (name, private, missing)
