"""Numerical honesty: a float that underflowed to 0 or overflowed to inf is never printed as if it were the
answer. The CLI says so and points to the exact value, its log10, or ``--log-domain``."""

from __future__ import annotations

import json
import re

from click.testing import CliRunner

from symvg.cli import cli


def run(*args: str) -> str:
    r = CliRunner().invoke(cli, list(args))
    assert r.exit_code == 0, r.stderr
    assert r.stderr == "" or args[0] == "plot", r.stderr
    return r.stdout


def strict_json(text: str):
    def no_constant(c):
        raise AssertionError(f"non-JSON constant {c}")
    return json.loads(text, parse_constant=no_constant)


def test_eval_sigmoid_800_text_says_underflow_and_log_domain():
    out = run("eval", "--layers", "800", "--samples", "64")
    assert "underflow" in out and "--log-domain" in out


def test_eval_sigmoid_800_json_carries_the_note():
    d = strict_json(run("eval", "--layers", "800", "--samples", "64", "--format", "json"))
    assert d["layers"][0]["zeros"] == 64
    assert 1 in d["zero_layers"] and "--log-domain" in d["note"]


def test_eval_log_domain_has_no_zeros_and_no_note():
    d = strict_json(run("eval", "--layers", "800", "--samples", "64", "--log-domain", "--format", "json"))
    assert "note" not in d and d["scale"] == "log10"
    assert all(L["zeros"] == 0 for L in d["layers"])
    assert d["layers"][0]["log10_median_abs"] < -300  # log10 |g|: far below float64's range, and still reported


def test_eval_shallow_has_no_note():
    assert "underflow" not in run("eval", "--layers", "5", "--samples", "64")


def test_bound_layers_5000_text_shows_true_exponent():
    out = run("bound", "--layers", "5000")
    line = next(ln for ln in out.splitlines() if ln.startswith("bound at depth 5000"))
    assert "e-3011" in line and "float64" in line
    assert not re.search(r"≈ 0(\s|$)", line)


def test_bound_layers_5000_json_float_field_has_a_note():
    d = strict_json(run("bound", "--layers", "5000", "--format", "json"))
    assert d["bound_value"] == 0.0 and abs(d["log10_bound"] - (-3010.2999566)) < 1e-6
    assert "underflows" in d["note"] and "log10_bound" in d["note"]
    assert d["bound"] == "(1/4)**5000"  # the exact value is there (a power too long to write out)


def test_bound_overflow_is_null_with_a_note_not_a_crash():
    d = strict_json(run("bound", "--activation", "tanh", "--weight", "3", "--layers", "5000", "--format", "json"))
    assert d["bound_value"] is None and "overflows" in d["note"] and d["log10_bound"] > 2385
    text = run("bound", "--activation", "tanh", "--weight", "3", "--layers", "5000")
    assert "e+2385" in text and "≈ inf" not in text


def test_bound_weights_beyond_float_range():
    for w, word in (("1e-999", "underflows"), ("1e999", "overflows")):
        d = strict_json(run("bound", "--weight", w, "--layers", "3", "--tol", "1e-6", "--format", "json"))
        # a huge ceiling proves no explosion (sigmoid's floor is 0): the depth is where it is no longer excluded
        assert word in d["note"] and d["depth_to_vanish" if w.startswith("1e-") else "depth_may_explode"] == 1


def test_bound_in_range_has_no_note():
    d = strict_json(run("bound", "--activation", "tanh", "--weight", "0.9", "--layers", "50", "--format", "json"))
    assert "note" not in d and 0 < d["bound_value"] < 1


def test_sweep_huge_depths_never_prints_bare_zero_or_inf():
    out = run("sweep", "--layers", "90000..100000..5000", "--activations", "sigmoid,relu,tanh", "--weight", "2")
    cells = [c for ln in out.splitlines()[4:7] for c in ln.split()[1:]]
    assert cells and all(re.fullmatch(r"\d\.\d{3}e[+-]\d+", c) for c in cells), cells
    d = strict_json(run("sweep", "--layers", "90000..100000..5000", "--weight", "3", "--format", "json"))
    for col in d["activations"]:
        assert all(isinstance(v, float) for v in col["log10_bound"])
        assert all(b not in ("0", "0.0", "inf") for b in col["bound"])


def test_sweep_extreme_weight_is_not_an_internal_error():
    d = strict_json(run("sweep", "--layers", "1..3", "--weight", "1e-999", "--format", "json"))
    assert d["activations"][0]["log10_bound"][0] < -999


def test_underflow_reports_depths_not_zeros():
    d = strict_json(run("underflow", "--factor", "0.25", "--dtype", "float64", "--format", "json"))
    assert d[0]["zero_depth"] == 538 and d[0]["below_normal_depth"] == 512


def test_update_overflow_is_said_not_passed_off():
    out = run("update", "--weight", "60000", "--lr", "100", "--grad", "1000", "--dtype", "float16")
    assert "OVERFLOW" in out and "exact -40000" in out and "update kept" not in out
    out = run("update", "--weight", "60000", "--lr", "1", "--grad", "-10000", "--dtype", "float16")
    assert "OVERFLOW" in out and "w - lr·g" in out
    d = strict_json(run("update", "--weight", "60000", "--lr", "100", "--grad", "1000", "--dtype", "float16",
                        "--format", "json"))
    assert d[0]["new_weight"] == "-inf" and d[0]["new_weight_exact"] == "-40000"
    assert d[0]["steps_to_move_1pct"]["status"] == "overflow"


def test_update_lost_to_rounding_is_said():
    out = run("update", "--weight", "1", "--lr", "1e-300", "--grad", "1e-300", "--dtype", "float64")
    assert "update LOST" in out


def _mantissa(text: str) -> float:
    """The significand of the first ≈ decimal in ``text`` (e.g. '4.699e+307397940008' -> 4.699)."""
    return float(re.search(r"≈ ([0-9.]+)[eE]", text).group(1))


def test_bound_of_a_long_base_at_great_depth_is_the_true_power():
    # (2.5e307)^(10^9) = 10^307397940008.67203760957... (mpmath, 50 digits): 4.6993480284e+307397940008.
    # Rounding the base to 10 digits first gave 4.712662787e+... (wrong from the third digit).
    out = run("bound", "--activation", "sigmoid", "--weight", "1e308", "--layers", "1000000000")
    line = next(s for s in out.splitlines() if s.startswith("bound at depth"))
    assert "E+307397940008" in line.upper()
    assert abs(_mantissa(line) - 4.6993480284) < 1e-8


def test_bound_near_one_at_great_depth_is_the_true_power():
    # (1 + 1e-7)^(10^7) = 2.718281692544966... (mpmath); the 10-digit base gave 2.718302391.
    out = run("bound", "--activation", "tanh", "--weight", "1.0000001", "--layers", "10000000")
    line = next(s for s in out.splitlines() if s.startswith("bound at depth"))
    assert abs(float(line.split("≈ ")[1]) - 2.7182816925) < 1e-9


def test_bound_at_a_depth_of_1e20_is_an_answer_not_an_internal_error():
    # (1/4)^(10^20) = 10^(-6.0206e19): its exponent is beyond a decimal's; the cell must still be written
    out = run("bound", "--activation", "sigmoid", "--weight", "1.0000001", "--layers", "100000000000000000000")
    line = next(s for s in out.splitlines() if s.startswith("bound at depth"))
    assert "10**(-6.020599479e+19)" in line      # 10^20·log10(0.250000025) = -6.0205994789e19
