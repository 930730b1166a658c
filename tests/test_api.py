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


def test_import_is_light_and_views_register_on_first_display():
    """``import symvg`` loads no SymPy; a Derivation made without touching ``symvg.*`` names still shows in a
    notebook, its views loaded on the first display (symvg.display.defer)."""
    import subprocess
    import sys

    probe = ("import sys, symvg\nprint('sympy' in sys.modules)\n"
             "from symvg.symbolic.chain import Chain\nfrom symvg.symbolic.derive import derive\n"
             "d = derive(Chain(2, 'relu'), wrt=1)\nprint(d._repr_latex_().startswith('$$'), bool(d._repr_markdown_()))")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert r.stdout.split() == ["False", "True", "True"], r.stdout + r.stderr
