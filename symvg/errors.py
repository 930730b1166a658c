"""The package's exception types.

Two families, because the CLI maps them to two exit statuses:

* :class:`SymvgInputError` -- the caller asked for something that is not allowed
  (unknown activation, depth 0, NaN weight, hostile expression). CLI exit status 2.
* :class:`SymvgRuntimeError` -- a valid request that cannot be carried out here
  (CuPy without a GPU, a file that cannot be written). CLI exit status 1. Its
  :class:`NumericRangeError` family reports results that floats cannot hold (overflow, underflow to 0,
  NaN from a domain error) instead of returning them as the answer.

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
    """A loss that is not defined on the chain's outputs or labels (BCE needs h_N in (0, 1) and y in [0, 1])."""


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


class NumericRangeError(SymvgRuntimeError):
    """A number the floats could not hold, reported instead of being returned as the answer.

    ``layers`` are the layers k (1-based) where it happened and ``count`` how many values; ``log10`` is the
    largest log10|value| that was lost, where it is known (underflow: computed in the log domain).
    CLI exit status 1.
    """

    def __init__(self, message: str, layers: tuple[int, ...] = (), count: int = 0, log10: float | None = None):
        super().__init__(message)
        self.layers, self.count, self.log10 = tuple(layers), int(count), log10


class OverflowReport(NumericRangeError):
    """A value beyond the dtype's largest finite number (it would have been returned as ±inf)."""


class UnderflowReport(NumericRangeError):
    """A nonzero value below the dtype's smallest subnormal (it would have been returned as exactly 0)."""


class DomainError(NumericRangeError):
    """A value that is not a real number: a formula outside its domain (log of a negative, the BCE loss
    of a prediction equal to 0 or 1), which floats would have returned as NaN."""


__all__ = ["SymvgError", "SymvgInputError", "UnknownActivationError", "InvalidChainError", "LossDomainError",
           "ExpressionError", "InvalidValueError", "ProofError", "SymvgRuntimeError", "BackendUnavailableError",
           "NumericRangeError", "OverflowReport", "UnderflowReport", "DomainError"]
