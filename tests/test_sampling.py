"""symvg.engines.sampling and the ``symvg eval`` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner

import symvg.cli
import symvg.views
from symvg.symbolic.activations import Activation
from symvg.symbolic.chain import Chain
from symvg.symbolic.parse import z
from symvg.errors import InvalidValueError
from symvg.engines.numeric import gradients
from symvg.engines.sampling import check_memory, init_params, sample

EVAL_SCHEMA = Path(symvg.views.__file__).parent / "schemas" / "eval.schema.json"


def _draws(chain, seed, sizes):
    """The gradients of every chunk, drawn independently of sampling.py in its documented order, side by side."""
    parts = []
    for i, size in enumerate(sizes):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i,)))
        W, B = rng.standard_normal((chain.depth, size)), rng.standard_normal((chain.depth, size))
        x, y = rng.standard_normal(size), rng.standard_normal(size)
        parts.append(gradients(chain, x, y, W, B, engine="chunked", allow_underflow=True))
    return np.concatenate(parts, axis=1)


def test_stats_match_a_direct_computation():
    s = sample(Chain(6, "tanh"), samples=3000, seed=4, tol=1e-3, engine="chunked")
    assert s.chunk == 3000 and s.quantile_resolution is None  # one chunk: exact quantiles
    g = np.abs(_draws(Chain(6, "tanh"), 4, [3000]))
    for L in s.layers:
        row = g[L.k - 1]
        assert L.median_abs == pytest.approx(np.median(row), rel=1e-12)
        assert L.mean_abs == pytest.approx(row.mean(), rel=1e-12)
        assert L.q05 == pytest.approx(np.quantile(row, 0.05), rel=1e-12)
        assert L.frac_below_tol == pytest.approx(np.mean(row < 1e-3))
        assert L.q05 <= L.q25 <= L.median_abs <= L.q75 <= L.q95


@pytest.mark.parametrize("log", [False, True])
def test_streamed_statistics_match_all_at_once_on_the_same_draws(log):
    # 4 chunks of 700 (the last 400): counts exact, means to rounding, quantiles within the stated resolution
    chain = Chain(5, "sigmoid")
    s = sample(chain, samples=2500, seed=7, tol=1e-3, engine="chunked", chunk=700, log=log)
    g = np.abs(_draws(chain, 7, [700, 700, 700, 400]))
    res = s.quantile_resolution
    assert s.chunk == 700 and 0 < res < 1e-3  # 16384 bins over a window of a few decades
    for L in s.layers:
        row = g[L.k - 1]
        assert L.frac_below_tol == np.count_nonzero(row < 1e-3) / 2500 and L.zeros == 0
        v = np.log10(row) if log else row
        assert L.mean_abs == pytest.approx(v.mean(), rel=1e-13)
        for got, q in zip((L.q05, L.q25, L.median_abs, L.q75, L.q95), (0.05, 0.25, 0.5, 0.75, 0.95)):
            want = np.quantile(v, q)
            if log:
                assert abs(got - want) <= res * (1 + 1e-9)
            else:
                assert abs(got / want - 1) <= 10 ** res - 1 + 1e-12


def test_streamed_zeros_are_exact_and_quantiles_among_them_are_zero():
    # ReLU: 3/4 of depth-2 networks pass no gradient to layer 1, so its q05..q25..median are exactly 0
    chain = Chain(2, "relu")
    s = sample(chain, samples=3000, seed=1, engine="chunked", chunk=1000)
    g = np.abs(_draws(chain, 1, [1000] * 3))
    for L in s.layers:
        row = g[L.k - 1]
        assert L.zeros == np.count_nonzero(row == 0)
        assert (L.subnormal, L.mean_abs) == (0, pytest.approx(row.mean(), rel=1e-13))
        for got, q in zip((L.q05, L.median_abs, L.q95), (0.05, 0.5, 0.95)):
            want = np.quantile(row, q)
            if want == 0:
                assert got == 0
            else:
                assert abs(got / want - 1) <= 10 ** s.quantile_resolution - 1 + 1e-12


def test_streamed_run_is_reproducible_and_chunk_sized_by_depth_not_samples():
    from symvg.engines.sampling import chunk_samples

    a = sample(Chain(3, "tanh"), samples=2000, seed=3, engine="chunked", chunk=500)
    assert a == sample(Chain(3, "tanh"), samples=2000, seed=3, engine="chunked", chunk=500)
    assert chunk_samples(20, 10**6) == chunk_samples(20, 10**8) == (32 << 20) // (20 * 8)
    assert chunk_samples(20, 10**6, "float32") == 2 * chunk_samples(20, 10**6)


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
    assert logged.as_dict()["layers"][0]["log10_median_abs"] == logged.layers[0].median_abs
    assert logged.layers[0].frac_below_tol == 1.0


def _eval_json(*args):
    r = CliRunner().invoke(symvg.cli.cli, ["eval", *args, "--format", "json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_log_domain_json_names_log10_statistics_and_validates():
    import jsonschema

    schema = json.loads(EVAL_SCHEMA.read_text())
    args = ["--layers", "4", "--activation", "tanh", "--samples", "301", "--seed", "2"]
    linear, logged = _eval_json(*args), _eval_json(*args, "--log-domain")
    jsonschema.validate(linear, schema)
    jsonschema.validate(logged, schema)
    for a, b in zip(linear["layers"], logged["layers"]):
        assert "median_abs" not in b and "mean_abs" not in b and "q05" not in b
        # an odd sample count: the median is one order statistic, and log10 keeps the order
        assert b["log10_median_abs"] == pytest.approx(np.log10(a["median_abs"]), abs=1e-9)
        assert b["log10_geomean_abs"] <= np.log10(a["mean_abs"])  # AM-GM: a mean of logs is not a log of the mean
    renamed = dict(logged, layers=[dict(L, median_abs=L["log10_median_abs"]) for L in logged["layers"]])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(renamed, schema)


def test_streamed_cli_states_its_resolution_text_and_json():
    import jsonschema

    schema = json.loads(EVAL_SCHEMA.read_text())
    args = ["--layers", "3", "--samples", "3000", "--chunk", "1000", "--engine", "chunked"]
    for extra in ([], ["--log-domain"]):
        d = _eval_json(*args, *extra)
        jsonschema.validate(d, schema)
        assert d["quantiles"] == "histogram" and d["chunk"] == 1000 and 0 < d["quantile_resolution"] < 1e-3
        assert "3 chunks of 1000 samples" in d["quantile_note"]
    one = _eval_json("--layers", "3", "--samples", "300")
    jsonschema.validate(one, schema)
    assert (one["quantiles"], one["quantile_resolution"], one["chunk"]) == ("exact", None, 300)
    assert "quantile_note" not in one
    with pytest.raises(jsonschema.ValidationError):  # a histogram run must say how far off it may be
        jsonschema.validate(dict(d, quantile_resolution=None), schema)
    r = CliRunner().invoke(symvg.cli.cli, ["eval", *args])
    assert r.exit_code == 0 and "note: quantiles from per-layer histograms of log10|g|" in r.stdout
    assert "% of |g|" in r.stdout


def test_relu_chain_zeros_are_explained_as_dead_paths():
    # Each unit of a zero-mean width-1 ReLU chain is on with probability 1/2: 2^-N of networks pass a gradient.
    for n in (2, 4):
        d = _eval_json("--layers", str(n), "--activation", "relu", "--init", "he", "--samples", "4000")
        dead = d["dead_paths"]
        p = 2.0 ** -n
        assert dead["expected"] == p and dead["samples"] == 4000
        assert abs(dead["observed"] - p) < 4 * (p * (1 - p) / 4000) ** 0.5  # binomial, 4 standard errors
        assert all(L["zeros"] == 4000 - dead["nonzero"] for L in d["layers"])  # one event kills every layer
        assert f"2^-{n}" in dead["note"]
    r = CliRunner().invoke(symvg.cli.cli, ["eval", "--layers", "6", "-a", "relu", "--init", "he", "--samples", "500"])
    assert "note: a width-1 ReLU chain passes a gradient only when all 6 units are on" in r.stdout
    for other in (["-a", "tanh"], ["-a", "leaky_relu"], ["-a", "relu", "--residual"], ["-a", "relu", "--init", "1,1"]):
        assert "dead_paths" not in _eval_json("--layers", "3", "--samples", "200", *other)


@pytest.mark.parametrize("args,limit", [(["--init", "0,1e308"], "1.798e+308"),
                                        (["--init", "0,1e39", "--dtype", "float32"], "3.403e+38")])
def test_init_that_overflows_is_one_line_without_numpy_warnings(args, limit):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = CliRunner().invoke(symvg.cli.cli, ["eval", "--layers", "3", "--samples", "50", *args])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and limit in r.stderr, r.stderr
    assert [str(w.message) for w in caught] == []  # NumPy's overflow warnings would print before the error


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
    r = _run("eval", "-n", "3", "-m", "100", "--format", "markdown")
    assert r.exit_code == 0 and "| k | median \\|g\\| | mean \\|g\\| | q05 |" in r.output  # a pipe in a cell is escaped
    assert r.output.count("\n| ") == 1 + 3 and "|---|---|" in r.output
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
    (["--layers", "3", "--samples", "10000000000"], "bounded time"),
    # admitted before and minutes of work: 2·10^8 gradients (15-22 s per 10^8 measured), and 10^8 one-sample chunks
    (["--layers", "20", "--samples", "10000000"], "bounded time"),
    (["--layers", "1000", "--samples", "100000", "--chunk", "1"], "raise --chunk"),
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
    from symvg.symbolic.chain import Chain
    from symvg.errors import DomainError, OverflowReport
    from symvg.engines.sampling import sample

    with pytest.raises(OverflowReport):
        sample(Chain(9, "linear"), samples=400, init=(0.0, 1e40), seed=1)
    with pytest.raises(DomainError):
        sample(Chain(3, Activation("log", sp.log(z), 1 / z)), samples=50, seed=1)  # built directly: "expr:log(z)" is refused


@pytest.mark.parametrize("args", [["-a", "linear", "-n", "12", "--init", "0,1e40"],
                                  ["-a", "linear", "-n", "12", "--init", "0,1e40", "--log-domain"],
                                  ["-n", "3", "--init", "1e308,0"]])  # expr:log(z), expr:sqrt(z): refused, exit 2
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


def test_reductions_on_cupy_equal_numpy_on_the_same_gradients(cupy):
    """The array-module code on the device: same counts and extremes, means to rounding, same histograms."""
    from symvg.engines import streaming as S

    g = np.abs(_draws(Chain(4, "relu"), 2, [1500]))
    res = {}
    for xp in (np, cupy):
        acc = S.accumulate(S.new(xp, 4), xp, xp.asarray(g), None, 1e-3, np.finfo(np.float64).tiny)
        lo, width = S.windows(acc, xp)
        counts = S.histogram(xp, xp.asarray(g), None, lo, width, 256)[0]
        res[xp.__name__] = [S.to_host(a) for a in (acc["zeros"], acc["below"], acc["min"], acc["max"], counts,
                                                    S.mean(acc), S.exact_quantiles(xp, xp.asarray(g), None, (0.5,)))]
    for a, b in zip(res["numpy"][:5], res["cupy"][:5]):
        assert (a == b).all()
    np.testing.assert_allclose(res["cupy"][5], res["numpy"][5], rtol=1e-13)
    np.testing.assert_allclose(res["cupy"][6], res["numpy"][6], rtol=1e-15)
    s = sample(Chain(4, "tanh"), samples=3000, seed=0, backend="cupy", chunk=1000)  # drawn on the device
    assert s.engine == "cuda" and all(L.q05 <= L.median_abs <= L.q95 for L in s.layers)


def test_networks_drawn_in_the_cuda_kernel_are_the_reference_draws(cupy):
    """Per-sample networks drawn inside the whole-chain kernel: the statistics are those of the CPU engine on
    the same networks (cuda.Draw.inputs, the NumPy reference of the draws), whatever the chunk size."""
    from symvg.engines.cuda import Draw

    chain, m = Chain(5, "sigmoid"), 4000
    one = sample(chain, samples=m, seed=3, backend="cupy")
    assert one.engine == "cuda" and one.quantile_resolution is None
    g = np.abs(gradients(chain, *Draw.from_seed(3, b_std=1.0).inputs(5, m), allow_underflow=True))
    for got, want in zip(one.layers, g):
        np.testing.assert_allclose([got.median_abs, got.mean_abs, got.q95], [np.median(want), want.mean(),
                                                                             np.quantile(want, 0.95)], rtol=1e-12)
    parts = sample(chain, samples=m, seed=3, backend="cupy", chunk=1000)
    assert [(L.zeros, L.frac_below_tol) for L in parts.layers] == [(L.zeros, L.frac_below_tol) for L in one.layers]
    np.testing.assert_allclose([L.mean_abs for L in parts.layers], [L.mean_abs for L in one.layers], rtol=1e-13)


def test_histogram_flags_order_statistics_outside_its_window_and_exact_windows_bound_the_error():
    from symvg.engines import streaming as S

    qs = (0.05, 0.25, 0.5, 0.75, 0.95)
    g = 10.0 ** np.random.default_rng(0).uniform(-30, 0, size=(2, 5000))
    g[1, :100] = 0  # 2 % zeros: counted, and below every quantile asked for
    acc = S.accumulate(S.new(np, 2), np, g, None, 1e-8, np.finfo(np.float64).tiny)
    want = np.quantile(g, qs, axis=1)
    lo, width = np.array([-15.0, -30.0]), np.array([15.0, 30.0])  # layer 1's window misses its lower half
    counts, below, above = S.histogram(np, g, None, lo, width, 4096)
    _, ranks = S.histogram_quantiles(np, acc, counts, lo, width, False, qs)
    ok = S.trusted(ranks, below, above, acc["n"] - acc["zeros"])
    assert not ok[:2, 0].any() and ok[3:, 0].all() and ok[:, 1].all()  # q05, q25 ~ 1e-28, 1e-22 lie below 1e-15
    lo, width = S.windows(acc, np)  # the exact [min, max]: nothing outside, every quantile within half a bin
    counts, below, above = S.histogram(np, g, None, lo, width, 4096)
    got, ranks = S.histogram_quantiles(np, acc, counts, lo, width, False, qs)
    assert below.sum() == above.sum() == 0 and S.trusted(ranks, below, above, acc["n"] - acc["zeros"]).all()
    assert (np.abs(np.log10(got / want)) <= width / 4096 / 2 * (1 + 1e-9)).all()
    assert (np.abs(np.log10(got / want)) > 0).any()  # approximate: it is the bound, not luck, that holds


def test_a_first_chunk_window_that_misses_is_histogrammed_again_on_the_exact_range(monkeypatch):
    from symvg.engines import streaming as S

    real, pads = S.windows, []

    def narrow(acc, xp, pad=0.0):  # the first chunk's window made to miss most values
        pads.append(pad)
        lo, width = real(acc, xp, pad)
        return (lo + width / 2, width / 100) if pad else (lo, width)

    monkeypatch.setattr(S, "windows", narrow)
    chain = Chain(3, "tanh")
    s = sample(chain, samples=2000, seed=5, chunk=500, engine="chunked")
    assert pads == [0.5, 0.0]  # the second pass drew the same chunks again
    g = np.abs(_draws(chain, 5, [500] * 4))
    for L in s.layers:
        for got, q in zip((L.q05, L.median_abs, L.q95), (0.05, 0.5, 0.95)):
            assert abs(got / np.quantile(g[L.k - 1], q) - 1) <= 10 ** s.quantile_resolution - 1 + 1e-12


def test_a_tiny_init_parameter_beside_a_normal_one_is_not_refused():
    """N(1e-40, 1) in float32 draws normal-sized weights (the 1e-40 rounds away in float64, as any float would):
    was refused as "subnormal or 0". Both parameters below float32's smallest normal number still are."""
    chain = Chain(3, "sigmoid")
    got = sample(chain, samples=200, init=(1e-40, 1.0), seed=0, dtype="float32")
    want = sample(chain, samples=200, init=(0.0, 1.0), seed=0, dtype="float32")
    np.testing.assert_allclose([L.mean_abs for L in got.layers], [L.mean_abs for L in want.layers], rtol=1e-6)
    for init in ((1e-40, 0.0), (1e-40, 1e-41), (0.0, 1e-50)):
        with pytest.raises(InvalidValueError, match="below float32's smallest normal number"):
            sample(chain, samples=10, init=init, seed=0, dtype="float32")


