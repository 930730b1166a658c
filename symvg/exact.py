"""Exact numbers from user input, and the checks every input passes: the one place they are written.

Values become SymPy Rationals from their decimal text (``0.1`` is 1/10, never the binary float's
expansion), never through ``eval``/``sympify``; counts are integers; tolerances lie in (0, 1).

>>> to_rational("0.25"), count(3, "layers"), unit_interval("1e-6", "tol")
(1/4, 3, 1/1000000)
>>> count(0, "layers")
Traceback (most recent call last):
symvg.errors.InvalidValueError: layers must be an integer >= 1, got 0
"""

from __future__ import annotations

import numbers
import operator
import re
from fractions import Fraction
from typing import Union

import sympy as sp

from symvg.errors import InvalidValueError

Number = Union[int, float, str, Fraction, sp.Rational]



MAX_DIGITS = 1000
"""Most digits of an exact input's numerator or denominator (``1e999`` fits; ``10**5000`` does not):
larger values cannot be printed (Python caps int-to-text at 4300 digits) and say nothing more."""


def to_rational(value: Number, what: str = "value") -> sp.Rational:
    """An exact Rational from user input, never through ``eval``/``sympify``.

    NumPy scalars count as the numbers they are (an ``int64`` as its integer, a ``float64`` as the
    decimal it prints as, like a Python float).

    >>> to_rational("0.25"), to_rational(0.1), to_rational("1/3")
    (1/4, 1/10, 1/3)
    >>> to_rational("nan")
    Traceback (most recent call last):
    symvg.errors.InvalidValueError: value must be a finite number, got 'nan'
    >>> to_rational(10**1200, "weight")
    Traceback (most recent call last):
    symvg.errors.InvalidValueError: weight has more than 1000 digits; allowed: at most 1000 digits above and below the point
    """
    if isinstance(value, sp.Rational):
        return _sized(value, what)
    if isinstance(value, sp.Float):
        value = str(value)
    if not isinstance(value, (bool, int, float, str, Fraction)) and isinstance(value, numbers.Real):
        # NumPy (and other) scalars: integers exactly, floats by their shortest decimal, as for float.
        value = operator.index(value) if isinstance(value, numbers.Integral) else str(value)
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Fraction)):
        raise InvalidValueError(f"{what} must be a finite number, got {value!r}")
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidValueError(f"{what} must be a finite number, got {value!r}")
        value = repr(float(value))  # float(): a float subclass (np.float64) too; the decimal the user typed, not the binary float's expansion
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 64:
            raise InvalidValueError(f"{what} is {len(text)} characters long, got {text[:20]!r}...; allowed: at most "
                                    "64 characters (write big or small numbers with an exponent: 1e999, 1e-300)")
        match = re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)(?:[eE]([+-]?\d+))?(/\d+)?", text)
        if not match:
            raise InvalidValueError(f"{what} must be a finite number, got {value!r}")
        if match.group(3) is not None and abs(int(match.group(3))) > MAX_DIGITS + 64:
            # 1e4000 is finite, only too long to hold exactly: say so, and build no 4000-digit integer
            raise InvalidValueError(f"{what} = {value!r} has more than {MAX_DIGITS} digits; allowed: at most "
                                    f"{MAX_DIGITS} digits above and below the point")
        try:
            value = Fraction(text)
        except (ValueError, ZeroDivisionError):
            raise InvalidValueError(f"{what} must be a finite number, got {value!r}") from None
    fr = Fraction(value)
    return _sized(sp.Rational(fr.numerator, fr.denominator), what)


def _sized(v: sp.Rational, what: str) -> sp.Rational:
    """``v`` if its numerator and denominator have at most :data:`MAX_DIGITS` digits (checked in bits)."""
    if max(int(v.p).bit_length(), int(v.q).bit_length()) > MAX_DIGITS * 3.3219:
        raise InvalidValueError(f"{what} has more than {MAX_DIGITS} digits; allowed: at most {MAX_DIGITS} "
                                "digits above and below the point")
    return v


def nonnegative(value: Number, what: str = "value") -> sp.Rational:
    """An exact value >= 0 (see :func:`to_rational`)."""
    v = to_rational(value, what)
    if v < 0:
        raise InvalidValueError(f"{what} must be >= 0, got {value!r}")
    return v


def positive(value: Number, what: str = "value") -> sp.Rational:
    """An exact value > 0 (see :func:`to_rational`)."""
    v = to_rational(value, what)
    if v <= 0:
        raise InvalidValueError(f"{what} must be > 0, got {value!r}")
    return v


def count(value: object, what: str = "value", most: int | None = None) -> int:
    """An integer >= 1 (layers, steps, samples); a NumPy integer counts as its value, a bool or float never.

    >>> count(2**70, "layers", most=10**6)
    Traceback (most recent call last):
    symvg.errors.InvalidValueError: layers must be <= 1000000, got 1180591620717411303424
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InvalidValueError(f"{what} must be an integer >= 1, got {value!r}")
    n = operator.index(value)
    if most is not None and n > most:
        raise InvalidValueError(f"{what} must be <= {most}, got {n}")
    return n


def unit_interval(value: Number, what: str = "tol") -> sp.Rational:
    """An exact value strictly between 0 and 1 (a tolerance such as 1e-6).

    >>> unit_interval(1, "tol")
    Traceback (most recent call last):
    symvg.errors.InvalidValueError: tol must be in (0, 1), got 1
    """
    v = to_rational(value, what)
    if not 0 < v < 1:
        raise InvalidValueError(f"{what} must be in (0, 1), got {value!r}")
    return v


def as_exact(value: object) -> sp.Expr:
    """A SymPy value from one the code already holds (a SymPy number or expression, an int, a Fraction):
    never text, so it can be no way to evaluate user input (use :func:`to_rational` for that).

    >>> as_exact(3), as_exact(Fraction(1, 4)), as_exact(sp.oo)
    (3, 1/4, oo)
    >>> as_exact("1/4")
    Traceback (most recent call last):
    TypeError: as_exact takes a number, not str (parse text with to_rational)
    """
    if isinstance(value, sp.Basic):
        return value
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, Fraction, float)):
        raise TypeError(f"as_exact takes a number, not {type(value).__name__} (parse text with to_rational)")
    if isinstance(value, float):
        return sp.Float(value)
    fr = Fraction(value)
    return sp.Rational(fr.numerator, fr.denominator)


__all__ = ["MAX_DIGITS", "Number", "as_exact", "count", "nonnegative", "positive", "to_rational", "unit_interval"]
