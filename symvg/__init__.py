"""symvg: why gradients vanish (or explode), derived exactly.

>>> from symvg import Chain, derive
>>> d = derive(Chain(3, "sigmoid"), wrt=1)
>>> len(d.factors)
7

"""

from __future__ import annotations

__version__ = "0.1.0"

from symvg.symbolic.activations import Activation, get as activation  # noqa: E402
from symvg.symbolic.chain import Chain  # noqa: E402
from symvg.symbolic.derive import Derivation, derive  # noqa: E402
from symvg.errors import SymvgError, SymvgInputError, SymvgRuntimeError  # noqa: E402
from symvg.views import render as _render  # noqa: E402,F401  registers the notebook views (symvg.display)

__all__ = ["Activation", "Chain", "Derivation", "SymvgError", "SymvgInputError", "SymvgRuntimeError",
           "activation", "derive", "__version__"]