def _recording(monkeypatch) -> dict[int, list[np.ndarray]]:
    """Every chunk's gradients as sample() evaluates them, by chunk index (one entry per pass over the chunks)."""
    from symvg.engines import sampling as SM
    seen: dict[int, list[np.ndarray]] = {}
    evaluated = SM._Run.evaluated

    def spy(self, i, size):
        r = evaluated(self, i, size)
        seen.setdefault(i, []).append(np.array(r[0]))
        return r

    monkeypatch.setattr(SM._Run, "evaluated", spy)
    return seen


def test_unseeded_second_pass_redraws_the_same_samples(monkeypatch):
    # Without a seed, the second pass over exact windows (streaming's fallback) must see the first pass's draws:
    # once it drew fresh ones, q50 of tanh's layer 1 came out 0.021 where the run's own samples gave 0.0053.
    seen = _recording(monkeypatch)
    s = sample(Chain(2, "tanh"), samples=24, chunk=1, seed=None, engine="chunked")
    assert all(len(v) == 2 for v in seen.values())  # chunk 0's window (± 0.5 decade) misses q05/q95: a second pass
    assert all(np.array_equal(v[0], v[1]) for v in seen.values())
    g = np.abs(np.concatenate([seen[i][0] for i in range(24)], axis=1))
    for L, row in zip(s.layers, g):
        for got, q in zip((L.q05, L.median_abs, L.q95), (0.05, 0.5, 0.95)):
            assert abs(np.log10(got / np.quantile(row, q))) <= s.quantile_resolution * (1 + 1e-9)


