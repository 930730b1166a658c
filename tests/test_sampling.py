"""symvg.sampling and the ``symvg eval`` command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import symvg.cli
from symvg.chain import Chain
from symvg.errors import InvalidValueError
from symvg.numeric import gradients
from symvg.sampling import check_memory, init_params, sample


def test_stats_match_a_direct_computation():
    s = sample(Chain(6, "tanh"), samples=3000, seed=4, tol=1e-3)
    rng = np.random.default_rng(4)  # the same draws, in the documented order
    W, B = rng.standard_normal((6, 3000)), rng.standard_normal((6, 3000))
    x, y = rng.standard_normal(3000), rng.standard_normal(3000)
    g = np.abs(gradients(Chain(6, "tanh"), x, y, W, B))
    for L in s.layers:
        row = g[L.k - 1]
        assert L.median_abs == pytest.approx(np.median(row), rel=1e-12)
        assert L.mean_abs == pytest.approx(row.mean(), rel=1e-12)
        assert L.q05 == pytest.approx(np.quantile(row, 0.05), rel=1e-12)
        assert L.frac_below_tol == pytest.approx(np.mean(row < 1e-3))
        assert L.q05 <= L.q25 <= L.median_abs <= L.q75 <= L.q95


def test_seed_reproducible_and_shared_weights():
    a = sample(Chain(4), samples=500, seed=1, shared_weights=True)
    assert a == sample(Chain(4), samples=500, seed=1, shared_weights=True)
    assert a != sample(Chain(4), samples=500, seed=2, shared_weights=True)
    assert a.shared_weights and a.as_dict()["layers"][3]["k"] == 4


def test_underflow_counted_and_log_domain_recovers_it():
    direct = sample(Chain(700, "sigmoid"), samples=50, seed=0)
    assert direct.layers[0].zeros == 50 and 1 in direct.underflowed
    logged = sample(Chain(700, "sigmoid"), samples=50, seed=0, log=True)
    assert logged.layers[0].zeros == 0 and logged.scale == "log10"
    assert -1000 < logged.layers[0].median_abs < -308  # below float64's range, but known
    assert logged.layers[0].frac_below_tol == 1.0


def test_inits_and_bad_values():
    assert init_params("xavier")[:2] == (0.0, 1.0)
    with pytest.raises(InvalidValueError, match="std >= 0"):
        init_params((0, -1))
    with pytest.raises(InvalidValueError, match="samples"):
        sample(Chain(2), samples=0)
    with pytest.raises(InvalidValueError, match="needs about"):
        check_memory(2 * 10**9, available=10**9)
    # he doubles the weight variance: later layers' gradients grow relative to gaussian(0, 1)
    he = sample(Chain(8, "linear"), samples=4000, init="he", seed=3)
    ga = sample(Chain(8, "linear"), samples=4000, init=(0, 1), seed=3)
    assert he.layers[0].median_abs > 4 * ga.layers[0].median_abs


def _run(*args):
    return CliRunner().invoke(symvg.cli.cli, list(args))


def test_cli_text_json_and_output(tmp_path):
    r = _run("eval", "--layers", "5", "--samples", "200")
    assert r.exit_code == 0, r.output
    assert "median |g|" in r.output and r.output.count("\n") >= 8
    r = _run("eval", "-n", "3", "-m", "100", "--format", "json", "--dtype", "float32", "--init", "0,0.5")
    d = json.loads(r.output)
    assert d["dtype"] == "float32" and len(d["layers"]) == 3 and d["init"].startswith("gaussian(mean=0.0")
    out = tmp_path / "s.json"
    assert _run("eval", "-n", "2", "-m", "10", "--format", "json", "-o", str(out)).exit_code == 0
    assert json.loads(out.read_text())["depth"] == 2


def test_cli_underflow_points_to_log_domain():
    r = _run("eval", "--layers", "700", "--samples", "20")
    assert r.exit_code == 0 and "exactly 0 in float64" in r.output and "--log-domain" in r.output
    r = _run("eval", "--layers", "700", "--samples", "20", "--log-domain")
    assert "log10|g|" in r.output and "--log-domain to see" not in r.output


@pytest.mark.parametrize("args, needle", [
    (["--layers", "0"], "--layers"),
    (["--layers", "3", "--init", "uniform"], "--init"),
    (["--layers", "3", "--activation", "sigmod"], "unknown activation"),
    (["--layers", "3", "--samples", "10000000000"], "needs about"),
    (["--layers", "3", "--dtype", "float16"], "--dtype"),
])
def test_cli_bad_input_one_line_exit_2(args, needle):
    r = _run("eval", *args)
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("symvg: error:") and needle in lines[0]


def test_cli_cupy_missing_exit_1():
    try:
        import cupy  # noqa: F401
        pytest.skip("CuPy installed")
    except ImportError:
        pass
    r = _run("eval", "--layers", "2", "--samples", "5", "--backend", "cupy")
    assert r.exit_code == 1 and "symvg[gpu]" in r.stderr


def test_overflow_and_domain_errors_are_reported_not_tabled():
    # linear layers with weights ~1e40 overflow float64: once a table of inf (and NaN quantiles); now a report
    from symvg.chain import Chain
    from symvg.errors import DomainError, OverflowReport
    from symvg.sampling import sample

    with pytest.raises(OverflowReport):
        sample(Chain(9, "linear"), samples=400, init=(0.0, 1e40), seed=1)
    with pytest.raises(DomainError):
        sample(Chain(3, "expr:log(z)"), samples=50, seed=1)


@pytest.mark.parametrize("args", [["-a", "linear", "-n", "12", "--init", "0,1e40"],
                                  ["-a", "linear", "-n", "12", "--init", "0,1e40", "--log-domain"],
                                  ["-n", "3", "--init", "1e308,0"], ["-n", "3", "-a", "expr:log(z)"],
                                  ["-n", "3", "-a", "expr:sqrt(z)"], ["-n", "3", "-a", "expr:1e400*z"]])
def test_cli_eval_reports_inf_and_nan_in_one_line_exit_1(args):
    r = _run("eval", "-m", "50", *args)
    assert r.exit_code == 1, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("symvg: error: dL/dw_k"), r.stderr


def test_cli_eval_saturated_bce_is_a_table_of_numbers():
    # issue 15: a table of nan, from (h - y)/(h(1 - h)) at h = 1
    r = _run("eval", "-n", "3", "-m", "200", "--loss", "bce", "--init", "40,1")
    assert r.exit_code == 0, r.output
    assert "nan" not in r.output and "inf" not in r.output
