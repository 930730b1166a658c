"""symvg.engines.numeric and symvg.engines.kernels against independent references: mpmath at 50 digits, exact SymPy
evaluation of the derivation, and PyTorch autograd when it is installed."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import zlib
from pathlib import Path

import mpmath
import numpy as np
import pytest
import sympy as sp

from symvg.symbolic.activations import Activation, get, names
from symvg.symbolic.parse import z
from symvg.symbolic.chain import Chain
from symvg.symbolic.derive import derive
from symvg.errors import BackendUnavailableError, InvalidChainError, InvalidValueError, UnderflowReport
from symvg.engines.csource import elementwise_source
from symvg.engines.kernels import fp_guard, h, local, output_form
from symvg.engines.numeric import compile, estimate_bytes, gradients
from symvg.engines.reference import reference

from conftest import (as_floats, assert_close_rowwise, assert_matches_mpmath_or_flags, network_inputs,
                      saturated_bce_inputs)

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- kernels: proved forms


def test_output_forms_are_proved_and_correct_numerically():
    assert sp.expand(output_form(get("sigmoid")) - (h - h**2)) == 0
    assert sp.expand(output_form(get("tanh")) - (1 - h**2)) == 0
    assert output_form(get("relu")) is None and output_form(get("silu")) is None
    for name in ("sigmoid", "tanh"):
        a = get(name)
        f, P = sp.lambdify(z, [a.expr, a.derivative]), sp.lambdify(h, output_form(a))
        for t in (-2.0, 0.3, 1.7):
            phi, dphi = f(t)
            assert P(phi) == pytest.approx(dphi, rel=1e-13)


def test_kernel_kinds_come_from_identities_not_names():
    # a user expression equal to the logistic function gets the logistic kernel
    assert local(get("expr:1/(1+exp(-z))")).kind == "logistic"
    assert local(get("expr:tanh(z)")).kind == "tanh"
    assert local(get("softplus")).kind == "generic"


def test_table_forms_are_proved_equal_to_the_catalogue():
    # each row of the forms table every engine prints, steps substituted, is φ and φ' on either side of 0
    from symvg.engines.forms import ARRAY, ELEMENT
    p = sp.Symbol("p", positive=True)
    for kind, name in (("logistic", "sigmoid"), ("tanh", "tanh"), ("identity", "linear")):
        act = get(name)
        for forms in (ELEMENT[kind], ARRAY[kind]):
            for got, want in zip(forms.expanded(), (act.expr, act.derivative)):
                for side in (p, -p):
                    assert sp.simplify((got - want).subs(z, side).rewrite(sp.exp)) == 0, (kind, got, want)


def test_elementwise_source_is_sympy_ccode():
    tanh = elementwise_source(get("tanh")).operation.splitlines()
    assert tanh[0] == "const T z = b + hp*w;" and tanh[1] == "T t = " + sp.ccode(sp.tanh(abs(z))) + ";"
    e, r = sp.symbols("e r")
    assert tanh[-2] == "d = 4*e*r*r;"  # not 1 - tanh²: sech²z = 4e/(1 + e)², r = 1/(1 + e)
    assert tanh[-1] == "if (!isfinite(z)) d = z - z;"  # an overflowed z: NaN, never φ'(±inf) = 0
    gelu = elementwise_source(get("gelu")).operation
    assert "erf(" not in gelu and gelu.count("erfc(-(") == 2  # Φ(z) = erfc(-u)/2: no 1 + erf(u) cancellation
    relu = elementwise_source(get("relu")).operation
    assert "(z < 0) ? (" in relu and "d = " in relu
    # sigmoid: the overflow-safe proved forms, one exp; no e^{-z}/(1+e^{-z})^2 (inf/inf for z < -709)
    src = elementwise_source(get("sigmoid"))
    body = src.operation
    assert body.count("exp(") == 1 and "exp(-fabs(z))" in body and "pow(" not in body  # e ≤ 1: no overflow
    def statements(op):  # one per ";", ccode's line breaks inside a ?: folded
        return [" ".join(st.split()) for st in op.split(";") if st.strip()]
    assert statements(body)[-3:-1] == ["h = ((z >= 0) ? ( s ) : ( es ))", "d = es*s"]
    residual = statements(elementwise_source(get("sigmoid"), residual=True).operation)
    assert residual[-4].startswith("T phi = ((z >= 0)") and residual[-3] == "h = hp + phi"  # φ first, then the skip
    assert src.name.isidentifier() and elementwise_source(get("expr:z/(1+abs(z))")).name.isidentifier()
    # the C bodies compute the right numbers, overflow included: run their lines as Python (our own text)
    def run(lines, zv):
        env = {"w": 1.0, "hp": zv, "b": 0.0, "exp": math.exp, "fabs": abs, "tanh": math.tanh, "pow": pow,
               "copysign": math.copysign}
        for line in lines:
            if line.startswith("if (!isfinite(z))"):  # the overflowed-z guard: the C twins test it
                continue
            lhs, rhs = line.removeprefix("const ").removeprefix("T ").split(" = ", 1)
            rhs = re.sub(r"^\((.*) \? (.*) : (.*)\)$", r"(\2) if (\1) else (\3)", rhs)  # C's ?: as Python's
            env[lhs] = eval(rhs, env)  # noqa: S307
        return env

    for zv in (-800.0, -720.0, -15.0, -3.0, 0.0, 2.5, 15.0, 720.0, 800.0):
        env = run(statements(body), zv)
        with mpmath.workdps(40):  # 1 - σ(15) keeps only 8 of mpmath's default 15 digits
            exact = 1 / (1 + mpmath.exp(-zv))
            assert env["h"] == pytest.approx(float(exact), rel=1e-15, abs=0)
            e = mpmath.exp(-abs(mpmath.mpf(zv)))
            want = float(e / (1 + e) ** 2)  # σ(1 - σ) without its cancellation; at ±720 a subnormal, held to its last unit
            assert env["d"] == pytest.approx(want, rel=1e-12, abs=0 if want > 1e-300 else 5e-324)
            assert run(statements("\n".join(tanh)), zv)["d"] == pytest.approx(float(mpmath.sech(zv) ** 2), rel=1e-14, abs=1e-300)


# ----------------------------------------------------------------------------- vs mpmath (50 digits)


@pytest.mark.parametrize("name", names())
@pytest.mark.parametrize("per_sample", [False, True])
def test_matches_mpmath_every_activation(name, per_sample):
    rng = np.random.default_rng(zlib.crc32(f"{name}{per_sample}".encode()))
    for depth in (1, 4, 30):
        x, y, W, B = network_inputs(rng, depth, 6, per_sample)
        chain = Chain(depth, name)
        g = gradients(chain, x, y, W, B, engine="chunked")  # the fused engine: tests/test_fused.py
        ref = as_floats(reference(chain, x, y, W, B))
        if name in ("gelu", "tanh"):
            # tanh' = 1 − tanh² (as SymPy writes it) and gelu' = Φ(z) + zφ(z) (z << 0) cancel in any
            # floating-point evaluation of the formula: a tiny entry is held to 1e-12 of its layer's largest
            assert_close_rowwise(g, ref, 1e-12)
        else:
            np.testing.assert_allclose(g, ref, rtol=1e-12, atol=1e-300, err_msg=f"{name} depth {depth}")


@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_matches_mpmath_residual_mixed_and_losses(loss):
    rng = np.random.default_rng(7)
    acts = [names()[i % len(names())] for i in range(12)] + ["sigmoid"]  # bce needs h_N in (0, 1)
    chains = [Chain(13, acts, loss=loss)]
    if loss == "mse":  # a residual output is not confined to (0, 1): Chain refuses bce there
        chains += [Chain(13, acts, loss=loss, residual=True), Chain(9, "sigmoid", loss=loss, residual=True)]
    for chain in chains:
        x = rng.standard_normal(5)
        y = rng.uniform(0, 1, 5)
        W, B = 0.5 * rng.standard_normal((chain.depth, 5)), 0.5 * rng.standard_normal(chain.depth)
        g = gradients(chain, x, y, W, B, chunk=2, engine="chunked")  # several chunks over two threads
        assert_close_rowwise(g, as_floats(reference(chain, x, y, W, B)), 1e-12)  # gelu layers: see above


def test_matches_exact_derivation():
    for chain in (Chain(3, "relu"), Chain(4, "leaky_relu", residual=True), Chain(2, "linear", loss="mse"),
                  Chain(3, "hard_sigmoid")):
        vals = {"x": "1.5", "y": "0.25"}
        ws, bs = [0.5, -2.0, 1.25, 3.0][: chain.depth], [0.25, 0.5, -0.75, 1.0][: chain.depth]
        vals |= {f"w{k + 1}": str(v) for k, v in enumerate(ws)} | {f"b{k + 1}": str(v) for k, v in enumerate(bs)}
        g = gradients(chain, 1.5, 0.25, ws, bs)
        for k in range(1, chain.depth + 1):
            exact = derive(chain, k).evaluate(vals).value
            assert g[k - 1, 0] == pytest.approx(float(exact), rel=1e-15, abs=0)
            # compile may switch on the fused engine: another float route, so held to the exact value
            assert compile(derive(chain, k))(1.5, 0.25, ws, bs)[0] == pytest.approx(float(exact), rel=1e-15, abs=0)


def test_float32_within_its_tolerance():
    rng = np.random.default_rng(3)
    x, y, W, B = network_inputs(rng, 10, 1000, True)
    c = Chain(10, "sigmoid")
    g64, g32 = gradients(c, x, y, W, B), gradients(c, x, y, W, B, dtype="float32")
    assert g32.dtype == np.float32
    np.testing.assert_allclose(g32, g64, rtol=2e-4, atol=1e-7 * np.abs(g64).max())


# ----------------------------------------------------------------------------- log domain


def test_log_domain_equals_direct_where_finite():
    rng = np.random.default_rng(11)
    for chain in (Chain(25, "tanh"), Chain(12, ["sigmoid", "relu", "gelu"] * 4, residual=True)):
        x, y, W, B = network_inputs(rng, chain.depth, 50, True)
        # one GELU' underflows itself (z_12 = -63.6: GELU' ≈ -10^-874), in both domains: accepted here, compared
        g = gradients(chain, x, y, W, B, allow_underflow=True)
        lg, s = gradients(chain, x, y, W, B, log=True, allow_underflow=True)
        ok = g != 0
        np.testing.assert_allclose(np.log(np.abs(g[ok])), lg[ok], rtol=0, atol=1e-10)
        assert (np.sign(g) == s).all()
        assert (np.isneginf(lg[~ok])).all()


def test_log_domain_is_right_where_float64_underflows():
    chain = Chain(700, "sigmoid")
    rng = np.random.default_rng(5)
    W, B = rng.uniform(0.5, 1.5, 700), rng.uniform(-0.5, 0.5, 700)
    with pytest.raises(UnderflowReport):  # (1/4)^700 · ... < 1e-308: the direct product underflows
        gradients(chain, [0.3, -1.2], 1.0, W, B)
    g = gradients(chain, [0.3, -1.2], 1.0, W, B, allow_underflow=True)
    assert (g[0] == 0).all()
    lg, s = gradients(chain, [0.3, -1.2], 1.0, W, B, log=True)
    ref = reference(chain, [0.3, -1.2], 1.0, W, B)
    for i in range(2):
        assert lg[0, i] == pytest.approx(float(mpmath.log(abs(ref[0, i]))), rel=1e-12)
        assert s[0, i] == mpmath.sign(ref[0, i])


# ----------------------------------------------------------------------------- vs PyTorch autograd


def _torch_act(torch, name):
    F = torch.nn.functional
    return {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": F.relu, "leaky_relu": F.leaky_relu,
            "elu": F.elu, "softplus": F.softplus, "gelu": F.gelu, "silu": F.silu,
            "hard_sigmoid": F.hardsigmoid, "linear": lambda t: t, "erf": torch.erf, "selu": F.selu}[name]


@pytest.mark.parametrize("residual", [False, True])
def test_matches_torch_autograd(residual):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(21)
    for name in names():
        depth, m = 17, 64
        # scale 0.5 keeps |z| moderate, where torch's own approximations (softplus's threshold) agree
        x, y, W, B = network_inputs(rng, depth, m, True, scale=0.5)
        ws = [torch.tensor(W[k], requires_grad=True) for k in range(depth)]
        hh = torch.tensor(x)
        for k in range(depth):
            a = _torch_act(torch, name)(ws[k] * hh + torch.tensor(B[k]))
            hh = hh + a if residual else a
        ((hh - torch.tensor(y)) ** 2).sum().backward()
        want = np.stack([w.grad.numpy() for w in ws])
        got = gradients(Chain(depth, name, residual=residual), x, y, W, B)
        # torch's hardsigmoid backward multiplies by a single-precision 1/6 (rel. 2e-7 off in float64);
        # torch's softplus is z (slope exactly 1) above z = 20, where σ(z) = 1 − 2e-9.
        rtol = {"hard_sigmoid": 1e-6, "softplus": 1e-7}.get(name, 1e-9)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-12 * np.abs(want).max(), err_msg=name)


# ----------------------------------------------------------------------------- inputs, errors, backends


def test_shared_equals_per_sample_broadcast():
    rng = np.random.default_rng(2)
    x, y, W, B = network_inputs(rng, 8, 100, False)
    c = Chain(8, "silu")
    a = gradients(c, x, y, W, B)
    b = gradients(c, x, y, np.repeat(W[:, None], 100, 1), np.repeat(B[:, None], 100, 1), threads=1)
    np.testing.assert_array_equal(a, b)


def test_bad_inputs_are_refused():
    c = Chain(3, "tanh")
    with pytest.raises(InvalidValueError, match=r"weights must have shape \(3,\)"):
        gradients(c, 1.0, 0.0, [1.0, 2.0])
    with pytest.raises(InvalidValueError, match="finite"):
        gradients(c, float("nan"), 0.0, [1.0] * 3)
    with pytest.raises(InvalidValueError, match="do not broadcast"):
        gradients(c, np.zeros(4), np.zeros(5), [1.0] * 3)
    with pytest.raises(InvalidValueError, match="dtype"):
        gradients(c, 1.0, 0.0, [1.0] * 3, dtype="float16")
    with pytest.raises(InvalidValueError, match="bias=False"):
        gradients(Chain(3, bias=False), 1.0, 0.0, [1.0] * 3, [1.0] * 3)
    with pytest.raises(InvalidChainError):
        compile("sigmoid")


def test_estimate_bytes_counts_the_result_and_per_sample_inputs():
    shared, per = estimate_bytes(20, 10**6), estimate_bytes(20, 10**6, per_sample=True)
    assert 160e6 <= shared < 200e6 and per - shared == 2 * 20 * 10**6 * 8
    assert estimate_bytes(20, 10**6, "float32") < shared / 1.7


def test_cupy_missing_is_a_clear_error():
    try:
        import cupy  # noqa: F401
    except ImportError:
        with pytest.raises(BackendUnavailableError, match=r"pip install symvg\[gpu\]"):
            gradients(Chain(2), 1.0, 0.0, [1.0, 1.0], backend="cupy")
    else:
        pytest.skip("CuPy is installed: covered by test_cupy_equals_numpy")


def test_cupy_equals_numpy(cupy):
    rng = np.random.default_rng(9)
    for name in names():
        for residual in (False, True):
            x, y, W, B = network_inputs(rng, 12, 1000, True)
            c = Chain(12, name, residual=residual)
            got = cupy.asnumpy(gradients(c, x, y, W, B, backend="cupy"))
            np.testing.assert_allclose(got, gradients(c, x, y, W, B), rtol=1e-10, atol=1e-300)


def test_benchmark_quick_runs():
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_numeric.py"), "--quick"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    head = next(line for line in r.stdout.splitlines() if line.startswith("dtype"))
    for column in ("fused", "chunked", "torch", "+cse*", "exp", "memory", "vs torch", "vs floor"):
        assert column in head, column
    rows = [line for line in r.stdout.splitlines() if line.startswith(("float64 ", "float32 "))]
    assert len(rows) == 4
    import importlib.util

    if all(importlib.util.find_spec(mod) for mod in ("torch", "numba")):
        assert all("nan" not in row for row in rows)  # every contender ran
        assert "peak memory, fused" in r.stdout
    assert "depth    100: derive" in r.stdout


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("engine", ["chunked", "fused"])
def test_logistic_kernel_survives_huge_pre_activations(dtype, engine):
    # |z| in the thousands: e^z overflows unless handled; the gradients are 0 or subnormal, never NaN
    if engine == "fused":
        pytest.importorskip("numba")
    c = Chain(3, "sigmoid")
    args = (c, [1.0, -1.0, 0.5], 0.3, [1000.0, -2000.0, 3000.0], [0.0, 0.0, 0.0])
    with pytest.raises(UnderflowReport):  # σ'(1000) ≈ e^-1000: below every float, so reported
        gradients(*args, dtype=dtype, engine=engine)
    g = gradients(*args, dtype=dtype, engine=engine, allow_underflow=True)
    assert np.isfinite(g).all() and (np.abs(g) <= np.finfo(dtype).tiny).all()
    h = gradients(Chain(2, "sigmoid"), 1.0, 0.0, [800.0, 1.0], [0.0, 0.0], dtype=dtype, engine=engine,
                  allow_underflow=True)  # layer 1: σ'(800) ≈ 1e-348
    ref = as_floats(reference(Chain(2, "sigmoid"), 1.0, 0.0, [800.0, 1.0], [0.0, 0.0]))
    assert h[1, 0] == pytest.approx(ref[1, 0], rel=1e-6)  # h1 = 1 exactly: layer 2 is still right
    # just past exp's range σ'(z) = e^{-z} is still representable: 709 < z < 745 in float64 (88 < z < 103
    # in float32). Capping e^z at e^709 used to give σ'(709) for every larger z.
    big = [720.0, 730.0] if dtype == "float64" else [89.0, 95.0]
    x = np.array(big, dtype=dtype).astype(float)
    g1 = gradients(Chain(1, "sigmoid"), x, 0.3, [1.0], 0.0, dtype=dtype, engine=engine)
    ref1 = as_floats(reference(Chain(1, "sigmoid"), x, 0.3, [1.0], 0.0))
    tiny_unit = 5e-324 if dtype == "float64" else 1.5e-45
    np.testing.assert_allclose(g1, ref1, rtol=1e-6, atol=4 * tiny_unit)
    assert (g1 > 0).all()


def test_unfolded_backward_equals_folded():
    # CuPy runs the backward without folding w into φ' (see chunked._forward); check that branch on NumPy
    from symvg.engines import chunked
    from symvg.engines.kernels import layer_kernel
    from symvg.engines.plan import plan, prepare

    c = Chain(7, ["sigmoid", "tanh", "relu", "gelu", "linear", "elu", "silu"])
    p, rng, m = plan(c), np.random.default_rng(0), 50
    inp = prepare(c, rng.standard_normal(m), rng.standard_normal(m), rng.standard_normal((7, m)),
                  rng.standard_normal(7))
    ks = [layer_kernel(loc, np) for loc in p.locals]
    out = []
    for fold in (True, False):
        buf, G = chunked._Buffers(7, m, np.dtype("float64"), np), np.empty((7, m))
        with fp_guard():
            chunked._forward(p, ks, np, inp, slice(0, m), buf, m, fold=fold)
            chunked._backward(p, np, inp, slice(0, m), buf, m, G, folded=fold)
        out.append(G)
    np.testing.assert_allclose(out[0], out[1], rtol=1e-13)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_generic_kernel_repairs_overflowing_formulas(dtype):
    # softplus' as SymPy writes it is e^z/(1+e^z): inf/inf at z = 800; those entries are redone exactly
    c, W, x = Chain(3, "softplus"), [800.0, 1.0, 1.0], [1.0, -1.0, 2.0]
    g = gradients(c, x, 0.3, W, [0.0] * 3, dtype=dtype, allow_underflow=True)  # layer 1 at z = -800: 1e-347
    ref = as_floats(reference(c, x, 0.3, W, [0.0] * 3))
    assert np.isfinite(g).all()
    np.testing.assert_allclose(g, ref, rtol=1e-12 if dtype == "float64" else 1e-6)


def test_local_pieces_keep_relative_accuracy_where_formulas_cancel():
    """tanh' at large |z| (1 - h² keeps 3 digits at z = 15), softplus at z < -37 (log(1+e^z) → 0) and GELU
    at z << 0 (z·(1 + erf(z/√2))/2 is 0 at z = -10, and SymPy turns erfc(-u) back into 2 - erfc(u))."""
    import mpmath

    from symvg.engines.kernels import layer_kernel, local

    zs = np.array([-30.0, -15.0, -10.0, -0.5, 0.0, 3.0, 15.0, 30.0, -50.0])
    sqrt2 = mpmath.sqrt(2)
    cases = [("tanh", mpmath.tanh, lambda t: mpmath.sech(t) ** 2, 4e-16),
             ("softplus", lambda t: mpmath.log1p(mpmath.exp(t)), lambda t: 1 / (1 + mpmath.exp(-t)), 4e-16),
             # scipy's erfc is good to ~1e-13 relative far out in the tail (1.2e-13 at -30/√2); the formula itself loses nothing
             ("gelu", lambda t: t * mpmath.erfc(-t / sqrt2) / 2,
              lambda t: mpmath.erfc(-t / sqrt2) / 2 + t * mpmath.npdf(t), 1e-12)]
    for name, phi, dphi, rtol in cases:
        h, d = np.empty_like(zs), np.empty_like(zs)
        with fp_guard():
            layer_kernel(local(get(name)), np)(zs.copy(), h, d)
        with mpmath.workdps(40):
            for t, hv, dv in zip(zs, h, d):
                assert abs(hv - float(phi(t))) <= rtol * abs(float(phi(t))) or hv == float(phi(t)) == 0, (name, t)
                assert abs(dv - float(dphi(t))) <= rtol * abs(float(dphi(t))), (name, t, dv)


def test_piecewise_forms_written_piece_by_piece_are_numpy_selects_answer():
    """The chunked engine writes a piecewise φ, φ' with copyto(where=) (symvg.engines.piecewise), not
    numpy.select: the same pieces on the same elements, so the same numbers, at the kinks and far out."""
    from symvg.engines.kernels import lambdified, layer_kernel, local, piecewise_writers

    zs = np.array([-800.0, -3.0, -1e-310, -0.0, 0.0, 1e-310, 2.5, 3.0, 800.0])
    pw = [a for a in names() if piecewise_writers(get(a)) is not None]
    assert {"relu", "leaky_relu", "elu", "selu", "hard_sigmoid"} <= set(pw)
    for name in pw:
        h, d = np.empty_like(zs), np.empty_like(zs)
        with fp_guard():
            layer_kernel(local(get(name)), np)(zs.copy(), h, d)
        with np.errstate(all="ignore"):
            want = [np.broadcast_to(v, zs.shape) for v in lambdified(get(name))(zs)]  # one lambdify: select
        assert np.array_equal(h, want[0]) and np.array_equal(d, want[1]), name


def test_out_is_checked():
    chain, x, W = Chain(3, "sigmoid"), np.linspace(-1, 1, 5), np.ones((3, 5))
    cases = [(np.empty((3, 4)), r"shape \(3, 5\) and dtype float64"), (np.empty((3, 5), np.float32), "dtype float64"),
             (np.empty((5, 3)).T, "C-contiguous"), ([[0.0] * 5] * 3, "numpy array"), (W, "must not overlap")]
    ro = np.empty((3, 5))
    ro.flags.writeable = False
    cases.append((ro, "writable"))
    for out, says in cases:
        with pytest.raises(InvalidValueError, match=says):
            gradients(chain, x, 0.3, W, out=out)
    buf = np.zeros((3, 5))  # x is row 0 of out: read while it is written
    with pytest.raises(InvalidValueError, match="must not overlap"):
        gradients(chain, buf[0], 0.3, W, out=buf)
    with pytest.raises(InvalidValueError, match="log=True"):
        gradients(chain, x, 0.3, W, log=True, out=np.empty((3, 5)))


# ----------------------------------------------------------------------------- BCE through the logit; range reports


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("log", [False, True])
def test_saturated_bce_matches_mpmath_or_flags(dtype, log):
    # ∂L/∂h_N = (h - y)/(h(1 - h)) lost up to 10 orders of magnitude here (issue 15): at z_N = 60 the last
    # layer's gradient came out 7.9e-11 where it is 1.0, at 36 4.5 % off
    chain = Chain(3, "sigmoid", loss="bce")
    rel = (1e-12 if dtype == "float64" else 2e-5) * (1 if not log else 10)
    seen = set()
    for z_last in (40.0, 60.0, 800.0, -40.0, -60.0, -800.0, 36.0):
        x, W, B = saturated_bce_inputs(z_last, dtype)
        for y in (0.0, 1.0, 0.25):
            seen.add(assert_matches_mpmath_or_flags(
                lambda: gradients(chain, x, y, W, B, dtype=dtype, log=log, engine="chunked"),
                chain, x, y, W.astype(float), B.astype(float), dtype, rel, log=log))
    assert seen == {"ok", "flagged"}  # z_N = -800 (y = 0), 800 (y = 1): e^{-800} is below every float


def test_saturated_bce_last_layer_is_exact():
    chain = Chain(3, "sigmoid", loss="bce")
    g = gradients(chain, 1.0, 0.0, [60.0] * 3, [0.0] * 3, engine="chunked")
    assert g[2, 0] == pytest.approx(1.0, rel=1e-15)  # (σ(z_3) - 0)·h_2 with σ, h_2 both 1 to 26 digits
    r = as_floats(reference(chain, 1.0, 0.0, [60.0] * 3, [0.0] * 3))
    np.testing.assert_allclose(g, r, rtol=1e-13)


def test_bce_on_an_output_that_reaches_0_or_1_is_refused_and_a_generic_one_is_exact():
    from symvg.errors import LossDomainError

    # hard_sigmoid reaches h = 1 (z >= 3), where L = -log(1 - 1): the chain is refused before any number
    with pytest.raises(LossDomainError, match="outside"):
        Chain(2, "hard_sigmoid", loss="bce")
    # an output proved inside (0, 1) other than the logistic takes the generic form φ'/(1 - φ), φ'/φ
    chain = Chain(2, "expr:(1 + tanh(z))/2", loss="bce")
    x, W, B = 1.0, [0.5, 6.0], [0.0, 0.0]
    for y in (0.0, 0.3, 1.0):
        assert_close_rowwise(gradients(chain, x, y, W, B, engine="chunked"),
                             as_floats(reference(chain, x, y, W, B)), 1e-12)


def test_an_overflow_report_says_which_kind_each_value_met():
    """Samples that met an overflowed pre-activation and samples whose gradient is not finite for other reasons are
    counted apart, each as what mpmath finds it to be; it was all put down to "a pre-activation overflowed"."""
    from symvg.errors import OverflowReport

    chain, x, y = Chain(2, "relu"), np.array([1e308, 1e200, 1e-20, 1.0]), np.array([0.0, -1e300, -1e300, 0.0])
    W = np.array([[10.0, 1e-150, 1.0, 1.0], [1.0, 1e-50, 1e10, 1.0]])
    log10 = np.vectorize(lambda v: float(mpmath.log10(abs(v))))(reference(chain, x, y, W, dps=30))
    assert math.log10(x[0]) + math.log10(W[0, 0]) > 308.3 and (log10[:, 1] > 308.3).all()  # sample 0: z_1 = 1e309; 1: |g| beyond float64
    assert 290 < log10[0, 2] < 308 and log10[1, 2] < 308  # sample 2: dL/dw_1 = 2e290 in range, δ_1 = 1e310 is not
    for engine in ("chunked", "fused"):
        with pytest.raises(OverflowReport) as e:
            gradients(chain, x, y, W, engine=engine)
        assert ("float64 for 5 value(s) in layer(s) 1, 2: for 2 value(s) in layer(s) 1, 2, a pre-activation z_k "
                in str(e.value)), str(e.value)
        assert ("in the other samples, 2 value(s) in layer(s) 1, 2 overflow (|g| beyond 1.8e+308), 1 value(s) in "
                "layer(s) 1 are within float64's range but a product of the backward pass overflowed" in str(e.value))
        assert e.value.count == 5 and e.value.layers == (1, 2)


# log(z) and sqrt(z) are refused as "expr:" activations (not real for z < 0); built directly, as an API caller
# still can, they show that the engines report the NaN rather than return it
_LOG = Activation("log", sp.log(z), 1 / z)
_SQRT = Activation("sqrt", sp.sqrt(z), 1 / (2 * sp.sqrt(z)))


def test_overflow_and_domain_errors_are_reported_not_returned():
    from symvg.errors import DomainError, OverflowReport

    with pytest.raises(OverflowReport, match=r"float64 .* layer\(s\) 1, 2, 3: a pre-activation z_k .* overflowed") as e:
        gradients(Chain(3, "linear"), [1e308], 0.0, [10.0] * 3)
    assert e.value.layers == (1, 2, 3) and e.value.count == 3
    with pytest.raises(OverflowReport):
        gradients(Chain(3, "linear"), [1e308], 0.0, [10.0] * 3, log=True)
    with pytest.raises(DomainError, match="not a real number"):
        gradients(Chain(2, _LOG), [-1.0, 2.0], 0.0, [1.0, 1.0], engine="chunked")
    with pytest.raises(DomainError):
        gradients(Chain(2, _SQRT), [-1.0], 0.0, [1.0, 1.0], log=True)
    # a saturating activation hides an overflowed z behind φ(±inf) = 1 and φ'(±inf) = 0: still reported, and as
    # what it is (the true gradient is tiny, not beyond the range); a moderate saturation is an underflow
    for act in ("tanh", "sigmoid"):
        for engine in ("chunked", "fused"):
            with pytest.raises(OverflowReport, match="a pre-activation z_k .* overflowed"):
                gradients(Chain(3, act), [2.0], 0.5, [1e308, 1.0, 1.0], engine=engine)
    # tanh'(600) = 4e^{-1200}/(1 + e^{-1200})² ≈ 10^-520.55, times factors between 0.1 and 10
    with pytest.raises(UnderflowReport, match=r"layer\(s\) 1 \(the largest is 10\^-52[01]\.\d\)"):
        gradients(Chain(3, "tanh"), [2.0], 0.5, [300.0, 1.0, 1.0], engine="chunked")
    # z_2 = 1e308·tanh(2) is finite, but 2|z_2| in tanh' = 4e/(1+e)², e = e^{-2|z|}, overflows: e = e^{-inf} = 0
    # with no underflow flag. The oracle puts tanh' over one denominator (4e^{2z}/(e^{4z} + …), no cancellation)
    # to size it: log10(4e^{-2z}) with z = 1e308·tanh(2), times factors near 1
    for engine in ("chunked", "fused"):
        with pytest.raises(UnderflowReport, match=r"layer\(s\) 1, 2 \(the largest is 10\^-8\.37e\+307\)"):
            gradients(Chain(2, "tanh"), [2.0], 0.5, [1.0, 1e308], engine=engine)
    assert math.isclose(-2 * math.tanh(2.0) / math.log(10) * 1e308, -8.37e307, rel_tol=1e-3)
    # the oracle probes UNDERFLOW_PROBES samples: where more samples hold zeros, the count is a floor
    with pytest.raises(UnderflowReport, match=r"for at least 32 value\(s\) \(32 of the samples holding a 0"):
        gradients(Chain(3, "tanh"), np.full(40, 2.0), 0.5, [300.0, 1.0, 1.0], engine="chunked")
    # GELU'(-800) ≈ -10^-138000 cancels at every precision the oracle spends: not exactly 0, so not confirmed
    with pytest.raises(UnderflowReport, match="came out 0 .*too small for mpmath to resolve, and not proved to be exactly 0"):
        gradients(Chain(2, "gelu"), [1.0], 0.25, [-800.0, 1.0], engine="chunked")


def test_a_formula_that_overflows_far_past_exps_range_is_repaired_not_reported():
    # softplus' = e^z/(1+e^z) is inf/inf past z = 709 and is redone exactly with mpmath; its e^z was capped to
    # inf from z = 10^5, so log(1 + e^z) and the ratio came back inf and NaN, and a gradient of ~10^10 was
    # reported as "overflows float64". Here z_3 = 1000·softplus(2000·softplus(1)) ≈ 2.6e6.
    chain, x, y, W = Chain(3, "softplus"), [1.0, 0.5], 0.0, np.array([[1.0, 1.0], [2000.0, 1.0], [1000.0, 1.0]])
    assert_close_rowwise(gradients(chain, x, y, W, engine="chunked"), as_floats(reference(chain, x, y, W)), 1e-12)


def test_the_oracle_keeps_its_digits_where_a_formula_cancels():
    # GELU' = Φ(z) + zφ(z) and GELU = z(1 + erf(z/√2))/2 cancel below z ≈ -12: at 30 digits GELU'(-12.1) came out
    # 28 % off and GELU(-40) exactly 0, which confirmed an underflowed g_2 = a_2·h_1 as an exact 0
    for act, z in (("gelu", -12.1), ("tanh", 35.0), ("gelu", -40.0)):
        chain = Chain(2, act)
        got, want = (reference(chain, [1.0], 0.0, [z, 1.0], dps=d)[:, 0] for d in (30, 400))
        assert all(w != 0 and abs(g / w - 1) < 1e-25 for g, w in zip(got, want)), (act, z)
    with pytest.raises(UnderflowReport, match=r"for 2 value\(s\) in layer\(s\) 1, 2 \(the largest is 10\^-346\.8\)"):
        gradients(Chain(2, "gelu"), [1.0], 0.25, [-40.0, 1.0], engine="chunked")


def test_a_zero_the_oracle_cannot_resolve_is_still_exact_where_sympy_proves_it():
    # tanh(2z) = 2tanh(z)/(1 + tanh(z)²): this φ is 0 and φ' ≡ 0, though SymPy prints φ' as tanh terms that
    # cancel to 0 at every precision at z = 1e5. An oracle NaN there made gradients(..., allow_underflow=False)
    # (σ(-800) underflows, so its zeros are checked) report an underflow of a gradient that is exactly 0. The
    # Min variant's φ' is Heaviside(-z) once over one denominator: 0 at z > 0, also exactly
    identity = "tanh(2*z) - 2*tanh(z)/(1 + tanh(z)**2)"
    for act in (identity, identity + " + Min(z, 0)"):
        chain = Chain(2, ("sigmoid", "expr:" + act))
        assert all(v == 0 for v in reference(chain, 1.0, 1.0, [1.0, 1e5], [-800.0, 0.0], dps=30).ravel())
    # where φ' is not 0 (tanh'(1e5) ≈ 10^-86859), the oracle still resolves it
    r = reference(Chain(2, ("sigmoid", "tanh")), 1.0, 1.0, [1.0, 1e5], [-800.0, 0.0], dps=30)
    assert all(v != 0 and mpmath.isfinite(v) for v in r.ravel())


def test_underflow_is_reported_and_true_zeros_are_not():
    from symvg.errors import UnderflowReport

    with pytest.raises(UnderflowReport, match="log=True") as e:
        gradients(Chain(600, "sigmoid"), 1.0, 0.0, [1.0] * 600, engine="chunked")
    assert e.value.layers[0] == 1 and -330 < e.value.log10 < -323  # the largest lost value, from the log domain
    g = gradients(Chain(600, "sigmoid"), 1.0, 0.0, [1.0] * 600, allow_underflow=True, engine="chunked")
    assert g[0, 0] == 0
    relu = gradients(Chain(3, "relu"), [1.0, -1.0], 5.0, [1.0, 1.0, 1.0])  # x = -1: every unit is off
    assert (relu[:, 1] == 0).all() and (relu[:, 0] != 0).all()


from hypothesis import HealthCheck, given, settings  # noqa: E402

from conftest import saturated_chain_strategy  # noqa: E402


@pytest.mark.slow  # ~10 s here: each random chain is a new SymPy plan (lambdify, ~1 s on 2 loaded cores)
@settings(max_examples=10, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(saturated_chain_strategy())
def test_random_saturated_chains_match_mpmath_or_are_flagged(case):
    # issue 15's property: every NumPy engine (direct and log domain) matches mpmath, or reports the result
    chain, x, y, W, B, dtype, rel = case
    for log in (False, True):
        assert_matches_mpmath_or_flags(lambda: gradients(chain, x, y, W, B, dtype=dtype, log=log, engine="chunked"),
                                       chain, x, y, W, B, dtype, rel * (8 if log else 1), log=log)


@pytest.mark.parametrize("dtype, zs", [("float64", [-400.0, -700.0, -360.0]), ("float32", [-60.0, -45.0, -80.0])])
def test_a_formula_that_overflows_inside_to_a_finite_wrong_value_is_repaired(dtype, zs):
    # SiLU' as SymPy writes it, z·e^{-z}/(1 + e^{-z})² + 1/(1 + e^{-z}), squares e^{-z} to inf from z < -355
    # (float32: z < -44): its first term became -0 and φ'(-400) came out +1.9e-174 against the true -7.6e-172,
    # finite, so nothing was repaired or reported
    chain, W = Chain(1, "silu"), np.array([zs])
    g = gradients(chain, 1.0, 1.0, W, engine="chunked", dtype=dtype)
    ref = as_floats(reference(chain, 1.0, 1.0, W.astype(dtype)))
    assert (np.sign(g) == np.sign(ref)).all()
    np.testing.assert_allclose(g, ref, rtol=1e-12 if dtype == "float64" else 1e-5)


def test_a_product_that_overflows_on_the_way_to_a_gradient_within_range_is_not_called_its_overflow():
    # linear, x = 1e-300, w = (1e300, 1e300): h_1 = 1, h_2 = 1e300, g_1 = 2h_2·w_2·x = 2e300 and g_2 = 2h_2·h_1 = 2e300,
    # both within float64; δ_1 = 2h_2·w_2 = 2e600 overflows before x brings it down. This was reported as
    # "overflows float64 (|g| beyond 1.8e+308)" for g_1
    from symvg.errors import OverflowReport

    with pytest.raises(OverflowReport, match=r"cannot be computed directly in float64: 1 value\(s\) in layer\(s\) 1 "
                       r"are within float64's range \(\|g\| up to 10\^300.3\)") as e:
        gradients(Chain(2, "linear"), 1e-300, 0.0, [1e300, 1e300], engine="chunked")
    assert "overflows" not in str(e.value).split(";")[0] and e.value.layers == (1,) and e.value.count == 1
    assert abs(e.value.log10 - math.log10(2e300)) < 1e-9
    # with one gradient truly beyond the range (g_1 = 2e600), only that one is said to overflow
    with pytest.raises(OverflowReport, match=r"overflows float64 \(\|g\| beyond 1.8e\+308, up to 10\^600.3\) for 1 "
                       r"value\(s\) in layer\(s\) 1, and 1 value\(s\) in layer\(s\) 2 are within") as e:
        gradients(Chain(3, "linear"), 1e-300, 0.0, [1.0, 1e300, 1e300], engine="chunked")
    assert e.value.layers == (1, 2) and e.value.count == 2


def test_float32_inputs_it_cannot_hold_are_refused_not_rounded_to_0_or_called_infinite():
    # w_2 = 1e-300 became 0 in float32, and g_2 = 2·h_2·h_1 (truly 2e-300) an exact-looking 0 with no report;
    # x = 1e200 became inf and was refused as "found NaN or inf", which the caller never gave
    with pytest.raises(InvalidValueError, match=r"^weights: 1e-300 rounds to 0 in float32"):
        gradients(Chain(2, "linear"), 1.0, 0.0, [1.0, 1e-300], dtype="float32", engine="chunked")
    with pytest.raises(InvalidValueError, match=r"^biases: 1e-50 rounds to 0 in float32"):
        gradients(Chain(1, "linear"), 1.0, 0.0, [1.0], [1e-50], dtype="float32", engine="chunked")
    with pytest.raises(InvalidValueError, match=r"^x: 1e\+200 is beyond float32's range"):
        gradients(Chain(1, "linear"), [1.0, 1e200], 0.0, [1.0], dtype="float32", engine="chunked")
    # what float32 holds, subnormals included, and float64, pass as before
    assert gradients(Chain(1, "linear"), 1.0, 0.0, [1e-40], dtype="float32", engine="chunked")[0, 0] != 0
    assert gradients(Chain(2, "linear"), 1.0, 0.0, [1.0, 1e-300], engine="chunked", allow_underflow=True)[1, 0] == 2e-300


def test_the_exact_repair_takes_the_digits_a_cancelling_formula_needs():
    # z·σ(z) as a user writes it: φ' = z·e^z/(1 + e^z) − z·e^{2z}/(1 + e^z)² + e^z/(1 + e^z) is inf/inf past z = 709
    # and is redone with mpmath, whose two first terms cancel to log10|z| digits: at 30 digits φ'(1e155) came out
    # -1.06e124 (truly 1 + z·e^{-z} = 1), so g = 2·φ(z)·φ'(z)·x was returned as -2e279. Truth, in closed form:
    # φ(z) = z·σ(z) = z and φ'(z) = 1 in float64, so g = 2·z
    chain = Chain(1, "expr:z*exp(z)/(1 + exp(z))")
    for zv in (1e155, 1e300 / 2, 1e20):
        g = gradients(chain, 1.0, 0.0, [zv], engine="chunked")
        assert g[0, 0] == pytest.approx(2 * zv, rel=1e-15), zv


def test_a_users_tanh_derivative_keeps_its_digits_where_tanh_saturates():
    # SymPy writes tanh' as 1 − tanh²(u), which rounds to 0 once |u| > 19: expr:tanh(z)**2 had φ'(30) = 0 exactly
    # (truly 2·tanh(30)·sech²(30) = 7.0e-26) and so a gradient of 0 with no report; mish' holds log(1 + e^z), which
    # kept 4 digits at z = -30. Truth from mpmath at 50 digits, written with sech and log1p (nothing cancels)
    def mish(t):
        return t * mpmath.tanh(mpmath.log1p(mpmath.exp(t)))

    def mish_prime(t):
        s = mpmath.log1p(mpmath.exp(t))
        return mpmath.tanh(s) + t * mpmath.sech(s) ** 2 / (1 + mpmath.exp(-t))

    square = (lambda t: mpmath.tanh(t) ** 2, lambda t: 2 * mpmath.tanh(t) * mpmath.sech(t) ** 2)
    cases = [("expr:tanh(z)**2", 30.0, *square), ("expr:tanh(z)**2", -25.0, *square),
             ("expr:z*tanh(log(1 + exp(z)))", -30.0, mish, mish_prime)]
    for act, zv, phi, prime in cases:  # a linear first layer: z_2 = h_1 = x; mse against y = 0
        with mpmath.workdps(50):
            t = mpmath.mpf(zv)
            want = float(2 * phi(t) * prime(t) * t)  # g_2 = 2(h_2 − y)·φ'(z_2)·h_1
        g = gradients(Chain(2, ("linear", act)), zv, 0.0, [1.0, 1.0], engine="chunked")
        assert want != 0 and g[1, 0] == pytest.approx(want, rel=1e-12, abs=0), (act, zv, g[1, 0], want)


def test_a_deep_chain_makes_its_layer_kernel_once(monkeypatch):
    """A kernel made per layer (0.75 ms each) was 3/4 of `eval -n 100000 -m 3 --log-domain` (58 s before, 19 s after)."""
    from symvg.engines import chunked

    made = []
    real = chunked.layer_kernel
    monkeypatch.setattr(chunked, "layer_kernel", lambda loc, xp: made.append(loc) or real(loc, xp))
    chunked._numpy_kernel.cache_clear()
    chain = Chain(40, ["sigmoid", "tanh"] * 20)
    for log in (False, True):
        g = gradients(chain, 0.5, 0.0, [1.0] * 40, engine="chunked", log=log)
    assert len(made) == 2 and {m.activation.name for m in made} == {"sigmoid", "tanh"}
    # the values are still right: mpmath
    ref = reference(chain, [0.5], [0.0], [1.0] * 40, dps=30)
    assert math.isclose(float(g[0][-1, 0]), float(mpmath.log(abs(ref[-1, 0]))), rel_tol=1e-12)
