"""Zeros the engines return: exact ones pass, lost ones are reported (symvg.engines.kernels.exact_zeros and
symvg.engines.chunked.check_underflow), judged against exact SymPy values and the mpmath oracle."""

from __future__ import annotations

import pytest
import sympy as sp

from symvg.engines.kernels import exact_zeros
from symvg.symbolic.activations import get
from symvg.symbolic.parse import z


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "hard_sigmoid", "expr:Max(0, z)", "expr:Min(Max(0, z), 6)",
                                  "expr:abs(z)", "expr:Min(0, z)", "expr:Max(0, z)**2"])
def test_the_exact_zero_regions_are_where_phi_and_its_derivative_are_exactly_0(name):
    """The region says a 0 is exact where, and only where, the exact φ (φ') is 0 at these rational points (none is a
    root of a non-constant piece). expr:Max(0, z), whose φ' is Heaviside(z), had no region but z = 0: every block
    with a z < 0 was flagged and redone through mpmath (8-15× slower at N = 20, M = 10^6)."""
    act = get(name)
    points = [sp.Rational(k, 4) for k in range(-40, 41, 3)] + [sp.Integer(v) for v in (-3, 0, 3, 6)]
    for region, expr in zip(exact_zeros(act), (act.expr, act.derivative)):
        for v in points:
            assert bool(region.subs(z, v)) == (expr.subs(z, v) == 0), (name, expr, region, v)
