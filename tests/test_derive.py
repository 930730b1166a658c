import mpmath
import pytest
import sympy as sp

from conftest import random_values
from symvg.symbolic import activations as A
from symvg.symbolic.parse import z
from symvg.symbolic.chain import Chain
from symvg.symbolic.derive import MAX_CLOSED_FORM_DEPTH, derive
from symvg.errors import InvalidChainError, InvalidValueError


def _opaque(a: A.Activation) -> tuple[A.Activation, dict]:
    """φ and φ' as opaque SymPy functions F, F' with F.fdiff = F'.

    Naive diff of a nest of Piecewise (or Heaviside) kinks stalls in SymPy's sign queries on huge
    arguments -- the blow-up the structured derivation avoids. Kinked activations are therefore
    nested as opaque functions: diff still applies the chain rule through the whole nest, and the
    catalogue's φ' (checked against diff in test_activations) supplies the local derivative.
    """
    dphi = type(f"{a.name}_prime", (sp.Function,), {"nargs": 1})
    phi = type(a.name, (sp.Function,), {"nargs": 1, "fdiff": lambda self, argindex=1: dphi(self.args[0])})
    impl = {phi.__name__: sp.lambdify(z, a.expr, "mpmath"), dphi.__name__: sp.lambdify(z, a.derivative, "mpmath")}
    return A.Activation(a.name, phi(z), dphi(z)), impl


def _reference_chain(chain: Chain) -> tuple[Chain, list]:
    acts, impl = [], {}
    for a in chain.activations:
        if a.expr.has(sp.Piecewise):
            a, more = _opaque(a)
            impl.update(more)
        acts.append(a)
    ref = Chain(chain.depth, acts, loss=chain.loss, bias=chain.bias, residual=chain.residual)
    return ref, [impl, "mpmath"]


def _at(expr: sp.Expr, chain: Chain, point: list, modules: object = "mpmath") -> mpmath.mpf:
    return sp.lambdify(chain.symbols(), expr, modules, cse=True)(*point)


def _agree(chain: Chain, seed: int) -> None:
    """Structured dL/dw_k == d/dw_k of the nested loss, at a random point, to 30 digits, for every k.

    The reference is SymPy's diff of the nested loss up to depth 4 (where the closed form is checked
    too); deeper, diff of the nest grows to minutes (GELU, SiLU), so the reference there is mpmath's
    numerical derivative of the lambdified nested loss at 40 digits (mpmath.diff raises its own working
    precision; it agrees with the structured value to ~1e-42 on these chains).
    """
    ref, modules = _reference_chain(chain)
    nested = ref.nested()
    values = random_values(chain, seed)
    symbols = chain.symbols()
    with mpmath.workdps(40):
        point = [mpmath.mpf(v.p) / v.q for v in values.values()]
        # The forward walk is the structured result at a point; the closed form is checked on shallower
        # chains (for kinked activations from depth 3 it is a nest of Piecewise that SymPy spends ~10 s
        # per derivative canonicalising).
        env = dict(zip(symbols, point))
        for sym, rhs in chain.forward():
            env[sym] = sp.lambdify(list(env), rhs, "mpmath")(*env.values())
        loss = None if chain.depth <= 4 else sp.lambdify(symbols, nested, modules)
        kinked = any(act.expr.has(sp.Piecewise) for act in chain.activations)
        for k in range(1, chain.depth + 1):
            d = derive(chain, k)
            a = sp.lambdify(list(env), d.product, "mpmath")(*env.values())
            if loss is None and (chain.depth <= 2 or not kinked):
                assert abs(_at(d.closed_form(), chain, point, modules) - a) <= mpmath.mpf("1e-30") * max(1, abs(a))
            if loss is None:
                b = _at(sp.diff(nested, ref.w(k)), ref, point, modules)
            else:
                i = symbols.index(chain.w(k))
                b = mpmath.diff(lambda t, i=i: loss(*point[:i], t, *point[i + 1:]), point[i])
            assert abs(a - b) <= mpmath.mpf("1e-30") * max(1, abs(b)), (chain, k, a, b)


@pytest.mark.parametrize("name", A.names())
def test_equals_sympy_diff_every_depth_and_layer(name):
    """The structured derivation equals the derivative of the nested loss, for N = 1..8 and every k."""
    for n in range(1, 9):
        _agree(Chain(n, name), seed=n)


@pytest.mark.parametrize("loss,residual", [("mse", False), ("mse", True), ("bce", False)])  # bce: no residual
def test_equals_sympy_diff_mixed_losses_residual(loss, residual):
    chain = Chain(4, ["sigmoid", "tanh", "leaky_relu:0.2", "sigmoid"], loss=loss, residual=residual)
    _agree(chain, seed=4)


def test_smooth_closed_form_is_symbolically_equal():
    chain = Chain(3, "tanh")
    for k in (1, 2, 3):
        assert sp.simplify(derive(chain, k).closed_form() - sp.diff(chain.nested(), chain.w(k))) == 0


