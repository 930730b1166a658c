"""The public surface: what ``import symvg`` offers, and each module's ``__all__``."""

from __future__ import annotations

import dataclasses
import importlib
import json
import pkgutil

import pytest
import sympy as sp

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


# Frozen dataclasses that are not results, each with why; every other public one is a result and offers the
# view protocol (symvg.display.Result): as_dict() for JSON, str() for text, a Jupyter repr.
NOT_RESULTS = {
    "symvg.atomic.Target": "input: where an output file goes",
    "symvg.engines.cuda.ChainSource": "generated CUDA source, an engine's internal",
    "symvg.engines.cuda.Draw": "input: what a drawn kernel draws (the key, the scales)",
    "symvg.engines.forms.Forms": "the local forms the engines print kernels from, an engine's internal",
    "symvg.engines.csource.KernelSource": "generated kernel source, an engine's internal",
    "symvg.engines.kernels.Local": "a name inside generated kernel source",
    "symvg.engines.numeric.Compiled": "a compiled kernel, not a value to show",
    "symvg.engines.registry.Request": "input: a validated request to the engines",
    "symvg.engines.registry.Route": "an engine's choice, internal to the registry",
    "symvg.engines.registry.Fused": "an engine entry, not a value",
    "symvg.engines.registry.Chunked": "an engine entry, not a value",
    "symvg.engines.registry.Cuda": "an engine entry, not a value",
    "symvg.engines.chainrule.Step": "data: one assignment of the chain rule, which each engine prints",
    "symvg.engines.registry.Evaluation": "an (N, M) array and the engine that made it: the array is the value",
    "symvg.logs.records.Record": "input: one row of a training log",
    "symvg.logs.records.LayerLog": "input: a training log's series, what diagnose reads",
    "symvg.logs.records.GradientLog": "input: a training log, what diagnose reads",
    "symvg.symbolic.activations.Activation": "input: a catalogue entry chains are built from",
    "symvg.symbolic.chain.Chain": "input: the network described",
    "symvg.views.notation.Notation": "configuration of a printer",
}
NOT_YET: dict[str, str] = {}  # modules whose results are still being given the protocol: none


def _public_dataclasses() -> dict[str, type]:
    found = {}
    for name, _ in _modules():
        mod = importlib.import_module(name)
        for attr in getattr(mod, "__all__", ()):
            obj = getattr(mod, attr)
            if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__dataclass_params__.frozen:
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return found


def test_every_result_offers_the_view_protocol():
    types = _public_dataclasses()
    lacking = {}
    for name, cls in types.items():
        if name in NOT_RESULTS or cls.__module__ in NOT_YET:
            continue
        missing = [] if callable(getattr(cls, "as_dict", None)) else ["as_dict"]
        if not any(callable(getattr(cls, m, None)) for m in ("_repr_markdown_", "_repr_latex_")):
            missing.append("_repr_markdown_ or _repr_latex_")
        if cls.__str__ is object.__str__:
            missing.append("__str__")
        if missing:
            lacking[name] = missing
    assert not lacking, f"results without the view protocol (derive from symvg.display.Result): {lacking}"
    assert not set(NOT_RESULTS) - set(types), f"exempt types that no longer exist: {set(NOT_RESULTS) - set(types)}"


def test_results_show_as_json_text_and_markdown():
    d = symvg.derive(symvg.Chain(2, "tanh"))
    results = [d, d.factors[0], symvg.depth_bound("sigmoid", 1, layers=5000, tol="1e-6"),
               symvg.regime("sigmoid", 1, 10), symvg.underflow("0.25", "float16"),
               symvg.update("0.25", "0.01", grad="0.004125", dtype="float16"), symvg.relu.AlivePaths(3, 8, 0, 1, sp.Rational(1, 8))]
    for r in results:
        data = json.loads(json.dumps(r.as_dict(), allow_nan=False))  # JSON has no nan/inf: none may slip in
        assert isinstance(data, dict) and data, type(r)
        assert str(r).strip() and not str(r).startswith(type(r).__name__ + "("), type(r)  # a view, not the repr
        assert str(r) in r._repr_markdown_() or r._repr_markdown_().strip(), type(r)
    bound = results[2].as_dict()
    assert bound["bound"] == "(1/4)**5000" and bound["bound_value"] == 0.0  # exact as a string, the float beside it
    assert "vanishes" in str(results[2]) and str(results[2].decision) == results[2].decision.text


def test_import_is_light_and_views_register_on_first_display():
    """``import symvg`` loads no SymPy; a Derivation made without touching ``symvg.*`` names still shows in a
    notebook, its views loaded on the first display (symvg.display.VIEWS)."""
    import subprocess
    import sys

    probe = ("import sys, symvg\nprint('sympy' in sys.modules)\n"
             "from symvg.symbolic.chain import Chain\nfrom symvg.symbolic.derive import derive\n"
             "d = derive(Chain(2, 'relu'), wrt=1)\nprint(d._repr_latex_().startswith('$$'), bool(d._repr_markdown_()))")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert r.stdout.split() == ["False", "True", "True"], r.stdout + r.stderr