def test_below_tol_counts_a_float32_gradient_just_under_tol():
    # float32(0.7) = 0.699999988 < 0.7: below tol, though NumPy compares it with tol rounded to float32 (equal)
    from symvg.engines import streaming as S
    g = np.array([[np.float32(0.7), np.float32(0.5), np.float32(0.75)]], dtype=np.float32)
    assert float(g[0, 0]) < 0.7
    a = S.accumulate(S.new(np, 1), np, g, None, tol=0.7, tiny=float(np.finfo(np.float32).tiny))
    assert int(a["below"][0]) == 2


def test_zero_weights_zeros_are_not_called_underflow():
    # init 0,0: every w_k = 0, so dL/dw_1 = δ·x has the factor w_2 = 0: exactly 0, not underflowed (the log domain,
    # which would report underflow, finds the same zeros). The note once said "they underflowed (or a ReLU was off)".
    args = ["eval", "--layers", "2", "-a", "tanh", "--init", "0,0", "--samples", "6", "--format", "json"]
    direct = json.loads(CliRunner().invoke(symvg.cli.cli, args).output)
    log = json.loads(CliRunner().invoke(symvg.cli.cli, [*args, "--log-domain"]).output)
    assert [L["zeros"] for L in direct["layers"]] == [L["zeros"] for L in log["layers"]] == [6, 6]
    assert "exactly 0" in direct["note"] and "they underflowed" not in direct["note"]
    assert log["layers"][0]["log10_median_abs"] is None and "undefined (- or null) in layers 1, 2" in log["note"]


