r"""Views of a :class:`~symvg.symbolic.derive.Derivation`: plain text, Unicode, LaTeX, Markdown, JSON.

Every view walks the same steps, in the order a reader checks them by hand:

    1. the chain rule:        dL/dw1 = dL/dh3 * dh3/dz3 * ... * dz1/dw1
    2. each local derivative: dh3/dz3 = sigmoid'(z3) = exp(-z3)/(1 + exp(-z3))**2
    3. the bound:             gamma = sup|sigmoid'(z)| = 1/4, so |dL/dw1| <= ...
    4. the product, the forward definitions it is written in, and the numbers when ``values`` are given.

Nothing is derived here. The factors, product and numbers come from the Derivation, γ = sup|φ'|
from the activation catalogue (proved there), the bound from :func:`symvg.symbolic.bounds.gradient_bound`;
SymPy's printers (``sstr``, ``pretty``, ``latex``) do the printing:

>>> from symvg.symbolic.chain import Chain
>>> from symvg.symbolic.derive import derive
>>> d = derive(Chain(2, "relu"), wrt=1)
>>> print(text(d).splitlines()[3])
  dL/dw1 = dL/dh2 * dh2/dz2 * dz2/dh1 * dh1/dz1 * dz1/dw1

Deep chains stay small: beyond :data:`MAX_LAYERS_SHOWN` layers the middle of the chain is
abbreviated (``...`` / ``\cdots``) and the output says which layers were left out; :func:`to_dict`
always lists every factor. The same input gives byte-identical output.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.pretty.pretty import PrettyPrinter
from sympy.printing.pretty.stringpict import prettyForm
from sympy.printing.str import StrPrinter

from symvg.symbolic.activations import Activation
from symvg.symbolic.bounds import UNBOUNDED, DepthBound, gradient_bound
from symvg.symbolic.derive import MAX_CLOSED_FORM_DEPTH, Derivation, Evaluation, Factor
from symvg import display
from symvg.errors import InvalidValueError

MAX_LAYERS_SHOWN = 8
"""Layers written out in full; a longer chain shows its first and last :data:`EDGE_LAYERS` layers."""

EDGE_LAYERS = 3
"""Layers kept at each end of an abbreviated chain."""

DIGITS = 10
"""Significant digits of the decimal shown for a value that is not a plain rational."""

FACTORS_PER_LINE = 4
"""Factors per line of a LaTeX product: long products break instead of running off the page."""

ENVIRONMENTS = ("align*", "aligned")
BOUND_FORMATS = ("text", "unicode", "latex", "markdown", "json")

# How each catalogue activation is written; a name not listed (a user expression) is φ.
LATEX_NAMES = {"sigmoid": r"\sigma", "tanh": r"\tanh", "relu": r"\operatorname{ReLU}",
               "leaky_relu": r"\operatorname{LeakyReLU}", "elu": r"\operatorname{ELU}",
               "softplus": r"\operatorname{softplus}", "gelu": r"\operatorname{GELU}",
               "silu": r"\operatorname{SiLU}", "hard_sigmoid": r"\operatorname{hardsigmoid}",
               "linear": r"\operatorname{id}"}
UNICODE_NAMES = {"sigmoid": "σ", "tanh": "tanh", "relu": "ReLU", "leaky_relu": "LeakyReLU", "elu": "ELU",
                 "softplus": "softplus", "gelu": "GELU", "silu": "SiLU", "hard_sigmoid": "hardsigmoid",
                 "linear": "id"}

_SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
_MUL = PRECEDENCE["Mul"]


# ----------------------------------------------------------------------------- the steps, once


@dataclass(frozen=True)
class _Steps:
    """What every view prints: which factors are shown, their bounds, and the numbers if any.

    ``head``/``tail`` are indices into ``d.factors`` (from the loss back to layer k); ``gap`` is the
    (highest, lowest) layer left out, or None when the chain is shown whole.
    """

    d: Derivation
    head: tuple[int, ...]
    tail: tuple[int, ...]
    gap: tuple[int, int] | None
    bounds: tuple[sp.Expr, ...]
    bound: sp.Expr
    evaluation: Evaluation | None

    @property
    def target(self) -> sp.Symbol:
        return self.d.target

    def shown(self) -> list[int | None]:
        """Indices of the shown factors, None marking the omitted middle."""
        return list(self.head) + ([None] if self.gap else []) + list(self.tail)

    def omitted_note(self) -> str:
        hi, lo = self.gap  # type: ignore[misc]
        return f"layers {hi} down to {lo} have the same form and are omitted; depth {self.d.chain.depth}"

    def layer_shown(self, layer: int) -> bool:
        return self.gap is None or not self.gap[1] <= layer <= self.gap[0]


def _steps(d: Derivation, values: Mapping[str, Any] | None, max_layers: int) -> _Steps:
    """Split the factors into the shown head and tail.

    >>> from symvg.symbolic.chain import Chain
    >>> from symvg.symbolic.derive import derive
    >>> s = _steps(derive(Chain(20, "tanh")), None, 8)
    >>> len(s.head), len(s.tail), s.gap
    (7, 6, (17, 4))
    """
    if isinstance(max_layers, bool) or not isinstance(max_layers, int) or max_layers < 2 * EDGE_LAYERS:
        raise InvalidValueError(f"max_layers must be an integer >= {2 * EDGE_LAYERS}, got {max_layers!r}")
    n, k = d.chain.depth, d.wrt
    b = gradient_bound(d)
    everything = tuple(range(len(d.factors)))
    ev = None if values is None else d.evaluate(values)
    pair_bounds = tuple(e for _, e in b.factors)
    if n - k + 1 <= max_layers:
        return _Steps(d, everything, (), None, pair_bounds, b.expr, ev)
    top, bottom = n - EDGE_LAYERS + 1, k + EDGE_LAYERS - 1  # layers >= top and <= bottom are shown
    head = tuple(i for i in everything if d.factors[i].layer >= top)
    tail = tuple(i for i in everything if d.factors[i].layer <= bottom)
    return _Steps(d, head, tail, (top - 1, bottom + 1), pair_bounds, b.expr, ev)


def _activations(d: Derivation) -> list[Activation]:
    """The distinct activations of the chain, in layer order (each γ is stated once)."""
    seen: dict[str, Activation] = {}
    for a in d.chain.activations:
        seen.setdefault(a.label, a)
    return list(seen.values())


def _approx(v: sp.Expr) -> sp.Expr | None:
    """The decimal shown beside an exact value, or None when the value is already a plain rational."""
    return None if v.is_Rational else v.evalf(DIGITS)


def _inputs(s: _Steps) -> list[tuple[sp.Symbol, sp.Expr]]:
    """The given inputs, without the weights and biases of omitted layers."""
    ch = s.d.chain
    hidden = set() if s.gap is None else {sym for j in range(s.gap[1], s.gap[0] + 1) for sym in (ch.w(j), ch.b(j))}
    given = dict(s.evaluation.values)  # type: ignore[union-attr]
    return [(sym, given[sym]) for sym in ch.symbols() if sym not in hidden]


def _forward(s: _Steps) -> list[tuple[sp.Symbol, sp.Expr] | None]:
    """The forward definitions of the shown layers (None marks the omitted middle), first layer first."""
    ch = s.d.chain
    out: list[tuple[sp.Symbol, sp.Expr] | None] = []
    for j in range(1, ch.depth + 1):
        if s.layer_shown(j):
            out += [(ch.z(j), ch.pre_activation(j)), (ch.h(j), ch.output(j))]
        elif not out or out[-1] is not None:
            out.append(None)
    return out


# ----------------------------------------------------------------------------- plain text (ASCII)


def _text_display(f: Factor) -> str:
    shown = f.display
    if isinstance(shown, str):
        return f"({shown})" if f.kind == "residual" else shown
    return _text_factor(shown)


def _text_factor(e: sp.Expr) -> str:
    return StrPrinter().parenthesize(e, _MUL, strict=True)


def _text_value(v: sp.Expr) -> str:
    a, exact = _approx(v), sp.sstr(v)
    if a is None:
        return f"= {exact}"
    return f"~= {sp.sstr(a)}" if len(exact) > 40 else f"= {exact} ~= {sp.sstr(a)}"


def _argmax(a: Activation, show: Callable[[Any], str], member: str) -> str:
    sup = a.supremum
    if not sup.bounded:
        return "unbounded: no ceiling"
    if not sup.attained:
        return "approached, not attained"
    p = sup.argmax_point
    return f"at z = {show(p)}" if p is not None else f"for z {member} {show(sup.argmax)}"


def text(d: Derivation, values: Mapping[str, Any] | None = None, max_layers: int = MAX_LAYERS_SHOWN) -> str:
    """Plain ASCII: the chain rule, each local derivative, the bound with γ, the product, the numbers.

    >>> from symvg.symbolic.chain import Chain
    >>> from symvg.symbolic.derive import derive
    >>> out = text(derive(Chain(1, "sigmoid")), values={"x": 1, "y": 0, "w1": 0, "b1": 0})
    >>> print(out[out.index("local"):out.index("bound")])
    local derivatives:
      dL/dh1  = 2*(h1 - y)
      dh1/dz1 = sigmoid'(z1) = exp(-z1)/(1 + exp(-z1))**2
      dz1/dw1 = x
    <BLANKLINE>
    >>> print(out[out.index("at x"):])
    at x = 1, y = 0, w1 = 0, b1 = 0:
      dL/dh1  = 1
      dh1/dz1 = 1/4
      dz1/dw1 = 1
      dL/dw1  = 1/4
    <BLANKLINE>
    """
    s = _steps(d, values, max_layers)
    fs, target = d.factors, f"dL/d{s.target}"
    width = max(len(n) for n in [target] + [fs[i].name for i in s.head + s.tail])

    def rows(cell: Callable[[int], str], gap: str, bars: bool = False) -> list[str]:
        w = width + 2 if bars else width
        name = (lambda i: f"|{fs[i].name}|") if bars else (lambda i: fs[i].name)
        return [f"  {gap}" if i is None else f"  {name(i).ljust(w)} {cell(i)}" for i in s.shown()]

    def local(i: int) -> str:
        # The short form by name, then the expression it stands for (once: a factor that has no
        # short form, such as x or w_j, is printed once, without the parentheses of a product).
        shown, full = fs[i].display, sp.sstr(fs[i].expr)
        return f"= {shown} = {full}" if isinstance(shown, str) else f"= {full}"

    out = [f"{target} for a {d.chain.name} chain, depth {d.chain.depth}, {d.chain.loss} loss", "",
           "chain rule:", f"  {target} = " + " * ".join("..." if i is None else fs[i].name for i in s.shown()), "",
           "local derivatives:", *rows(local, "... " + (s.omitted_note() if s.gap else "")), "",
           "bound (gamma = sup|phi'|, proved):"]
    out += [f"  gamma = sup|{a.label}'(z)| = {sp.sstr(a.gamma)}, {_argmax(a, sp.sstr, 'in')}" for a in _activations(d)]
    out += rows(lambda i: f"<= {sp.sstr(s.bounds[i])}", "...", bars=True)
    if s.gap is None:
        out.append(f"  {'|' + target + '|':<{width + 2}} <= {sp.sstr(s.bound)}")
    out += ["", "product:", f"  {target} = " + " * ".join("..." if i is None else _text_display(fs[i])
                                                          for i in s.shown())]
    out += ["", "forward pass:"] + [f"  {'...' if p is None else f'{p[0]} = {sp.sstr(p[1])}'}" for p in _forward(s)]
    if s.evaluation is not None:
        ev = s.evaluation
        out += ["", "at " + ", ".join(f"{k} = {sp.sstr(v)}" for k, v in _inputs(s)) + (", ..." if s.gap else "") + ":"]
        out += rows(lambda i: _text_value(ev.factors[i]), "...")
        out.append(f"  {target.ljust(width)} {_text_value(ev.value)}")
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------- Unicode (SymPy's pretty printer)


def _sub(name: str) -> str:
    """Digits as Unicode subscripts: ``h3`` → ``h₃``.

    >>> _sub("dh12")
    'dh₁₂'
    """
    return name.translate(_SUBSCRIPTS)


def _u_name(f: Factor) -> str:
    return f"∂{_sub(str(f.num))}/∂{_sub(str(f.den))}"


def _u_act(name: str) -> str:
    return UNICODE_NAMES.get(name, "φ")


def _pretty(e: Any) -> prettyForm:
    return PrettyPrinter({"use_unicode": True, "wrap_line": False})._print(e)


def _pretty_factor(e: sp.Expr) -> prettyForm:
    pf = _pretty(e)
    return prettyForm(*pf.parens()) if sp.Add in type(e).__mro__ else pf


def _u_line(*parts: Any) -> str:
    """One equation line: pieces (strings or SymPy objects) side by side on a common baseline."""
    forms = [p if isinstance(p, prettyForm) else prettyForm(p) if isinstance(p, str) else _pretty(p) for p in parts]
    line = prettyForm(*forms[0].right(*forms[1:])) if len(forms) > 1 else forms[0]
    return "\n".join("  " + r.rstrip() for r in line.render(wrap_line=False).split("\n"))


def unicode(d: Derivation, values: Mapping[str, Any] | None = None, max_layers: int = MAX_LAYERS_SHOWN) -> str:
    """The same steps as :func:`text`, printed with SymPy's Unicode pretty printer (∂, σ, subscripts).

    >>> from symvg.symbolic.chain import Chain
    >>> from symvg.symbolic.derive import derive
    >>> print(unicode(derive(Chain(2, "tanh"))).splitlines()[3])
      ∂L/∂w₁ = ∂L/∂h₂ ⋅ ∂h₂/∂z₂ ⋅ ∂z₂/∂h₁ ⋅ ∂h₁/∂z₁ ⋅ ∂z₁/∂w₁
    """
    s = _steps(d, values, max_layers)
    fs, target = d.factors, f"∂L/∂{_sub(str(s.target))}"
    width = max(len(n) for n in [target] + [_u_name(fs[i]) for i in s.head + s.tail])

    def name(i: int, bars: bool = False) -> str:
        return f"|{_u_name(fs[i])}|".ljust(width + 2) if bars else _u_name(fs[i]).ljust(width)

    def act(f: Factor) -> str:
        return f"{_u_act(f.activation)}'({_sub(str(f.den))})"

    def shown(i: int) -> Any:
        return act(fs[i]) if fs[i].kind == "activation" else _pretty_factor(fs[i].expr)

    out = [f"{target} for a {d.chain.name} chain, depth {d.chain.depth}, {d.chain.loss} loss", "",
           "chain rule:", f"  {target} = " + " ⋅ ".join("⋯" if i is None else _u_name(fs[i]) for i in s.shown()),
           "", "local derivatives:"]
    for i in s.shown():
        if i is None:
            out.append(f"  ⋯ {s.omitted_note()}")
        elif fs[i].kind == "activation":
            out.append(_u_line(f"{name(i)} = {act(fs[i])} = ", fs[i].expr))
        else:
            out.append(_u_line(f"{name(i)} = ", fs[i].expr))
    out += ["", "bound (γ = sup|φ'|, proved):"]
    for a in _activations(d):
        out.append(f"  γ = sup|{_u_act(a.name)}'(z)| = {sp.pretty(a.gamma, use_unicode=True)}, "
                   f"{_argmax(a, lambda e: sp.pretty(e, use_unicode=True), '∈')}")
    for i in s.shown():
        out.append("  ⋯" if i is None else _u_line(f"{name(i, bars=True)} ≤ ", s.bounds[i]))
    if s.gap is None:
        out.append(_u_line(f"{'|' + target + '|':<{width + 2}} ≤ ", s.bound))
    pieces: list[Any] = [f"{target} = "]
    for n, i in enumerate(s.shown()):
        pieces += ([" ⋅ "] if n else []) + ["⋯" if i is None else shown(i)]
    out += ["", "product:", _u_line(*pieces), "", "forward pass:"]
    out += ["  ⋯" if p is None else _u_line(f"{_sub(str(p[0]))} = ", p[1]) for p in _forward(s)]
    if s.evaluation is not None:
        ev = s.evaluation
        given = ", ".join(f"{_sub(str(k))} = {sp.sstr(v)}" for k, v in _inputs(s))
        out += ["", f"at {given}{', …' if s.gap else ''}:"]
        for i in s.shown():
            out.append("  ⋯" if i is None else _u_line(f"{name(i)} ", *_u_value(ev.factors[i])))
        out.append(_u_line(f"{target.ljust(width)} ", *_u_value(ev.value)))
    return "\n".join(out) + "\n"


def _u_value(v: sp.Expr) -> list[Any]:
    a = _approx(v)
    if a is None:
        return ["= ", v]
    return ["≈ ", a] if len(sp.sstr(v)) > 40 else ["= ", v, " ≈ ", a]


# ----------------------------------------------------------------------------- LaTeX


def _tex(e: Any) -> str:
    return sp.latex(e)


def _tex_factor(e: sp.Expr) -> str:
    return LatexPrinter().parenthesize(e, _MUL, strict=True)


def _tex_partial(num: sp.Symbol, den: sp.Symbol) -> str:
    return rf"\frac{{\partial {_tex(num)}}}{{\partial {_tex(den)}}}"


def _tex_act(name: str, arg: str) -> str:
    symbol = LATEX_NAMES.get(name, r"\varphi")
    return rf"{symbol}'\left({arg}\right)"


def _tex_text(s: str) -> str:
    r"""Text safe inside ``\text{}``.

    >>> _tex_text("leaky_relu(negative_slope=1/100)")
    'leaky\\_relu(negative\\_slope=1/100)'
    """
    table = {"\\": r"\textbackslash{}", "_": r"\_", "^": r"\^{}", "#": r"\#", "$": r"\$", "%": r"\%",
             "&": r"\&", "~": r"\~{}", "{": r"\{", "}": r"\}"}
    return "".join(table.get(c, c) for c in s)


def _tex_product(lhs: str, rel: str, terms: Sequence[str]) -> list[str]:
    """``lhs rel t1 t2 …`` as align rows, :data:`FACTORS_PER_LINE` factors to a row (long products break)."""
    rows, chunks = [], [terms[i:i + FACTORS_PER_LINE] for i in range(0, len(terms), FACTORS_PER_LINE)]
    for n, chunk in enumerate(chunks):
        body = r" \cdot ".join(chunk)
        rows.append(f"{lhs} &{rel} {body}" if n == 0 else rf"&\quad \cdot {body}")
    return rows


def _latex_sections(s: _Steps) -> list[tuple[str, list[str]]]:
    """The align rows of each step, titled (Markdown puts each section in its own math block)."""
    d, fs = s.d, s.d.factors
    target = _tex_partial(sp.Symbol("L"), s.target)
    gap = r"\cdots"
    note = [rf"&\text{{({_tex_text(s.omitted_note())})}}"] if s.gap else []

    def act(f: Factor) -> str:
        return _tex_act(f.activation, _tex(f.den))

    def shown(i: int | None) -> str:
        return gap if i is None else act(fs[i]) if fs[i].kind == "activation" else _tex_factor(fs[i].expr)

    chain = _tex_product(target, "=", [gap if i is None else _tex_partial(fs[i].num, fs[i].den) for i in s.shown()])
    local = []
    for i in s.shown():
        if i is None:
            local.append(r"&\;\;\vdots")
            continue
        f = fs[i]
        rhs = f"{act(f)} = {_tex(f.expr)}" if f.kind == "activation" else _tex(f.expr)
        local.append(f"{_tex_partial(f.num, f.den)} &= {rhs}")
    bound = [rf"\sup_{{z}} \left|{_tex_act(a.name, 'z')}\right| &= {_tex(a.gamma)} \quad {_tex_argmax(a)}"
             for a in _activations(d)]
    bound += _tex_product(rf"\left|{target}\right|", r"\le",
                          [gap if i is None else _tex_factor(s.bounds[i]) for i in s.shown()])
    if s.gap is None:
        bound.append(rf"&= {_tex(s.bound)}")
    product = _tex_product(target, "=", [shown(i) for i in s.shown()])
    forward = [r"&\;\;\vdots" if p is None else f"{_tex(p[0])} &= {_tex(p[1])}" for p in _forward(s)]
    sections = [("Chain rule", chain + note), ("Local derivatives", local), ("Bound", bound),
                ("Product", product), ("Forward pass", forward)]
    if s.evaluation is not None:
        ev = s.evaluation
        given = r",\; ".join(f"{_tex(k)} = {_tex(v)}" for k, v in _inputs(s)) + (r",\; \dots" if s.gap else "")
        rows = [rf"&\text{{at }} {given}"]
        rows += [r"&\;\;\vdots" if i is None else f"{_tex_partial(fs[i].num, fs[i].den)} &{_tex_value(ev.factors[i])}"
                 for i in s.shown()]
        rows.append(f"{target} &{_tex_value(ev.value)}")
        sections.append(("Values", rows))
    return sections


def _tex_argmax(a: Activation) -> str:
    sup = a.supremum
    if not sup.bounded:
        return r"\text{(unbounded: no ceiling)}"
    if not sup.attained:
        return r"\text{(approached, not attained)}"
    p = sup.argmax_point
    return rf"\text{{at }} z = {_tex(p)}" if p is not None else rf"\text{{for }} z \in {_tex(sup.argmax)}"


def _tex_value(v: sp.Expr) -> str:
    a = _approx(v)
    if a is None:
        return f"= {_tex(v)}"
    return rf"\approx {_tex(a)}" if len(sp.sstr(v)) > 40 else rf"= {_tex(v)} \approx {_tex(a)}"


def _environment(rows: Sequence[str], environment: str) -> str:
    return f"\\begin{{{environment}}}\n" + " \\\\\n".join(rows) + f"\n\\end{{{environment}}}"


def latex(d: Derivation, values: Mapping[str, Any] | None = None, environment: str = "align*",
          standalone: bool = False, max_layers: int = MAX_LAYERS_SHOWN) -> str:
    r"""One ``align*`` block walking the chain factor by factor (``aligned`` for use inside ``$$``).

    With ``standalone=True``, a complete document that compiles with pdflatex and base amsmath.

    >>> from symvg.symbolic.chain import Chain
    >>> from symvg.symbolic.derive import derive
    >>> print(latex(derive(Chain(1, "sigmoid"))).splitlines()[1])
    \frac{\partial L}{\partial w_{1}} &= \frac{\partial L}{\partial h_{1}} \cdot \frac{\partial h_{1}}{\partial z_{1}} \cdot \frac{\partial z_{1}}{\partial w_{1}} \\
    """
    if environment not in ENVIRONMENTS:
        raise InvalidValueError(f"environment must be one of {', '.join(ENVIRONMENTS)}, got {environment!r}")
    s = _steps(d, values, max_layers)
    rows = [r for _, section in _latex_sections(s) for r in section]
    body = _environment(rows, environment)
    if not standalone:
        return body
    title = (rf"$\partial L/\partial {_tex(s.target)}$ for a {_tex_text(d.chain.name)} chain, "
             f"depth {d.chain.depth}, {_tex_text(d.chain.loss)} loss")
    return "\n".join([r"\documentclass{article}", r"\usepackage{amsmath}", r"\usepackage[margin=1in]{geometry}",
                      r"\allowdisplaybreaks", r"\begin{document}", rf"\section*{{{title}}}",
                      _environment(rows, "align*"), r"\end{document}", ""])


# ----------------------------------------------------------------------------- Markdown


def markdown(d: Derivation, values: Mapping[str, Any] | None = None, max_layers: int = MAX_LAYERS_SHOWN) -> str:
    """A heading and one ``$$`` math block per step (GitHub, Jupyter and MathJax render them).

    >>> from symvg.symbolic.chain import Chain
    >>> from symvg.symbolic.derive import derive
    >>> print(markdown(derive(Chain(1, "relu"))).splitlines()[0])
    ### ∂L/∂w₁ for a relu chain, depth 1, mse loss
    """
    s = _steps(d, values, max_layers)
    out = [f"### ∂L/∂{_sub(str(s.target))} for a {d.chain.name} chain, depth {d.chain.depth}, {d.chain.loss} loss"]
    for title, rows in _latex_sections(s):
        out += ["", f"**{title}**", "", "$$", _environment(rows, "aligned"), "$$"]
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------- JSON


@display.latex.register
def _notebook_latex(d: Derivation) -> str:
    return "$$" + latex(d, environment="aligned") + "$$"


display.markdown.register(Derivation, lambda d: markdown(d))


def to_dict(d: Derivation, values: Mapping[str, Any] | None = None, max_layers: int = MAX_LAYERS_SHOWN) -> dict:
    """A JSON-ready dict (see ``symvg/views/schemas/derive.schema.json``); every factor is listed, none abbreviated.

    ``forward`` and ``closed_form`` are given up to depth :data:`~symvg.symbolic.derive.MAX_CLOSED_FORM_DEPTH`;
    ``values``, ``factor_values``, ``value`` and ``value_float`` when ``values`` are given.

    >>> from symvg.symbolic.chain import Chain
    >>> from symvg.symbolic.derive import derive
    >>> out = to_dict(derive(Chain(2, "relu")))
    >>> out["factors"][1], out["bound"], out["gamma"]
    ("dh2/dz2 = relu'(z2)", '2*Abs(w2)*Abs(x)*Abs(h2 - y)', {'relu': '1'})
    """
    s = _steps(d, values, max_layers)
    out: dict[str, Any] = {
        "layers": d.chain.depth,
        "activation": d.chain.name,
        "wrt": d.wrt,
        "loss": d.chain.loss,
        "factors": [str(f) for f in d.factors],
        "product": sp.sstr(d.product),
        "latex": latex(d, values, max_layers=max_layers),
        "steps": [{"name": f.name, "expr": sp.sstr(f.expr), "latex": _tex(f.expr), "kind": f.kind, "layer": f.layer,
                   "bound": sp.sstr(b)} for f, b in zip(d.factors, s.bounds)],
        "bound": sp.sstr(s.bound),
        "gamma": {a.label: sp.sstr(a.gamma) for a in _activations(d)},
    }
    if d.chain.depth <= MAX_CLOSED_FORM_DEPTH:  # both are for reading; deep chains have the chain spec instead
        out["forward"] = [[str(k), sp.sstr(v)] for k, v in d.forward()]
        out["closed_form"] = sp.sstr(d.closed_form())
    if s.evaluation is not None:
        ev = s.evaluation
        out["values"] = {str(k): sp.sstr(v) for k, v in ev.values}
        out["factor_values"] = [sp.sstr(v) for v in ev.factors]
        out["value"] = sp.sstr(ev.value)
        out["value_float"] = float(ev)
    return out


# ----------------------------------------------------------------------------- depth bounds


def _sci(v: sp.Expr | None, digits: int = 4) -> str:
    """A short decimal for an exact value (no float underflow: SymPy keeps the exponent).

    >>> _sci(sp.Rational(1, 4) ** 2000)
    '7.586e-1205'
    """
    return "-" if v is None else sp.sstr(sp.Float(v.evalf(digits + 5), digits))


def bound_to_dict(b: DepthBound) -> dict:
    """The JSON form of a :class:`~symvg.symbolic.bounds.DepthBound` (its own ``as_dict``, one source)."""
    return b.as_dict()


def depth_note(b: DepthBound, g: str = "gamma*|w|") -> str:
    """Where the depth-N bounds cross tol, each said as what it proves ("" without a tol).

    >>> from symvg.symbolic.bounds import depth_bound
    >>> depth_note(depth_bound("relu", 2, tol="1e-6"))
    'the ceiling (gamma*|w|)^N is above 1/tol = 1000000 from depth 20: exploding is no longer excluded there, not proved'
    """
    if b.tol is None:
        return ""
    if b.verdict == UNBOUNDED:
        return "unbounded: no ceiling (sup|phi'| = oo), so no depth law follows"
    if b.depth_to_vanish is not None:
        return f"the ceiling ({g})^N is below {b.tol} from depth {b.depth_to_vanish}: vanished there (proved)"
    if b.depth_to_explode is not None:
        return (f"the floor (m|w|)^N is above 1/tol = {1 / b.tol} from depth {b.depth_to_explode}: "
                "exploded there (proved)")
    if b.depth_may_explode is not None:
        return (f"the ceiling ({g})^N is above 1/tol = {1 / b.tol} from depth {b.depth_may_explode}: "
                "exploding is no longer excluded there, not proved")
    return f"the ceiling ({g})^N is 1 at every depth: never below tol nor above 1/tol"


def render_bound(b: DepthBound, fmt: str = "text") -> str:
    """A :class:`~symvg.symbolic.bounds.DepthBound` as text, unicode, latex, markdown or json.

    The verdict is :func:`symvg.symbolic.bounds.decide`'s, the same words as ``sweep``, ``compare`` and ``plot``.

    >>> from symvg.symbolic.bounds import depth_bound
    >>> print(render_bound(depth_bound("sigmoid", 1, layers=10, tol="1e-6")))
    sigmoid: gamma = sup|sigmoid'| = 1/4, |w| = 1, per-layer factor in [0, 1/4] -> vanishes
      vanishes (proved: the ceiling 1/4 < 1 gives |dh_N/dh_0| <= (1/4)^N)
      bound at depth 10: (gamma*|w|)^10 = 1/1048576 ~= 9.537e-7
      at depth 10: vanishes
      the ceiling (gamma*|w|)^N is below 1/1000000 from depth 10: vanished there (proved)
    """
    if fmt not in BOUND_FORMATS:
        raise InvalidValueError(f"format must be one of {', '.join(BOUND_FORMATS)}, got {fmt!r}")
    if fmt == "json":
        return json.dumps(bound_to_dict(b), indent=2, ensure_ascii=False)
    d = b.decision
    if fmt == "latex":
        rows = [rf"\gamma = \sup_z \left|\text{{{_tex_text(b.activation)}}}'(z)\right| &= {_tex(b.gamma)}",
                rf"\gamma \left|w\right| &= {_tex(b.gamma)} \cdot {_tex(b.weight)} = {_tex(b.factor)}"
                rf" \quad \text{{(ceiling; floor {_tex_text(sp.sstr(b.floor))}: {_tex_text(d.short)})}}"]
        if b.layers is not None:
            exact = _tex(b.bound) if len(sp.sstr(b.bound)) <= 40 else rf"{_tex(b.factor)}^{{{b.layers}}}"
            rows.append(rf"\left(\gamma \left|w\right|\right)^{{{b.layers}}} &= {exact} \approx {_sci(b.bound)}")
        if b.tol is not None:
            name, depth = next(((n, v) for n, v in (("vanished", b.depth_to_vanish), ("exploded", b.depth_to_explode),
                                                     ("may explode", b.depth_may_explode)) if v is not None),
                               ("never crossed", r"\infty"))
            rows.append(rf"N_{{\text{{{name}}}}} &= {depth} \quad \text{{(tolerance }} {_tex(b.tol)}\text{{)}}")
        return _environment(rows, "align*")
    g, times = ("γ", "·") if fmt in ("unicode", "markdown") else ("gamma", "*")
    lines = [f"{b.activation}: {g} = sup|{b.activation}'| = {b.gamma}, |w| = {b.weight}, "
             f"per-layer factor in [{b.floor}, {b.factor}] -> {d.short}", f"  {d.text}"]
    if b.layers is not None:
        exact = sp.sstr(b.bound) if len(sp.sstr(b.bound)) <= 40 else f"({b.factor})^{b.layers}"
        lines.append(f"  bound at depth {b.layers}: ({g}{times}|w|)^{b.layers} = {exact} ~= {_sci(b.bound)}")
        if d.status is not None:
            lines.append(f"  at depth {b.layers}: {d.status}")
    if b.tol is not None:
        lines.append("  " + depth_note(b, f"{g}{times}|w|"))
    if b.verdict == UNBOUNDED:  # no ceiling: no bound and no crossing depth to state
        lines[2:] = ["  unbounded: no ceiling (sup|φ'| = oo), so no bound at any depth"]
    if fmt == "markdown":
        return "\n".join(["- " + lines[0]] + ["  - " + ln.strip() for ln in lines[1:]])
    return "\n".join(lines)


# ----------------------------------------------------------------------------- sweeps: depth x activation


SWEEP_FORMATS = ("text", "markdown", "csv", "json")


def _log10(b: DepthBound) -> float | None:
    """log10 of (γ|w|)^N from the bound's own log rate: no float underflow at any depth."""
    return None if b.factor == 0 or b.factor is sp.oo else round(b.log_rate * b.layers / math.log(10), 6)  # type: ignore[operator]


