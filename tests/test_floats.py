"""Floating-point limits: exact depths against brute-force Rationals, dtype results against an
independent IEEE-754 rounding emulation written here in Fractions, and the CLI contract."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner

import symvg.cli
from symvg.theory import floats
from symvg.exact import to_rational
from symvg.cli.floats import expand_greedy
from symvg.errors import InvalidValueError
from symvg.theory.floats import first_power_below, round_to, simulate_steps, underflow, update

# ----------------------------------------------------------------------------- an independent reference

# (precision bits incl. the hidden bit, smallest normal exponent) -- the IEEE-754 binary formats
IEEE = {"float16": (11, -14), "float32": (24, -126), "float64": (53, -1022)}


def ieee_round(x: Fraction, dtype: str) -> Fraction:
    """x rounded to nearest, ties to even, on the dtype's grid (normal and subnormal), in exact arithmetic."""
    if x == 0:
        return Fraction(0)
    p, emin = IEEE[dtype]
    a = abs(x)
    e = a.numerator.bit_length() - a.denominator.bit_length()  # 2^e <= a < 2^(e+2)
    if Fraction(2) ** e > a:
        e -= 1
    if Fraction(2) ** (e + 1) <= a:
        e += 1
    ulp = Fraction(2) ** (max(e, emin) - (p - 1))
    r = round(a / ulp) * ulp  # Fraction.__round__ rounds half to even
    return r if x > 0 else -r


def test_reference_rounding_agrees_with_known_values():
    assert ieee_round(Fraction(1, 10), "float64") == Fraction(0.1)
    assert ieee_round(Fraction(2049), "float16") == 2048
    assert ieee_round(Fraction(2051), "float16") == 2052
    assert ieee_round(Fraction(1, 2**25), "float16") == 0  # half the smallest subnormal: tie to 0
    assert ieee_round(Fraction(3, 2**26), "float16") == Fraction(1, 2**24)


# ----------------------------------------------------------------------------- dtype facts


def test_limits_come_from_finfo_and_are_powers_of_two():
    assert floats.limits("float16")["smallest_normal"] == Fraction(1, 2**14)
    assert floats.limits("float32")["smallest_normal"] == Fraction(1, 2**126)
    assert floats.limits("float64")["smallest_subnormal"] == Fraction(1, 2**1074)
    assert floats.limits("float16")["smallest_subnormal"] == Fraction(1, 2**24)


@pytest.mark.parametrize("value", [Fraction(1, 10), Fraction(1, 3), Fraction(2049), Fraction(-7, 1000),
                                   Fraction(1, 2**25), Fraction(3, 2**26), Fraction(65504), Fraction(22, 100),
                                   Fraction(123456789, 10**12)])
@pytest.mark.parametrize("dtype", floats.DTYPES)
def test_round_to_is_correct_rounding(value, dtype):
    got = round_to(value, dtype)
    assert got.dtype == np.dtype(dtype)
    assert Fraction(float(got)) == ieee_round(value, dtype)


def test_round_to_refuses_overflow():
    with pytest.raises(InvalidValueError, match="overflows float16"):
        round_to(Fraction(70000), "float16")


def test_dtypes_spec():
    assert floats.dtypes("all") == ("float16", "float32", "float64")
    with pytest.raises(InvalidValueError, match="float8"):
        floats.dtypes("float8")


# ----------------------------------------------------------------------------- underflow, exact


def brute_first_power(f: Fraction, k: int, strict: bool) -> int:
    t = Fraction(1, 2**k)
    x, n = Fraction(1), 0
    while (x >= t) if strict else (x > t):
        x *= f
        n += 1
    return max(n, 1)


FACTORS = [Fraction(1, 2), Fraction(1, 4), Fraction(3, 4), Fraction(1, 10), Fraction(9, 10), Fraction(1, 3),
           Fraction(2, 3), Fraction(1, 8), Fraction(22, 100), Fraction(1, 1000), Fraction(1, 10**12)]


