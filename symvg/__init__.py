"""symvg: why gradients vanish (or explode), derived exactly.

>>> from symvg import Chain, derive
>>> d = derive(Chain(3, "sigmoid"), wrt=1)
>>> len(d.factors)
7

"""

from __future__ import annotations

__version__ = "0.1.0"

from .activations import Activation, get as activation  # noqa: E402
from .chain import Chain  # noqa: E402
from .derive import Derivation, derive  # noqa: E402
from .errors import SymvgError, SymvgInputError, SymvgRuntimeError  # noqa: E402

__all__ = ["Activation", "Chain", "Derivation", "SymvgError", "SymvgInputError", "SymvgRuntimeError",
           "activation", "derive", "__version__"]
