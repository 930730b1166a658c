"""A dtype's facts and correct rounding into it: the ground both float questions stand on.

The limits are read from :func:`numpy.finfo` (never from a table typed in by hand) and kept as exact
Fractions; :func:`round_to` rounds an exact value to the nearest number of the dtype, ties to even.
"""

from __future__ import annotations

from fractions import Fraction

import mpmath
import numpy as np
import sympy as sp

from symvg.errors import InvalidValueError

DTYPES = ("float16", "float32", "float64")
"""The dtypes whose limits are reported; ``"all"`` means every one of them."""


def dtypes(spec: str) -> tuple[str, ...]:
    """The dtype names ``spec`` stands for.

    >>> dtypes("all"), dtypes("float32")
    (('float16', 'float32', 'float64'), ('float32',))
    """
    if spec == "all":
        return DTYPES
    if spec not in DTYPES:
        raise InvalidValueError(f"dtype must be one of {', '.join(DTYPES)}, all; got {spec!r}")
    return (spec,)


def _dtype(name: str) -> np.dtype:
    if name not in DTYPES:
        raise InvalidValueError(f"dtype must be one of {', '.join(DTYPES)} here; got {name!r}")
    return np.dtype(name)


def _power_of_two_exponent(x: Fraction) -> int:
    """k with x = 2^-k (the dtype limits are powers of two; say so loudly if that ever changes)."""
    if x.numerator != 1 or x.denominator & (x.denominator - 1):
        raise AssertionError(f"expected a power of two, got {x}")
    return x.denominator.bit_length() - 1


def limits(name: str) -> dict[str, Fraction]:
    """The dtype's smallest normal and smallest subnormal numbers, as exact Fractions.

    >>> limits("float16")["smallest_normal"], limits("float16")["smallest_subnormal"]
    (Fraction(1, 16384), Fraction(1, 16777216))
    """
    fi = np.finfo(_dtype(name))
    top = Fraction(float(fi.max))
    below = Fraction(float(np.nextafter(fi.max, fi.dtype.type(0))))
    # IEEE rounds to ±inf only from max + half its gap on (a tie too: max's last bit is 1, the even choice is inf);
    # everything below rounds to a finite value (float32's max written 3.4028234663852886e38 lies above max itself)
    return {"smallest_normal": Fraction(float(fi.smallest_normal)),
            "smallest_subnormal": Fraction(float(fi.smallest_subnormal)),
            "max": top, "overflow": top + (top - below) / 2}


def round_to(value: Fraction, name: str) -> np.floating:
    """``value`` rounded correctly (nearest, ties to even) to the dtype.

    Casting through float64 first could round twice; the neighbours are compared exactly instead.

    >>> round_to(Fraction(1, 10), "float16")
    np.float16(0.1)
    >>> float(round_to(Fraction(2049), "float16"))   # a tie: 2048 (even) wins over 2050
    2048.0
    """
    dt = _dtype(name)
    top = limits(name)
    if abs(value) >= top["overflow"]:
        raise InvalidValueError(f"{_dec(value)} overflows {name}; allowed: |value| <= {float(top['max']):g}")
    c = dt.type(float(value))
    best = None
    with np.errstate(over="ignore"):  # the neighbour of the largest finite value is inf: skipped below
        around = (np.nextafter(c, dt.type(-np.inf)), c, np.nextafter(c, dt.type(np.inf)))
    for cand in around:
        if not np.isfinite(cand):
            continue
        odd = int(np.array(cand, dt).view(f"u{dt.itemsize}")) & 1
        key = (abs(Fraction(float(cand)) - value), odd)
        if best is None or key < best[0]:
            best = (key, cand)
    return best[1]


def _dec(x: "Fraction | sp.Rational", digits: int = 4) -> str:
    """A short decimal for text output (never used for comparisons); fine below float64's range too."""
    return mpmath.nstr(mpmath.mpf(int(x.numerator)) / int(x.denominator), digits)


def exact_text(r: "sp.Rational | Fraction", max_digits: int = 40) -> str:
    """An exact value as a reader takes it in: a terminating decimal when it is one (and short); in
    scientific notation when its significant digits are few (1e-322, not 323 digits); as a short decimal
    plus or minus a short remainder (0.25 - 1e-322); else as p/q. Every form is exact.

    >>> exact_text(sp.Rational(199967, 800000)), exact_text(sp.Rational(1, 3)), exact_text(sp.Integer(-5))
    ('0.24995875', '1/3', '-5')
    >>> exact_text(sp.Rational(1, 10**322)), exact_text(25 * sp.Integer(10)**319)
    ('1e-322', '2.5e+320')
    >>> exact_text(sp.Rational(1, 4) - sp.Rational(1, 10**322)), exact_text(sp.Rational(-1, 4) - sp.Rational(1, 10**322))
    ('0.25 - 1e-322', '-(0.25 + 1e-322)')
    >>> exact_text(sp.Integer(2)**200 // 3)  # an integer with too many digits for a short form stays one
    '535646014752996758513987364113720867507400997927597611767125'
    """
    value = Fraction(int(r.numerator), int(r.denominator))
    short = _short_decimal(value, max_digits)
    if short is not None:
        return short
    if _places(value) is not None:  # a long terminating decimal: a short one and a short remainder?
        digits = len(str(abs(value.numerator) // value.denominator)) if abs(value) >= 1 else 0
        scale = Fraction(10) ** (digits - 17)  # 17 significant digits, rounded
        head = round(abs(value) / scale) * scale
        tail = abs(value) - head
        a, b = _short_decimal(head, max_digits), _short_decimal(abs(tail), max_digits)
        if tail and a is not None and b is not None:
            joined = f"{a} {'+' if tail > 0 else '-'} {b}"
            return joined if value > 0 else f"-({joined})"
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def _places(value: Fraction) -> int | None:
    """Decimal places of a terminating decimal, else None."""
    q = value.denominator
    twos = (q & -q).bit_length() - 1
    fives, rest = 0, q >> twos
    while rest % 5 == 0:
        rest, fives = rest // 5, fives + 1
    return max(twos, fives) if rest == 1 else None


def _short_decimal(value: Fraction, max_digits: int) -> str | None:
    """``value`` as a decimal, or in scientific notation, with at most ``max_digits`` digits; else None."""
    places = _places(value)
    if places is None:
        return None
    sign = "-" if value < 0 else ""
    digits = str(abs(value.numerator) * 10**places // value.denominator)  # value = digits·10^-places
    if places <= max_digits and len(digits) <= max_digits:
        if places == 0:
            return sign + digits
        digits = digits.rjust(places + 1, "0")
        return sign + digits[:-places] + "." + digits[-places:]
    significant = digits.rstrip("0")
    if len(significant) > max_digits:
        return None
    exponent = len(digits) - 1 - places
    mantissa = significant[0] + ("." + significant[1:] if len(significant) > 1 else "")
    return f"{sign}{mantissa}e{'+' if exponent > 0 else '-'}{abs(exponent)}" if exponent else sign + mantissa


def _rational(x: Fraction) -> sp.Rational:
    return sp.Rational(x.numerator, x.denominator)


def _fraction(x: sp.Rational) -> Fraction:
    return Fraction(int(x.p), int(x.q))


__all__ = ["DTYPES", "dtypes", "limits", "round_to", "exact_text"]