@pytest.mark.parametrize("chunk", [None, 70])
def test_mean_of_huge_gradients_is_not_an_overflowed_sum(monkeypatch, chunk):
    # |g| ~ 1e306 (linear, w ~ N(0, 1e306)): 500 of them sum past 1.8e308, but their mean is ~2e306. It came out
    # inf or NaN (printed '-', null in JSON); the reference sums |g| / 2^10 exactly scaled, with math.fsum.
    import math
    seen = _recording(monkeypatch)
    s = sample(Chain(1, "linear"), samples=500, init=(0.0, 1e306), seed=0, chunk=chunk, engine="chunked")
    v = np.abs(np.concatenate([seen[i][0] for i in sorted(seen)], axis=1)[0])
    assert v.size == 500 and np.isfinite(v).all() and math.fsum(v / 1024) > np.finfo(np.float64).max / 1024
    ref = math.fsum(v / 1024) / 500 * 1024
    assert abs(s.layers[0].mean_abs - ref) <= 1e-13 * ref


def test_tol_takes_numpy_scalars_and_refuses_bools():
    # np.float32(1e-8) is a finite number > 0 (it was refused as not one); True is not a tolerance (it was read as 1)
    assert sample(Chain(2, "tanh"), samples=4, seed=0, tol=np.float32(0.5)).tol == float(np.float32(0.5))
    with pytest.raises(InvalidValueError, match="tol must be a finite number > 0, got True"):
        sample(Chain(2, "tanh"), samples=4, seed=0, tol=True)