@pytest.mark.parametrize("f", FACTORS, ids=str)
@pytest.mark.parametrize("k", [14, 25, 126, 150])
@pytest.mark.parametrize("strict", [True, False])
def test_first_power_below_matches_brute_force_rationals(f, k, strict):
    assert first_power_below(f, k, strict) == brute_first_power(f, k, strict)


@pytest.mark.parametrize("f", [Fraction(9, 10), Fraction(99, 100), Fraction(2, 3), Fraction(1, 2**7)],
                         ids=str)
@pytest.mark.parametrize("k", [1022, 1075])
def test_first_power_below_is_exact_at_its_boundary(f, k):
    # f^N is never built by the library; here it is, at N-1 and N only, in exact Rationals.
    n = first_power_below(f, k)
    t = Fraction(1, 2**k)
    assert f ** n < t
    assert n == 1 or f ** (n - 1) >= t


def test_first_power_below_handles_depths_of_a_billion():
    n = first_power_below(Fraction(999999, 1000000), 1022)
    assert n == 708396065  # 1022 ln 2 / -ln(0.999999) = 708396064.334 (50-digit mpmath)


@pytest.mark.parametrize("dtype, normal, zero", [("float16", 8, 13), ("float32", 64, 75), ("float64", 512, 538)])
def test_underflow_of_one_quarter(dtype, normal, zero):
    # (1/4)^N = 2^-2N: below 2^-emin_normal when 2N > 14/126/1022; rounds to 0 when 2^-2N <= s/2.
    u = underflow("0.25", dtype)
    assert (u.below_normal_depth, u.exact_zero_depth, u.zero_depth) == (normal, zero, zero)
    assert u.factor == sp.Rational(1, 4)
    assert u.note == ""


def reference_zero_depth(f: Fraction, dtype: str, limit: int = 100_000) -> int | None:
    fd = ieee_round(f, dtype)
    x = Fraction(1)
    for n in range(1, limit + 1):
        nxt = ieee_round(x * fd, dtype)
        if nxt == 0:
            return n
        if nxt == x:
            return None  # stuck for good
        x = nxt
    raise AssertionError("reference did not settle")


@pytest.mark.parametrize("f", ["0.5", "0.25", "0.26", "0.3", "0.1", "0.45", "0.49", "0.22", "1/3", "0.51", "0.75",
                               "1e-6"])
@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_zero_depth_matches_an_independent_rounding_emulation(f, dtype):
    assert underflow(f, dtype).zero_depth == reference_zero_depth(Fraction(str(to_rational(f))), dtype)


@pytest.mark.parametrize("f", [0.5, 0.25, 0.3, 0.1, 0.45, 0.49, 0.23, 0.01, 0.75])
def test_zero_depth_float64_matches_python_floats(f):
    x, n = 1.0, 0
    while x != 0 and n < 5000:
        x, n = x * f, n + 1
    expected = n if x == 0 else None
    assert underflow(str(f), "float64").zero_depth == expected


def test_computed_and_exact_zero_depth_can_differ_and_it_is_explained():
    u = underflow("0.75", "float16")
    assert u.exact_zero_depth == 61 and u.zero_depth is None
    assert "rounds back to itself" in u.note
    v = underflow("0.26", "float16")  # 0.26 is not a float16, and subnormal steps round coarsely
    assert (v.exact_zero_depth, v.zero_depth) == (13, 14)
    assert "not exactly 13/50" in v.note
    w = underflow("0.49", "float64")  # computed product reaches 0 one step *earlier* than the exact one
    assert (w.exact_zero_depth, w.zero_depth) == (1045, 1044)


def _stop(f: Fraction, dtype: str) -> Fraction:
    """Where 1·f·f·… stops moving, by the reference rounding (a few hundred steps for these factors)."""
    x, prev = Fraction(1), None
    while x != prev:
        prev, x = x, ieee_round(x * f, dtype)
    return x


