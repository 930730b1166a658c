import pytest
import sympy as sp

from symvg.symbolic.chain import Chain, x, y
from symvg.errors import InvalidChainError, LossDomainError, UnknownActivationError


@pytest.mark.parametrize("depth", [0, -1, 1.5, True, "3", 10**6])
def test_bad_depth(depth):
    with pytest.raises(InvalidChainError, match="depth"):
        Chain(depth)


def test_bad_layer_index():
    c = Chain(3)
    for k in (0, 4, -1, 1.0):
        with pytest.raises(InvalidChainError, match=r"1\.\.3"):
            c.w(k)


def test_unknown_activation_and_loss():
    with pytest.raises(UnknownActivationError):
        Chain(2, "nope")
    with pytest.raises(InvalidChainError, match="loss"):
        Chain(2, loss="hinge")
    with pytest.raises(InvalidChainError, match="2 activations for depth 3"):
        Chain(3, ["relu", "tanh"])


def test_forward_definitions_follow_the_text():
    c = Chain(2, ["tanh", "relu"])
    (z1, d1), (h1, e1), (z2, d2), (h2, e2) = c.forward()
    assert d1 == c.w(1) * x + c.b(1)
    assert e1 == sp.tanh(z1)
    assert d2 == c.w(2) * h1 + c.b(2)
    assert e2.subs(z2, 3) == 3 and e2.subs(z2, -3) == 0


def test_residual_and_bias_off():
    c = Chain(2, "tanh", residual=True, bias=False)
    defs = dict(c.forward())
    assert defs[c.h(2)] == c.h(1) + sp.tanh(c.z(2))
    assert defs[c.z(1)] == c.w(1) * x
    assert c.symbols() == (x, y, c.w(1), c.w(2))


@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_dloss_is_the_derivative(loss):
    c = Chain(1, loss=loss)
    h = c.h(1)
    assert sp.simplify(c.dloss() - sp.diff(c.loss_expr(), h)) == 0


def test_hashable_and_equal():
    assert Chain(3, ["relu"] * 3) == Chain(3, ("relu", "relu", "relu"))
    assert len({Chain(3), Chain(3), Chain(4)}) == 2


@pytest.mark.parametrize("act,witness", [
    ("tanh", "tanh(z) = 0 at z = 0"),            # tanh(0) = 0: log h_N = -inf
    ("hard_sigmoid", "= 0 at z = -3"),           # clamp(-3/6 + 1/2, 0, 1) = 0 exactly
    ("relu", "= 0 at z = 0"),
    ("linear", "= 0 at z = 0"),
    ("softplus", "log(1 + E)"),                  # softplus(1) = log(1 + e) > 1
    ("erf", "= 0 at z = 0"),
    ("expr:exp(-z**2)", "φ(z) = 1 at z = 0"),    # reaches 1: log(1 - h_N) = -inf
    ("expr:(1 + erf(z))/2", "could not be proved"),  # true, but beyond SymPy's assumptions: refused, and said so
])
def test_bce_refuses_an_output_not_proved_inside_the_unit_interval(act, witness):
    with pytest.raises(LossDomainError, match=r"bce needs the output h_N in \(0, 1\)") as e:
        Chain(2, ["sigmoid", act], loss="bce")
    assert witness in str(e.value)
    assert isinstance(e.value, InvalidChainError)  # the CLI's exit 2


def test_bce_accepts_outputs_proved_inside_the_unit_interval():
    for last in ("sigmoid", "logistic", "expr:(1 + tanh(z))/2", "expr:sigmoid(3*z - 1)*sigmoid(z)"):
        assert Chain(3, ["tanh", "relu", last], loss="bce").loss == "bce"
    assert Chain(3, ["sigmoid", "tanh", "relu"]).loss == "mse"  # mse takes any output


def test_bce_refuses_a_residual_chain():
    # h_N = x + N*sigmoid(0) = x + N/2 when every w and b is 0: any real number
    with pytest.raises(LossDomainError, match="residual"):
        Chain(2, "sigmoid", loss="bce", residual=True)


BAD_BCE_LABELS = [2.0, -0.5, -1e-300, 1 + 2.0**-52, float("nan")]


@pytest.mark.parametrize("label", BAD_BCE_LABELS)
def test_bce_refuses_a_label_outside_the_unit_interval_in_the_api(label):
    """BCE's y is a probability: y = 2 ran (and printed a 'gradient' of no cross-entropy) until refused."""
    import symvg
    chain = Chain(1, "sigmoid", loss="bce")
    with pytest.raises(LossDomainError, match=r"bce takes labels y in \[0, 1\]"):
        symvg.gradients(chain, [1.0, 1.0], [0.5, label], [1.0])
    if label == label:  # NaN is no exact number: derive's evaluate refuses it as such (InvalidValueError)
        with pytest.raises(LossDomainError, match=r"got y = "):
            symvg.derive(chain).evaluate({"x": 1, "y": label, "w1": 1, "b1": 0})


@pytest.mark.parametrize("label", [0.0, 0.25, 1.0])
def test_bce_labels_in_the_unit_interval_give_the_hand_derived_gradient(label):
    """One sigmoid layer: dL/dw1 = (h - y)/(h(1 - h)) · h(1 - h) · x = (σ(1) - y)·1 at x = w1 = 1, b1 = 0."""
    import symvg
    chain = Chain(1, "sigmoid", loss="bce")
    expected = float(1 / (1 + sp.exp(-1)) - sp.Rational(str(label)))
    assert symvg.gradients(chain, 1.0, label, [1.0])[0, 0] == pytest.approx(expected, rel=1e-14)
    assert float(symvg.derive(chain).evaluate({"x": 1, "y": str(label), "w1": 1, "b1": 0}).value) == pytest.approx(expected, rel=1e-14)


def test_mse_labels_stay_unrestricted():
    """MSE takes any real target: dL/dw1 = 2(σ(1) - y)·σ(1)(1 - σ(1))·1 at x = w1 = 1, b1 = 0, here y = 5."""
    import symvg
    s = 1 / (1 + sp.exp(-1))
    expected = float(2 * (s - 5) * s * (1 - s))
    assert symvg.gradients(Chain(1, "sigmoid"), 1.0, 5.0, [1.0])[0, 0] == pytest.approx(expected, rel=1e-14)
    Chain(1, "sigmoid").check_labels(sp.Integer(-7))


@pytest.mark.parametrize("spec", [None, 42, 3.5, b"relu", {"relu": 1}])
def test_activation_that_is_not_a_name_is_refused_by_name(spec):
    """Issue 15: these raised a bare TypeError ('NoneType' object is not iterable)."""
    with pytest.raises(InvalidChainError, match="activation must be"):
        Chain(3, spec)


def test_numpy_integer_depth():
    np = pytest.importorskip("numpy")
    c = Chain(np.int64(3), "tanh")
    assert c == Chain(3, "tanh") and type(c.depth) is int and hash(c) == hash(Chain(3, "tanh"))
    assert c.w(np.int64(2)) == c.w(2) and type(c.layer(np.int32(1))) is int