def test_subnormal_gradients_are_noted():
    # linear, w ~ N(0, 1e-105): dL/dw_1 = (h_4 - y)·w_4·w_3·w_2·x ~ 1e-315, subnormal (float64 keeps ~7 digits there,
    # ~1 near 1e-323), yet the table printed 4 digits with no word of it
    args = ["eval", "-n", "4", "-a", "linear", "--init", "0,1e-105", "-m", "20"]
    d = json.loads(CliRunner().invoke(symvg.cli.cli, [*args, "--format", "json"]).output)
    assert d["layers"][0]["subnormal"] > 0 and 0 < d["layers"][0]["median_abs"] < np.finfo(np.float64).tiny
    assert "subnormal in float64 (layers 1, 2)" in d["subnormal_note"]
    assert "fewer digits than shown" in CliRunner().invoke(symvg.cli.cli, args).output


@pytest.mark.parametrize("init", [(True, 1), (0, False), ("1", "2"), (1.0,), 3.0])
def test_init_pair_must_be_two_numbers(init):
    # (True, 1) ran as N(1, 1) and ("1", "2") as N(1, 2): a bool or a text is not a mean or std
    with pytest.raises(InvalidValueError, match="or \\(mean, std\\), got"):
        init_params(init)


def test_init_pair_takes_numpy_scalars():
    assert init_params((np.float32(0.5), np.int64(2)))[:2] == (0.5, 2.0)