def test_a_product_that_never_reaches_0_is_not_said_to_stop_where_it_does_not():
    s16 = Fraction(1, 2**24)
    # 0.9 in float16 stops at 4 smallest subnormals, not at the smallest one
    f = ieee_round(Fraction(9, 10), "float16")
    assert _stop(f, "float16") == 4 * s16
    u = underflow("0.9", "float16")
    assert u.zero_depth is None and "sticks at the smallest subnormal" not in str(u)
    assert "stops at a nonzero" in str(u)
    # 0.99999 is 1 in float16: the product stays 1, it never even leaves the normal range
    assert ieee_round(Fraction(99999, 100000), "float16") == 1
    v = underflow("0.99999", "float16")
    assert v.zero_depth is None and "stays 1" in str(v) and "subnormal" not in v.note


def test_underflow_exact_vs_brute_force_on_the_dtype_limits():
    for dtype in floats.DTYPES:
        lim = floats.limits(dtype)
        for f in (Fraction(1, 3), Fraction(9, 10)):
            u = underflow(str(f), dtype)
            n = u.below_normal_depth
            assert f**n < lim["smallest_normal"] <= f ** (n - 1)
            m = u.exact_zero_depth
            assert f**m <= lim["smallest_subnormal"] / 2 < f ** (m - 1)


@pytest.mark.parametrize("bad, words", [("1", "never underflows"), ("2.5", "never underflows"),
                                        ("0", "0 < factor < 1"), ("-0.5", "0 < factor < 1"),
                                        ("nan", "finite number"), ("abc", "finite number")])
def test_underflow_refuses_factors_outside_0_1(bad, words):
    with pytest.raises(InvalidValueError, match=words):
        underflow(bad)


def test_underflow_refuses_unknown_dtype():
    with pytest.raises(InvalidValueError, match="float8"):
        underflow("0.5", "float8")


def test_underflow_as_dict_keys_and_json():
    d = underflow("0.25", "float16").as_dict()
    assert {"dtype", "factor", "below_normal_depth", "zero_depth"} <= set(d)
    assert d["factor"] == "1/4" and d["dtype"] == "float16"
    json.dumps(d, allow_nan=False)


def test_underflow_table_all():
    assert [u.dtype for u in floats.underflow_table("0.5")] == list(floats.DTYPES)


# ----------------------------------------------------------------------------- SGD updates

SEED = ["25", "0.25", "0.22", "0.20", "0.15", "0.10"]


def reference_update(w: str, lr: str, factors: list[str], dtype: str) -> Fraction:
    """w - lr·(f1·f2·…) with every operation rounded on the dtype's grid (the emulation above)."""
    r = lambda x: ieee_round(x, dtype)  # noqa: E731
    fs = [r(Fraction(f)) for f in factors]
    g = fs[0]
    for f in fs[1:]:
        g = r(g * f)
    return r(r(Fraction(w)) - r(r(Fraction(lr)) * g))


def test_seed_deep_product_exact():
    u = update("0.25", "0.01", factors=SEED)
    assert u.gradient == sp.Rational("0.004125") == sp.Rational(33, 8000)
    assert u.new_weight_exact == sp.Rational("0.24995875")
    assert u.relative_change == -sp.Rational("0.00004125") / sp.Rational("0.25")
    assert u.steps_exact == 61  # ceil(0.0025 / 0.00004125) = ceil(60.6)


def test_seed_deep_product_float16_loses_the_update():
    u = update("0.25", "0.01", factors=SEED, dtype="float16")
    assert u.lost is True
    assert u.new_weight == "0.25"
    assert u.spacing == sp.Rational(1, 2**13)  # the float16 gap below 0.25
    assert abs(u.step) < u.spacing / 2
    assert (u.steps_dtype, u.steps_status) == (None, "never")
    assert Fraction(float(np.float16(u.new_weight))) == reference_update("0.25", "0.01", SEED, "float16")


