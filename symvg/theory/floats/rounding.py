"""A dtype's facts and correct rounding into it: the ground both float questions stand on.

The limits are read from :func:`numpy.finfo` (never from a table typed in by hand) and kept as exact
Fractions; :func:`round_to` rounds an exact value to the nearest number of the dtype, ties to even.
"""

from __future__ import annotations

import math
import sys
from decimal import Decimal
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
        raise InvalidValueError(f"{_dec(value)} overflows {name}; allowed: |value| <= {dtype_text(float(top['max']))}")
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


EXACT_DIGITS = 21
"""A dtype's number is printed exactly up to this many significant digits: every float16 fits (the longest,
such as 1.78813934326171875e-07 = 3·2^-24, has 21), and so does a float32 or float64 with few low bits."""


def dtype_text(v: "np.floating | float") -> str:
    """A float16/32/64 number as text: the exact value of the stored float where it has at most
    :data:`EXACT_DIGITS` significant digits (every float16), else float64's shortest repr of it (at most 17 digits),
    which names that one float among all float64s, and so among the dtype's own (17 digits for a float64 subnormal,
    where repr is shorter: 5e-324). In Python's repr style
    (1e-05, 0.0001, 65504.0, 1e+16); inf and nan as such.

    NumPy's own str is the shortest text that rounds back to the float *in its dtype*: float16's largest number
    65504 prints as 6.55e+04 and its 0.1 as 0.1, although 0.0999755859375 is stored.

    >>> dtype_text(np.float16(65504)), dtype_text(np.float16(0.1)), dtype_text(np.float16(2**-24))
    ('65504.0', '0.0999755859375', '5.9604644775390625e-08')
    >>> dtype_text(np.float32(0.1)), dtype_text(np.float64(0.1)), dtype_text(np.float16(-np.inf))
    ('0.10000000149011612', '0.1', '-inf')
    >>> dtype_text(np.float64(5e-324))   # a float64 subnormal: 17 digits, not repr's '5e-324'
    '4.9406564584124654e-324'

    """
    f = float(v)  # exact: float16 and float32 are subsets of float64
    if not math.isfinite(f) or f == 0:
        return repr(f)
    sign, digits, exp = Decimal(f).normalize().as_tuple()  # Decimal(f) is f's exact value
    if len(digits) > EXACT_DIGITS:
        # float64's subnormals have fewer bits: their shortest repr can be 1 digit (5e-324 for 4.94e-324)
        return repr(f) if abs(f) >= sys.float_info.min else _e17(f)
    s = "".join(map(str, digits))
    point = len(s) + int(exp)  # digits before the decimal point
    if -3 <= point <= 16:  # where repr writes positional: 1e-4 <= |f| < 1e16
        body = (s + "0" * int(exp) + ".0" if exp >= 0 else s[:point] + "." + s[point:] if point > 0
                else "0." + "0" * -point + s)
    else:
        body = s[0] + ("." + s[1:] if len(s) > 1 else "") + f"e{point - 1:+03d}"
    return "-" * sign + body


def _e17(f: float) -> str:
    """17 significant digits in repr's style (``4.9406564584124654e-324``): they name any float64 uniquely."""
    mantissa, _, exponent = f"{f:.16e}".partition("e")
    return mantissa.rstrip("0").rstrip(".") + "e" + exponent


def power_text(x: Fraction) -> str:
    """An exact value that float64 may hold (a dtype's gap, half of it) as :func:`dtype_text` writes it, exact
    where short; one it cannot hold (half of float64's smallest subnormal) as a short decimal.

    >>> power_text(Fraction(1, 2**13)), power_text(Fraction(1, 2**1075))
    ('0.0001220703125', '2.47e-324')
    """
    return dtype_text(float(x)) if Fraction(float(x)) == x else _dec(x)


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


__all__ = ["DTYPES", "EXACT_DIGITS", "dtype_text", "power_text", "dtypes", "limits", "round_to", "exact_text"]