def test_factor_order_and_kinds():
    d = derive(Chain(3, "sigmoid"), 2)
    assert [(f.name, f.kind) for f in d.factors] == [
        ("dL/dh3", "loss"), ("dh3/dz3", "activation"), ("dz3/dh2", "weight"),
        ("dh2/dz2", "activation"), ("dz2/dw2", "input")]
    assert d.factors[-1].expr == d.chain.h(1)


def test_residual_factor():
    d = derive(Chain(3, "tanh", residual=True), 1)
    kinds = [f.kind for f in d.factors]
    assert kinds == ["loss", "residual", "residual", "activation", "input"]
    assert d.factors[1].expr == 1 + d.chain.w(3) * (1 - sp.tanh(d.chain.z(3)) ** 2)


def test_evaluate_exact_rational_for_piecewise_linear():
    c = Chain(3, "leaky_relu:0.2")
    vals = {"x": "0.5", "y": 1, "w1": -2, "b1": "0.25", "w2": 3, "b2": 0, "w3": "0.5", "b3": 1}
    ev = derive(c, 1).evaluate(vals)
    assert isinstance(ev.value, sp.Rational)
    # by hand: z1 = -0.75 -> h1 = -0.15; z2 = -0.45 -> h2 = -0.09; z3 = 0.955 -> h3 = 0.955
    # dL/dw1 = 2(0.955-1) * 1 * 0.5 * 0.2 * 3 * 0.2 * 0.5
    assert ev.value == 2 * (sp.Rational(955, 1000) - 1) * sp.Rational(1, 2) * sp.Rational(1, 5) * 3 * sp.Rational(1, 5) * sp.Rational(1, 2)


def test_evaluate_matches_closed_form_for_sigmoid():
    c = Chain(3, "sigmoid")
    vals = random_values(c, 7)
    d = derive(c, 1)
    assert abs(sp.N(d.evaluate(vals).value - d.subs(vals), 50)) < 1e-45


def test_evaluate_errors():
    d = derive(Chain(2), 1)
    with pytest.raises(InvalidValueError, match="missing values for"):
        d.evaluate({"x": 1})
    with pytest.raises(InvalidValueError, match="unknown input 'w9'"):
        d.evaluate({"w9": 1})
    with pytest.raises(InvalidValueError, match="finite"):
        d.evaluate({"x": float("nan"), "y": 0, "w1": 1, "w2": 1, "b1": 0, "b2": 0})


def test_closed_form_refused_beyond_limit_with_reason():
    d = derive(Chain(MAX_CLOSED_FORM_DEPTH + 1), 1)
    with pytest.raises(InvalidChainError, match="product form"):
        d.closed_form()


def test_deep_derivation_is_linear_size():
    # Size, not time, is asserted (benchmarks/bench_derive.py reports the time): the product's expression
    # tree, walked without sharing subtrees, has under 20 nodes per layer; a nested diff would not.
    d = derive(Chain(2000, "sigmoid"), 1)
    assert len(d.factors) == 2 * 2000 + 1
    assert sum(1 for _ in sp.preorder_traversal(d.product)) < 20 * 2000


def test_deep_evaluate_exact_relu():
    c = Chain(300, "relu")
    vals = {"x": 1, "y": 0, **{f"w{k}": 1 for k in range(1, 301)}, **{f"b{k}": 0 for k in range(1, 301)}}
    assert derive(c, 1).evaluate(vals).value == 2  # identity path: dL/dh = 2, every factor 1


def test_derive_validates():
    with pytest.raises(InvalidChainError):
        derive(Chain(3), 4)
    with pytest.raises(InvalidChainError):
        derive("not a chain", 1)


def test_evaluate_deep_sigmoid_in_bounded_time_and_to_the_digit():
    # Exact forward values nest (exp(-1/(1 + exp(-...)))) and SymPy's time on them grows exponentially:
    # `derive --layers 20 --at x=1` never finished. Past EXACT_OPS they are carried as Floats; the value is
    # checked against an mpmath forward/backward pass at 50 digits.
    import signal

    import mpmath

    def too_slow(*_):
        raise TimeoutError("evaluate took over 20 s")

    old = signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(20)
    try:
        n = 20
        c = Chain(n, "sigmoid")
        vals = {str(s): ("1" if str(s)[0] in "wx" else "0") for s in c.symbols()}
        ev = derive(c, 1).evaluate(vals)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    with mpmath.workdps(50):
        h, dphi = mpmath.mpf(1), []
        for _ in range(n):
            s = 1 / (1 + mpmath.exp(-h))
            dphi.append(s * (1 - s))
            h = s
        ref = 2 * h * mpmath.fprod(dphi)      # 2(h_N - y)·∏ σ'(z_j)·w_j·x with w = x = 1, y = 0
    assert abs(ev.value.evalf(40) / sp.Float(mpmath.nstr(ref, 45), 45) - 1) < 1e-25