def test_seed_deep_product_float32_and_float64_differ():
    u32 = update("0.25", "0.01", factors=SEED, dtype="float32")
    u64 = update("0.25", "0.01", factors=SEED, dtype="float64")
    assert not u32.lost and not u64.lost
    v32 = Fraction(float(np.float32(u32.new_weight)))
    v64 = Fraction(float(u64.new_weight))
    assert v32 == reference_update("0.25", "0.01", SEED, "float32")
    # float64 reference: Python's own floats, left to right
    g = 25.0 * 0.25 * 0.22 * 0.20 * 0.15 * 0.10
    assert u64.new_weight == repr(0.25 - 0.01 * g)
    assert v32 != v64 != Fraction(199967, 800000)
    assert u32.new_weight_error == sp.Rational(v32.numerator, v32.denominator) - sp.Rational("0.24995875")
    assert u32.steps_dtype == 61 and u64.steps_dtype == 61


def test_three_dtypes_three_behaviours():
    results = floats.update_table("0.25", "0.01", factors=SEED)
    assert [u.lost for u in results] == [True, False, False]
    assert len({Fraction(float(np.dtype(u.dtype).type(u.new_weight))) for u in results}) == 3


def test_simple_example_025_020():
    u = update("0.25", "0.01", factors=["25", "0.25", "0.20"])
    assert u.gradient == sp.Rational("1.25")
    assert u.new_weight_exact == sp.Rational("0.2375")
    assert u.new_weight == "0.2375"
    assert u.steps_exact == 1
    for dtype in floats.DTYPES:
        v = update("0.25", "0.01", factors=["25", "0.25", "0.20"], dtype=dtype)
        assert not v.lost
        assert Fraction(float(np.dtype(dtype).type(v.new_weight))) == \
            reference_update("0.25", "0.01", ["25", "0.25", "0.20"], dtype)


def test_grad_and_factors_agree_when_the_product_is_exact():
    a = update("0.25", "0.01", grad="1.25", dtype="float16")
    b = update("0.25", "0.01", factors=["1.25"], dtype="float16")
    assert a == b


@pytest.mark.parametrize("dtype", floats.DTYPES)
def test_new_weight_string_round_trips(dtype):
    for w, lr, g in [("0.3", "0.01", "0.7"), ("-1.7", "0.001", "-3.3"), ("1e-3", "0.1", "1/3")]:
        u = update(w, lr, grad=g, dtype=dtype)
        t = np.dtype(dtype).type
        assert float(t(u.new_weight)) == float(u.new_weight)  # names a number of the dtype
        assert Fraction(float(t(u.new_weight))) == reference_update(w, lr, [g], dtype)


def test_zero_gradient_is_not_lost():
    u = update("0.5", "0.01", grad="0")
    assert not u.lost and u.steps_exact is None and u.steps_status == "never"


def test_zero_weight_steps_undefined():
    u = update("0", "0.01", grad="1")
    assert u.relative_change is None and u.steps_exact is None and u.steps_status == "undefined"
    # 1% of w = 0 is no distance: the exact count is as undefined as the dtype's, not "never"
    line = next(s for s in str(u).splitlines() if "steps to move" in s)
    assert "exact never" not in line and line.count("undefined (w = 0)") == 2


def scalar_steps(w, step, target: Fraction, cap: int):
    start, x = Fraction(float(w)), w
    for n in range(1, cap + 1):
        nxt = x - step
        if abs(Fraction(float(nxt)) - start) >= target:
            return n, "reached"
        if nxt == x:
            return None, "never"
        x = nxt
    return None, "beyond cap"


@pytest.mark.parametrize("w, step, target", [
    (np.float32(1), np.float32(1e-7), Fraction(1, 100)),  # ~10^5 steps: crosses block boundaries
    (np.float16(0.25), np.float16(1e-4), Fraction(1, 400)),
    (np.float16(1), np.float16(-6e-4), Fraction(2)),  # climbs to 2, where the step is under half the spacing
    (np.float64(-3), np.float64(-1e-3), Fraction(3, 100)),
    (np.float16(0.001), np.float16(3e-7), Fraction(1, 100000)),  # subnormal steps
])
def test_vectorised_simulation_matches_a_scalar_loop(w, step, target):
    assert simulate_steps(w, step, target) == scalar_steps(w, step, target, 200_000)