def _with_layer(stats, **changes):
    from dataclasses import replace
    return replace(stats, layers=(replace(stats.layers[0], **changes),) + stats.layers[1:])


def test_eval_text_never_rounds_a_fraction_below_tol_to_all_or_none():
    # 9998 of 10000 below tol is not "1.000" (all), 2 of 10000 is not "0.000" (none)
    from symvg.cli.eval import render_text
    s = sample(Chain(2, "tanh"), samples=8, seed=0, engine="chunked")
    row = lambda text: next(line for line in text.splitlines() if line.startswith("1 "))
    assert "1.000" not in row(render_text(_with_layer(s, frac_below_tol=0.9998)))
    assert ">0.999" in row(render_text(_with_layer(s, frac_below_tol=0.9998)))
    assert "<0.001" in row(render_text(_with_layer(s, frac_below_tol=0.0002)))
    assert "1.000" in row(render_text(_with_layer(s, frac_below_tol=1.0)))


def test_eval_json_does_not_call_a_true_zero_underflow():
    # weights exactly 0: dL/dw_1 = 2(h_2 - y)·σ'(z_2)·w_2·σ'(z_1)·x is exactly 0 because w_2 = 0, not by underflow
    r = CliRunner().invoke(symvg.cli.cli, ["eval", "-n", "2", "-m", "3", "--init", "0,0", "--engine", "chunked",
                                           "--format", "json"])
    d = json.loads(r.output)
    assert d["layers"][0]["zeros"] == 3 and "underflowed_layers" not in d
    assert d["zero_layers"] == [1] and "underflowed, or has a factor that is exactly 0" in d["note"]
