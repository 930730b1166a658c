"""symvg: why gradients vanish (or explode), derived exactly.

Everything a user needs is importable from here; the layers below (``symvg.symbolic``, ``symvg.engines``,
``symvg.theory``, ``symvg.views``, …; see docs/architecture.md) are there for reading and extending.

describe and derive   :class:`Chain`, :func:`derive` (a :class:`Derivation`, factor by factor),
                      :func:`activation` (a catalogue entry: φ, φ', γ = sup|φ'| proved), :class:`Activation`
prove                 :func:`depth_bound` (the depth law and what it proves), :func:`regime` (floor and
                      ceiling at one depth), :func:`decide` (the one verdict every command prints)
evaluate              :func:`gradients` (every layer's dL/dw_k for many samples), :func:`sample` (random
                      networks, as ``symvg eval``)
floats                :func:`underflow`, :func:`update`
show                  :func:`text`, :func:`unicode`, :func:`latex`, :func:`markdown` (a derivation)
diagnose a run        :func:`read_log`, then ``symvg.diagnose.diagnose``
theory (modules)      ``worked``, ``relu``, ``residual``, ``lstm``, ``meanfield``, ``matrices``, ``spectrum``,
                      ``rnn``, ``clipping``, ``skipbn``
errors                :class:`SymvgError` and its two families, :class:`SymvgInputError` (bad input: the CLI
                      exits 2) and :class:`SymvgRuntimeError` (exit 1)

Every name loads on first use, so ``import symvg`` costs no SymPy, and every CLI command (``symvg --help``
too) pays only for what it touches.

>>> import symvg
>>> d = symvg.derive(symvg.Chain(3, "sigmoid"), wrt=1)
>>> len(d.factors), symvg.activation("sigmoid").gamma
(7, 1/4)
>>> symvg.depth_bound("sigmoid", weight=1, layers=20, tol="1e-6").verdict
'vanish'
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from symvg.display import VIEWS as _VIEWS  # noqa: E402
from symvg.errors import SymvgError, SymvgInputError, SymvgRuntimeError  # noqa: E402

# Views are loaded the first time a result of theirs is shown: they need SymPy (and some, more), which
# neither `import symvg` nor `symvg --help` should pay for.
_VIEWS.update({"symvg.symbolic.derive": "symvg.views.derivation", "symvg.symbolic.bounds": "symvg.views.bounds",
               "symvg.diagnose.results": "symvg.views.diagnosis",
               **dict.fromkeys(("symvg.theory.relu", "symvg.theory.residual", "symvg.theory.lstm"), "symvg.views.remedies")})

_LAZY = {  # public name -> the module that defines it ("module:name" where the name there differs)
    "Activation": "symvg.symbolic.activations", "activation": "symvg.symbolic.activations:get",
    "Chain": "symvg.symbolic.chain", "Derivation": "symvg.symbolic.derive", "derive": "symvg.symbolic.derive",
    "depth_bound": "symvg.symbolic.bounds", "decide": "symvg.symbolic.bounds", "regime": "symvg.symbolic.regime",
    "gradients": "symvg.engines.numeric", "sample": "symvg.engines.sampling",
    "underflow": "symvg.theory.floats", "update": "symvg.theory.floats",
    "text": "symvg.views.derivation", "unicode": "symvg.views.derivation", "latex": "symvg.views.derivation",
    "markdown": "symvg.views.derivation",
    "read_log": "symvg.logs",
}
_MODULES = ("worked", "relu", "residual", "lstm", "meanfield", "matrices", "spectrum", "rnn", "clipping", "skipbn")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, _, there = _LAZY[name].partition(":")
        value = getattr(importlib.import_module(module), there or name)
    elif name in _MODULES:
        value = importlib.import_module(f"symvg.theory.{name}")
    else:
        raise AttributeError(f"module 'symvg' has no attribute {name!r}")
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = ["SymvgError", "SymvgInputError", "SymvgRuntimeError", "__version__", *_LAZY, *_MODULES]