def test_simulation_reports_the_cap():
    assert simulate_steps(np.float64(1), np.float64(1e-9), Fraction(1, 100), cap=1000) == (None, "beyond cap")


@pytest.mark.parametrize("kwargs, words", [
    (dict(weight="1", lr="0.1"), "exactly one of grad or factors"),
    (dict(weight="1", lr="0.1", grad="1", factors=["1"]), "exactly one of grad or factors"),
    (dict(weight="1", lr="0.1", factors=[]), "at least one"),
    (dict(weight="nan", lr="0.1", grad="1"), "weight must be a finite number"),
    (dict(weight="1", lr="0.1", factors=["2", "x"]), "factor must be a finite number"),
    (dict(weight="1e6", lr="0.1", grad="1", dtype="float16"), "overflows float16"),
    (dict(weight="1", lr="0.1", grad="1", dtype="all"), "dtype must be one of"),
])
def test_update_refuses_bad_input(kwargs, words):
    with pytest.raises(InvalidValueError, match=words):
        update(**kwargs)


def test_update_as_dict_keys_and_exact_strings():
    d = update("0.25", "0.01", factors=SEED, dtype="float16").as_dict()
    assert {"dtype", "weight", "gradient", "new_weight_exact", "new_weight", "lost", "steps_to_move_1pct"} <= set(d)
    assert to_rational(d["gradient"]) == sp.Rational("0.004125")
    assert to_rational(d["new_weight_exact"]) == sp.Rational("0.24995875")
    assert d["lost"] is True and d["new_weight"] == "0.25"
    assert d["steps_to_move_1pct"] == {"exact": 61, "dtype": None, "status": "never"}
    json.dumps(d, allow_nan=False)


def test_explain_says_lost_in_plain_words():
    text = update("0.25", "0.01", factors=SEED, dtype="float16").explain()
    assert "update LOST" in text and "4.125e-5" in text
    # the float16 numbers next to 0.25 are 2^-13 apart below it: the gap is 2^-13, the threshold half of it
    # (2^-13 = 0.0001220703125, 2^-14 = 6.103515625e-05, exactly)
    assert "is below 6.103515625e-05, half the 0.0001220703125 gap from 0.25 to the next float16 below it" in text


# ----------------------------------------------------------------------------- CLI


def run(*args):
    return CliRunner().invoke(symvg.cli.cli, list(args))


def one_line_error(result):
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("symvg: error:")
    return lines[0]


