import sympy as sp

from symvg.theory import worked
from symvg.symbolic.activations import get


def test_seed_numbers_are_exact():
    s = worked.shallow()
    assert s.value == sp.Rational(125, 100) and s.new_weight == sp.Rational(2375, 10000)
    d = worked.deep()
    assert d.value == sp.Rational(25) * sp.Rational(25, 100) * sp.Rational(22, 100) * sp.Rational(20, 100) \
        * sp.Rational(15, 100) * sp.Rational(10, 100)
    assert d.value == sp.Rational(4125, 10**6) and d.new_weight == sp.Rational(24995875, 10**8)
    assert worked.tiny().value == sp.Rational(3, 10**10)
    assert worked.thirds().value == sp.Rational(1, 9)
    first, second = worked.sigmoid_halves()
    assert (first.value, second.value) == (sp.Rational(1, 4), sp.Rational(1, 8))


def test_sigmoid_half_is_computed_not_typed():
    first, _ = worked.sigmoid_halves()
    assert first.factors[0] == get("sigmoid")(sp.Integer(0))
    assert first.value == get("sigmoid").derivative_at(0)


def test_sigmoid_depth_law():
    for n in range(1, 12):
        assert worked.sigmoid_depth(n) == sp.Rational(1, 4 ** n)


def test_decimal_is_exact_or_refuses():
    assert worked.decimal(sp.Rational(24995875, 10**8)) == "0.24995875"
    assert worked.decimal(sp.Rational(-1, 8)) == "-0.125"
    assert worked.decimal(sp.Rational(1, 3)) == "1/3"
    assert worked.decimal(sp.Integer(25)) == "25"


def test_json_and_latex_views():
    d = worked.deep().as_dict()
    assert d["value"] == "33/8000" and d["value_decimal"] == "0.004125" and d["new_weight_decimal"] == "0.24995875"
    assert r"\times" in worked.deep().latex() and "0.24995875" in worked.deep().latex()
