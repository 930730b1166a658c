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

The derivation's names load with the package; the rest load on first use, so ``import symvg`` (and
every CLI command) pays only for what it touches.

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

from symvg.errors import SymvgError, SymvgInputError, SymvgRuntimeError  # noqa: E402
from symvg.symbolic.activations import Activation, get as activation  # noqa: E402
from symvg.symbolic.chain import Chain  # noqa: E402
from symvg.symbolic.derive import Derivation, derive  # noqa: E402
from symvg.views import derivation as _derivation  # noqa: E402,F401  registers the notebook views (symvg.display)
from symvg.display import VIEWS as _VIEWS  # noqa: E402

# results whose views cost an import of their own: loaded the first time such a result is shown
_VIEWS.update({"symvg.symbolic.bounds": "symvg.views.bounds", "symvg.diagnose.results": "symvg.views.diagnosis",
               **dict.fromkeys(("symvg.theory.relu", "symvg.theory.residual", "symvg.theory.lstm"), "symvg.views.remedies")})

_LAZY = {  # public name -> the module that defines it
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
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _MODULES:
        value = importlib.import_module(f"symvg.theory.{name}")
    else:
        raise AttributeError(f"module 'symvg' has no attribute {name!r}")
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = ["Activation", "Chain", "Derivation", "SymvgError", "SymvgInputError", "SymvgRuntimeError",
           "__version__", "activation", "derive", *_LAZY, *_MODULES]
