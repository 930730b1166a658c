"""The mpmath oracle (symvg.engines.reference) against formulas written out by hand at 2000 digits."""

from __future__ import annotations

import mpmath

from symvg.engines.reference import reference
from symvg.symbolic.chain import Chain


def test_a_term_lost_whole_at_two_precisions_is_not_agreed_on():
    """mish' = tanh(s) + z·sech²(s)·σ(z) with s = log(1 + e^z): at z = -200, 1 + e^{-200} rounds to 1 at 50 and at 70
    digits alike, so tanh(s) was lost whole at both, they agreed, and the oracle returned g 0.5 % too large."""
    r = reference(Chain(1, "expr:z*tanh(log(1+exp(z)))"), 1.0, 0.0, [-200.0], [0.0])[0, 0]
    with mpmath.workdps(2000):
        z = mpmath.mpf(-200)
        s = mpmath.log(1 + mpmath.exp(z))
        h, d = z * mpmath.tanh(s), mpmath.tanh(s) + z * mpmath.sech(s) ** 2 * mpmath.exp(z) / (1 + mpmath.exp(z))
        assert abs(r - 2 * h * d) <= abs(2 * h * d) * mpmath.mpf(10) ** -40