def test_cli_update_factors_as_written():
    r = run("update", "--weight", "0.25", "--lr", "0.01", "--factors", *SEED, "--format", "json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert [d["dtype"] for d in out] == list(floats.DTYPES)
    assert [d["lost"] for d in out] == [True, False, False]
    assert {d["gradient"] for d in out} == {"33/8000"}


@pytest.mark.parametrize("spelling", [
    ["--factors", *SEED],
    ["--factors", " ".join(SEED)],
    ["--factors", ",".join(SEED)],
    [x for f in SEED for x in ("--factors", f)],
    ["--factors=25", *SEED[1:]],
    ["--factors", *SEED[:3], "--factors", *SEED[3:]],
])
def test_cli_factor_spellings_keep_order(spelling):
    r = run("update", "--weight", "0.25", "--lr", "0.01", *spelling, "--dtype", "float16", "--format", "json")
    assert r.exit_code == 0, r.output
    (d,) = json.loads(r.stdout)
    # float16's product of the factors, rounded after each step: 1081·2^-18, printed exactly
    assert d["gradient"] == "33/8000" and d["gradient_in_dtype"] == "0.004123687744140625"
    assert Fraction(d["gradient_in_dtype"]) == Fraction(1081, 2**18) == reference_update("0", "-1", SEED, "float16")


def test_cli_factors_before_other_options_and_negative_numbers():
    r = run("update", "--factors", "-2", "0.5", "--weight", "1", "--lr", "0.1", "--dtype", "float64",
            "--format", "json")
    assert r.exit_code == 0, r.output
    (d,) = json.loads(r.stdout)
    assert d["gradient"] == "-1" and d["new_weight_exact"] == "11/10"


def test_expand_greedy_stops_at_double_dash():
    assert expand_greedy(["--factors", "1", "--", "2"], ["--factors"]) == ["--factors", "1", "--", "2"]


def test_cli_update_text_explains():
    r = run("update", "--weight", "0.25", "--lr", "0.01", "--factors", *SEED)
    assert r.exit_code == 0
    assert "float16: new weight 0.25" in r.stdout
    assert "update LOST" in r.stdout and "update kept" in r.stdout
    assert "g = 25 × 0.25 × 0.22 × 0.2 × 0.15 × 0.1 = 0.004125" in r.stdout


def test_cli_update_simple_grad():
    r = run("update", "--weight", "0.25", "--lr", "0.01", "--grad", "1.25", "--dtype", "float64", "--format", "json")
    assert r.exit_code == 0
    (d,) = json.loads(r.stdout)
    assert d["new_weight_exact"] == "19/80" and d["new_weight"] == "0.2375"


def test_cli_underflow_json_and_text():
    r = run("underflow", "--factor", "0.25", "--dtype", "float16", "--format", "json")
    assert r.exit_code == 0
    (d,) = json.loads(r.stdout)
    assert (d["below_normal_depth"], d["zero_depth"], d["factor"]) == (8, 13, "1/4")
    r = run("underflow", "--factor", "0.75")
    assert r.exit_code == 0
    assert r.stdout.count("is exactly 0 at: never") == 3 and "float16" in r.stdout and "float64" in r.stdout


def test_cli_output_file(tmp_path):
    out = tmp_path / "u.json"
    r = run("underflow", "--factor", "1/4", "--format", "json", "--output", str(out))
    assert r.exit_code == 0 and r.stdout == ""
    assert [d["below_normal_depth"] for d in json.loads(out.read_text())] == [8, 64, 512]


@pytest.mark.parametrize("args, words", [
    (["underflow", "--factor", "2"], "never underflows"),
    (["underflow", "--factor", "abc"], "finite number"),
    (["underflow", "--factor", "0.5", "--dtype", "float8"], "float8"),
    (["underflow"], "--factor"),
    (["update", "--weight", "0.25", "--lr", "0.01"], "exactly one of --grad"),
    (["update", "--weight", "0.25", "--lr", "0.01", "--grad", "1", "--factors", "1"], "exactly one of --grad"),
    (["update", "--weight", "nan", "--lr", "0.01", "--grad", "1"], "weight must be a finite number"),
    (["update", "--weight", "1e6", "--lr", "0.01", "--grad", "1", "--dtype", "float16"], "overflows float16"),
    (["underflow", "--factor", "0.5", "--output", "/nonexistent/dir/x.json"], "does not exist"),
])
def test_cli_bad_input_exit_2_one_line(args, words):
    line = one_line_error(run(*args))
    assert words in line


def test_update_text_keeps_exact_values_short_and_exact():
    # a 1e-320 gradient: lr·g, w - lr·g and the steps have hundreds of digits as p/q; the text gives them in
    # exact short forms, and each form reads back to the exact value
    out = CliRunner().invoke(symvg.cli.cli, ["update", "--weight", "0.25", "--lr", "0.01", "--grad", "1e-320",
                                              "--dtype", "float64"]).output
    assert "lr·g = 1e-322, new weight w - lr·g = 0.25 - 1e-322" in out and "exact 2.5e+319;" in out
    assert max(len(line) for line in out.splitlines()) < 200
    for text, value in (("1e-322", sp.Rational(1, 10**322)), ("2.5e+319", 25 * sp.Integer(10)**318)):
        assert floats.exact_text(value) == text and sp.Rational(text.replace("e", "E")) == value
    third = sp.Rational(1, 3) - sp.Rational(1, 10**300)  # not a terminating decimal: p/q stays
    assert floats.exact_text(third) == f"{third.p}/{third.q}"


def test_update_text_writes_a_long_integer_as_an_integer():
    # steps = ceil(0.0025 / 3e-330) = 8.33…34e326: 327 digits, too many significant ones for a short form;
    # it is an integer, so it is written as one (not as p/1)
    out = CliRunner().invoke(symvg.cli.cli, ["update", "--weight", "0.25", "--lr", "1e-300", "--grad", "3e-30",
                                              "--dtype", "float64"]).output
    steps = -(-sp.Rational(1, 400) // (sp.Rational(1, 10**300) * sp.Rational(3, 10**30)))
    assert f"exact {steps}; never in float64" in out and "/1;" not in out
    assert floats.exact_text(-steps) == f"-{steps}"


def test_an_input_float16_cannot_hold_leaves_the_other_dtypes_answered():
    # w = 1e6 is beyond float16 (65504) but an ordinary float32/float64 weight: `--dtype all` used to exit 2
    # for all three. The float16 row says why it is not computed; the others match the exact arithmetic.
    r = CliRunner().invoke(symvg.cli.cli, ["update", "--weight", "1e6", "--lr", "0.1", "--grad", "1"])
    assert r.exit_code == 0, r.output
    assert "float16: not computed — weight = 1.0e+6 overflows float16" in r.stdout
    rows = floats.update_table("1e6", "0.1", grad="1")
    assert rows[0].unrepresentable and rows[0].new_weight == "" and rows[0].steps_status == "overflow"
    for u in rows[1:]:
        assert Fraction(float(np.dtype(u.dtype).type(u.new_weight))) == \
            ieee_round(Fraction(10**6) - ieee_round(Fraction(1, 10), u.dtype), u.dtype)
    d = json.loads(CliRunner().invoke(symvg.cli.cli, ["update", "--weight", "1e6", "--lr", "0.1", "--grad", "1",
                                                      "--format", "json"]).stdout)
    assert "overflows float16" in d[0]["not_computed"] and d[0]["spacing"] is None and "not_computed" not in d[1]


def test_update_from_the_largest_float_is_not_an_internal_error():
    """w = 65504 (float16's max): 65504 + 100 >= 65520 rounds to inf (IEEE); 65504 + 1 rounds back to 65504.

    The gap past the largest float was taken with nextafter, which is inf there: an OverflowError.
    """
    up = update("65504", "1", grad="-100", dtype="float16")
    assert up.new_weight == "inf" and "OVERFLOW" in up.explain()
    small = update("65504", "1", grad="-1", dtype="float16")
    assert small.lost and small.spacing == 32  # float16's ulp at 65504 is 2**(15 - 10)
    r = CliRunner().invoke(symvg.cli.cli, ["update", "--weight", "65504", "--lr", "1", "--grad", "-100",
                                            "--dtype", "float16"])
    assert r.exit_code == 0 and "OVERFLOW" in r.output, r.output


@pytest.mark.parametrize("digits", [17, 29])
def test_first_power_below_past_2_to_the_53(digits):
    """f = 1 - 10^-d: N = floor(k·ln 2 / ln(1/f)) + 1 is past 2^53, and the interval's ends were floored at 53 bits
    (1 - 1e-17 gave a wrong N); at d = 29 the 64-bit interval of ln(1/f) reached 0 (internal ValueError)."""
    import mpmath
    f = Fraction(10**digits - 1, 10**digits)
    with mpmath.workdps(80):  # the reference: N's 32 digits need far fewer than 80
        x = 1022 * mpmath.log(2) / mpmath.log(mpmath.mpf(10**digits) / (10**digits - 1))
        want = int(mpmath.floor(x)) + 1
        assert x - mpmath.floor(x) > mpmath.mpf("1e-30")  # not within the reference's error of an integer
    assert first_power_below(f, 1022) == want > 2**53
    r = CliRunner().invoke(symvg.cli.cli, ["underflow", "--factor", "0." + "9" * digits, "--dtype", "float64"])
    assert r.exit_code == 0 and f"N = {want}:" in r.output, r.output


@pytest.mark.parametrize("text, dtype", [("65519", "float16"), ("65520", "float16"),
                                         ("3.4028234663852886e38", "float32"), ("3.4028236e38", "float32")])
def test_overflow_is_where_ieee_rounds_to_inf_not_above_max(text, dtype):
    """A value rounds to ±inf only from max + half its gap on: 65519 is float16's 65504 and float32's max written
    3.4028234663852886e38 (a hair above it) is float32's max; both were refused as overflowing."""
    with np.errstate(over="ignore"):
        cast = np.dtype(dtype).type(float(text))  # the reference: NumPy's own rounding of the nearest double
    if np.isfinite(cast):
        assert round_to(Fraction(text), dtype) == cast
        assert float(update(text, "1", grad="1", dtype=dtype).weight_in_dtype) == float(cast)  # names the float
    else:
        with pytest.raises(InvalidValueError, match="overflows"):
            round_to(Fraction(text), dtype)


# ----------------------------------------------------------------------------- dtype values as printed


def test_every_float16_is_printed_as_its_exact_value():
    """NumPy's str of a float16 is its shortest text *in float16*: 65504 (the largest) was '6.55e+04', which reads
    as 65500. Every float16 has at most 21 significant digits: each one is printed exactly (Fraction compares)."""
    bits = np.arange(0, 0x7C00, 7, dtype=np.uint16)  # every 7th positive finite float16, subnormals included
    for v in np.concatenate([bits, bits | 0x8000]).view(np.float16):
        assert Fraction(floats.dtype_text(v)) == Fraction(float(v)), v


def test_float32_and_float64_are_exact_or_name_the_float():
    rng = np.random.default_rng(4)
    for dt, ut in (("float32", np.uint32), ("float64", np.uint64)):
        vs = rng.integers(0, np.iinfo(ut).max, 1500, dtype=ut, endpoint=True).view(dt)
        for v in vs[np.isfinite(vs)]:
            t = floats.dtype_text(v)
            exact = Fraction(t) == Fraction(float(v))
            digits = len(t.split("e")[0].replace("-", "").replace(".", "").strip("0"))
            assert exact or (float(t) == float(v) and digits <= 17), (dt, v, t)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_update_prints_float16_65504_exactly(fmt):
    r = run("update", "--weight", "65504", "--lr", "0.01", "--grad", "1", "--dtype", "float16", "--format", fmt)
    assert r.exit_code == 0, r.output
    assert "6.55e" not in r.stdout
    if fmt == "json":
        (d,) = json.loads(r.stdout)
        # 65503.99 rounds back to 65504 (float16's gap there is 32); lr = 0.01 is 1311·2^-17 in float16
        assert (d["weight_in_dtype"], d["new_weight"]) == ("65504.0", "65504.0")
        assert Fraction(d["step_in_dtype"]) == Fraction(1311, 2**17)
    else:
        assert "new weight 65504.0 (exact 65503.99)" in r.stdout and "w stays 65504.0" in r.stdout
        assert "(float16: 0.01000213623046875)" in r.stdout  # 1311·2^-17


def test_overflow_names_the_largest_float_exactly():
    text = update("65504", "1", grad="-30", dtype="float16").explain()
    assert "beyond the largest float16 (65504.0)" in text  # (2 - 2^-10)·2^15
    with pytest.raises(InvalidValueError, match=r"\|value\| <= 3\.4028234663852886e\+38"):  # float32's max, 17 digits
        update("1e39", "1", grad="1", dtype="float32")


def test_underflow_prints_the_stored_factor_and_limits_exactly():
    text = underflow("0.1", "float16").explain()
    # float16(0.1) = 819·2^-13; smallest normal 2^-14; smallest subnormal 2^-24
    assert "(float16: 0.0999755859375)" in text and "smallest normal 6.103515625e-05" in text
    assert "smallest subnormal / 2 = 5.9604644775390625e-08 / 2" in text
    assert "4.9406564584124654e-324 / 2" in underflow("0.1", "float64").explain()  # not repr's 5e-324