def sweep_to_dict(columns: Sequence[Sequence[DepthBound]]) -> dict:
    """A sweep (one column of :class:`~symvg.symbolic.bounds.DepthBound` per activation, one per depth) as JSON data.

    See ``symvg/views/schemas/sweep.schema.json``.
    """
    first = columns[0]
    return {
        "layers": [b.layers for b in first],
        "weight": sp.sstr(first[0].weight),
        "tol": sp.sstr(first[0].tol),
        "activations": [{"activation": c[0].activation, "gamma": sp.sstr(c[0].gamma), "factor": sp.sstr(c[0].factor),
                         "floor": sp.sstr(c[0].floor), "verdict": c[0].verdict,
                         "possible": list(c[0].decision.possible), "reason": c[0].decision.reason,
                         "depth_to_vanish": c[0].depth_to_vanish, "depth_to_explode": c[0].depth_to_explode,
                         "depth_may_explode": c[0].depth_may_explode, "status": [b.decision.status for b in c],
                         "bound": [_sci(b.bound) for b in c], "log10_bound": [_log10(b) for b in c]}
                        for c in columns],
    }


def _note(b: DepthBound, g: str = "gamma*|w|") -> str:
    """One activation's line under a sweep: the verdict (:func:`symvg.symbolic.bounds.decide`) and where tol is crossed."""
    return f"{b.decision.text}; {depth_note(b, g)}"


