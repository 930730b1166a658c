"""The package's exception types.

Two families, because the CLI maps them to two exit statuses:

* :class:`SymvgInputError` -- the caller asked for something that is not allowed
  (unknown activation, depth 0, NaN weight, hostile expression). CLI exit status 2.
* :class:`SymvgRuntimeError` -- a valid request that cannot be carried out here
  (CuPy without a GPU, a file that cannot be written). CLI exit status 1.

Every message names the offending value and what would have been allowed.
"""

from __future__ import annotations


class SymvgError(Exception):
    """Base class of every error symvg raises on purpose."""


class SymvgInputError(SymvgError, ValueError):
    """Bad input: the message names the value and what is allowed."""


class UnknownActivationError(SymvgInputError, KeyError):
    """An activation name that is not in the catalogue."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidChainError(SymvgInputError):
    """A chain specification that cannot describe a network (depth, layer index, loss)."""


class LossDomainError(InvalidChainError):
    """A loss that is not defined on the chain's outputs (BCE needs h_N in (0, 1))."""


class ExpressionError(SymvgInputError):
    """A user-supplied activation expression that was rejected by the safe parser."""


class InvalidValueError(SymvgInputError):
    """A number that is not allowed here (NaN, inf, out of range)."""


class ProofError(SymvgInputError):
    """A proof symvg cannot complete for this input (out of its time budget, or beyond what SymPy can
    decide); the message names the limit. An input error: the same request will fail again."""


class SymvgRuntimeError(SymvgError, RuntimeError):
    """A valid request that cannot be carried out on this machine."""


class BackendUnavailableError(SymvgRuntimeError):
    """An optional backend (CuPy, numba, matplotlib, torch) is missing or has no device."""