def render_sweep(columns: Sequence[Sequence[DepthBound]], fmt: str = "text") -> str:
    """The "how deep before it vanishes" table: depth N × activation of the bound (γ|w|)^N.

    >>> from symvg.symbolic.bounds import depth_bound
    >>> cols = [[depth_bound(a, 1, layers=n, tol="1e-6") for n in (1, 10)] for a in ("sigmoid", "relu")]
    >>> print(render_sweep(cols))
    bound (gamma*|w|)^N on |dh_N/dh_0|, |w| = 1
    <BLANKLINE>
    N   sigmoid   relu
    --  --------  -----
    1   0.2500    1.000
    10  9.537e-7  1.000
    <BLANKLINE>
    sigmoid: gamma = 1/4, per-layer factor in [0, 1/4]: vanishes (proved: the ceiling 1/4 < 1 gives |dh_N/dh_0| <= (1/4)^N); the ceiling (gamma*|w|)^N is below 1/1000000 from depth 10: vanished there (proved)
    relu: gamma = 1, per-layer factor in [0, 1]: undecided, may vanish: the ceiling 1 rules out growth; the floor is 0 (relu' = 0 for z <= 0: a unit there passes no gradient); `symvg eval` samples the typical case; the ceiling (gamma*|w|)^N is 1 at every depth: never below tol nor above 1/tol
    """
    if fmt not in SWEEP_FORMATS:
        raise InvalidValueError(f"format must be one of {', '.join(SWEEP_FORMATS)}, got {fmt!r}")
    if fmt == "json":
        return json.dumps(sweep_to_dict(columns), indent=2, ensure_ascii=False)
    header = ["N"] + [c[0].activation for c in columns]
    rows = [[str(bs[0].layers)] + [_sci(b.bound) for b in bs] for bs in zip(*columns)]
    if fmt == "csv":
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([header] + rows)
        return buf.getvalue()
    w = columns[0][0].weight
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" for _ in header) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        notes = [f"- **{c[0].activation}**: γ = {c[0].gamma}, per-layer factor in [{c[0].floor}, {c[0].factor}]: "
                 f"{_note(c[0], 'γ·|w|')}" for c in columns]
        return "\n".join([f"Bound (γ·|w|)^N on |∂h_N/∂h_0|, |w| = {w}", ""] + lines + [""] + notes) + "\n"
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(n) for c, n in zip(r, widths)).rstrip() for r in [header] + rows]
    lines.insert(1, "  ".join("-" * n for n in widths))
    notes = [f"{c[0].activation}: gamma = {c[0].gamma}, per-layer factor in [{c[0].floor}, {c[0].factor}]: {_note(c[0])}"
             for c in columns]
    return "\n".join([f"bound (gamma*|w|)^N on |dh_N/dh_0|, |w| = {w}", ""] + lines + [""] + notes) + "\n"


__all__ = ["BOUND_FORMATS", "ENVIRONMENTS", "MAX_LAYERS_SHOWN", "bound_to_dict", "depth_note", "latex", "markdown",
           "render_bound", "render_sweep", "sweep_to_dict", "text", "to_dict", "unicode"]
