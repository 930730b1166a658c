r"""Views of a :class:`~symvg.symbolic.derive.Derivation`: plain text, Unicode, LaTeX, Markdown, JSON.

One walk (:func:`_walk`) lays out the steps, in the order a reader checks them by hand:

    1. the chain rule:        dL/dw1 = dL/dh3 * dh3/dz3 * ... * dz1/dw1
    2. each local derivative: dh3/dz3 = sigmoid'(z3) = exp(-z3)/(1 + exp(-z3))**2
    3. the bound:             gamma = sup|sigmoid'(z)| = 1/4, so |dL/dw1| <= ...
    4. the product, the forward definitions it is written in, and the numbers when ``values`` are given.

Each target is a small printer of those rows, writing them in its notation (:mod:`symvg.views.notation`).
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

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import sympy as sp
from sympy.printing.pretty.pretty import PrettyPrinter
from sympy.printing.pretty.stringpict import prettyForm

from symvg import display, magnitude
from symvg.errors import InvalidValueError
from symvg.symbolic.activations import Activation
from symvg.symbolic.bounds import gradient_bound
from symvg.symbolic.derive import MAX_CLOSED_FORM_DEPTH, Derivation, Evaluation
from symvg.views.notation import LATEX, TEXT, UNICODE, Notation, block, sub, tex_text, value_parts

MAX_LAYERS_SHOWN = 8
"""Layers written out in full; a longer chain shows its first and last :data:`EDGE_LAYERS` layers."""

EDGE_LAYERS = 3
"""Layers kept at each end of an abbreviated chain."""

FACTORS_PER_LINE = 4
"""Factors per line of a LaTeX product: long products break instead of running off the page."""

ENVIRONMENTS = ("align*", "aligned")

_L = sp.Symbol("L")

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


Row = tuple  # (kind, *arguments): a printer writes a row with its method ``_<kind>``


def _walk(s: _Steps) -> list[tuple[str, list[Row]]]:
    """The one step walk: each section's rows, in reading order; every view prints these.

    >>> from symvg.symbolic.chain import Chain
    >>> from symvg.symbolic.derive import derive
    >>> walk = _walk(_steps(derive(Chain(1, "relu")), None, 8))
    >>> [(title, [r[0] for r in rows]) for title, rows in walk][1:3]
    [('Local derivatives', ['local', 'local', 'local']), ('Bound', ['gamma', 'bounds', 'total_bound'])]
    """
    shown = s.shown()
    bound = [("gamma", a) for a in _activations(s.d)] + [("bounds", shown)]
    sections = [("Chain rule", [("chain", shown)]), ("Local derivatives", [("local", i) for i in shown]),
                ("Bound", bound + ([] if s.gap else [("total_bound", s.bound)])),
                ("Product", [("product", shown)]), ("Forward pass", [("forward", p) for p in _forward(s)])]
    if s.evaluation is not None:
        ev = s.evaluation
        values = [("given", _inputs(s))] + [("value", None if i is None else ev.factors[i], i) for i in shown]
        sections.append(("Values", values + [("total_value", ev.value)]))
    return sections


class _Printer:
    """Writes the walk's rows in one notation; a subclass has one ``_<kind>`` method per row kind."""

    notation: Notation

    def __init__(self, s: _Steps) -> None:
        self.s, self.fs = s, s.d.factors
        self.target = self.notation.partial(_L, s.target)
        self.width = max(len(x) for x in [self.target] + [self.name(i) for i in s.head + s.tail])

    def name(self, i: int) -> str:
        f = self.fs[i]
        return self.notation.partial(f.num, f.den)

    def rows(self, rows: Sequence[Row]) -> list[str]:
        return [line for row in rows for line in getattr(self, "_" + row[0])(*row[1:])]


class _LinePrinter(_Printer):
    """Text and Unicode: a header, then each section under its title, one row to a line."""

    titles: dict[str, str]

    def doprint(self) -> str:
        ch = self.s.d.chain
        out = [f"{self.target} for a {ch.name} chain, depth {ch.depth}, {ch.loss} loss"]
        for title, rows in _walk(self.s):
            out += [""] + ([self.titles[title]] if title in self.titles else []) + self.rows(rows)
        return "\n".join(out) + "\n"

    def pad(self, i: int, bars: bool = False) -> str:
        return f"|{self.name(i)}|".ljust(self.width + 2) if bars else self.name(i).ljust(self.width)

    def _chain(self, shown: list[int | None]) -> list[str]:
        n = self.notation
        return [f"  {self.target} = " + n.times.join(n.gap if i is None else self.name(i) for i in shown)]


class _TextPrinter(_LinePrinter):
    notation = TEXT
    titles = {"Chain rule": "chain rule:", "Local derivatives": "local derivatives:",
              "Bound": "bound (gamma = sup|phi'|, proved):", "Product": "product:", "Forward pass": "forward pass:"}

    def _local(self, i: int | None) -> list[str]:
        if i is None:
            return [f"  ... {self.s.omitted_note()}"]
        # The short form by name, then the expression it stands for (once: a factor that has no
        # short form, such as x or w_j, is printed once, without the parentheses of a product).
        shown, full = self.fs[i].display, sp.sstr(self.fs[i].expr)
        return [f"  {self.pad(i)} " + (f"= {shown} = {full}" if isinstance(shown, str) else f"= {full}")]

    def _gamma(self, a: Activation) -> list[str]:
        return [f"  gamma = sup|{a.label}'(z)| = {sp.sstr(a.gamma)}, {TEXT.argmax(a)}"]

    def _bounds(self, shown: list[int | None]) -> list[str]:
        return ["  ..." if i is None else f"  {self.pad(i, bars=True)} <= {sp.sstr(self.s.bounds[i])}" for i in shown]

    def _total_bound(self, bound: sp.Expr) -> list[str]:
        return [f"  {'|' + self.target + '|':<{self.width + 2}} <= {sp.sstr(bound)}"]

    def _product(self, shown: list[int | None]) -> list[str]:
        def one(i: int) -> str:
            f = self.fs[i]
            if isinstance(f.display, str):
                return f"({f.display})" if f.kind == "residual" else f.display
            return TEXT.factor(f.display)

        return [f"  {self.target} = " + " * ".join("..." if i is None else one(i) for i in shown)]

    def _forward(self, p: tuple[sp.Symbol, sp.Expr] | None) -> list[str]:
        return ["  ..." if p is None else f"  {p[0]} = {sp.sstr(p[1])}"]

    def _given(self, inputs: list[tuple[sp.Symbol, sp.Expr]]) -> list[str]:
        return ["at " + ", ".join(f"{k} = {sp.sstr(v)}" for k, v in inputs) + (", ..." if self.s.gap else "") + ":"]

    def _value(self, v: sp.Expr | None, i: int | None) -> list[str]:
        return ["  ..." if i is None else f"  {self.pad(i)} {TEXT.value(v)}"]  # type: ignore[arg-type]

    def _total_value(self, v: sp.Expr) -> list[str]:
        return [f"  {self.target.ljust(self.width)} {TEXT.value(v)}"]


def _pretty(e: Any) -> prettyForm:
    return PrettyPrinter({"use_unicode": True, "wrap_line": False})._print(e)


def _u_line(*parts: Any) -> list[str]:
    """One equation line: pieces (strings or SymPy objects) side by side on a common baseline."""
    forms = [p if isinstance(p, prettyForm) else prettyForm(p) if isinstance(p, str) else _pretty(p) for p in parts]
    line = prettyForm(*forms[0].right(*forms[1:])) if len(forms) > 1 else forms[0]
    return ["\n".join("  " + r.rstrip() for r in line.render(wrap_line=False).split("\n"))]


def _u_value(v: sp.Expr) -> list[Any]:
    return [p for n, (rel, e) in enumerate(value_parts(v)) for p in ((" " if n else "") + rel + " ", e)]


class _UnicodePrinter(_LinePrinter):
    notation = UNICODE
    titles = dict(_TextPrinter.titles, Bound="bound (γ = sup|φ'|, proved):")

    def act(self, i: int) -> str:
        return UNICODE.act(self.fs[i].activation, sub(self.fs[i].den))

    def _local(self, i: int | None) -> list[str]:
        if i is None:
            return [f"  ⋯ {self.s.omitted_note()}"]
        f = self.fs[i]
        return _u_line(f"{self.pad(i)} = " + (f"{self.act(i)} = " if f.kind == "activation" else ""), f.expr)

    def _gamma(self, a: Activation) -> list[str]:
        return [f"  γ = sup|{UNICODE.name(a.name)}'(z)| = {UNICODE.expr(a.gamma)}, {UNICODE.argmax(a)}"]

    def _bounds(self, shown: list[int | None]) -> list[str]:
        return [ln for i in shown
                for ln in (["  ⋯"] if i is None else _u_line(f"{self.pad(i, True)} ≤ ", self.s.bounds[i]))]

    def _total_bound(self, bound: sp.Expr) -> list[str]:
        return _u_line(f"{'|' + self.target + '|':<{self.width + 2}} ≤ ", bound)

    def _product(self, shown: list[int | None]) -> list[str]:
        def one(i: int) -> Any:
            e = self.fs[i].expr
            if self.fs[i].kind == "activation":
                return self.act(i)
            return prettyForm(*_pretty(e).parens()) if sp.Add in type(e).__mro__ else _pretty(e)

        pieces: list[Any] = [f"{self.target} = "]
        for n, i in enumerate(shown):
            pieces += ([" ⋅ "] if n else []) + ["⋯" if i is None else one(i)]
        return _u_line(*pieces)

    def _forward(self, p: tuple[sp.Symbol, sp.Expr] | None) -> list[str]:
        return ["  ⋯"] if p is None else _u_line(f"{sub(p[0])} = ", p[1])

    def _given(self, inputs: list[tuple[sp.Symbol, sp.Expr]]) -> list[str]:
        given = ", ".join(f"{sub(k)} = {sp.sstr(v)}" for k, v in inputs)
        return [f"at {given}{', …' if self.s.gap else ''}:"]

    def _value(self, v: sp.Expr | None, i: int | None) -> list[str]:
        return ["  ⋯"] if i is None else _u_line(f"{self.pad(i)} ", *_u_value(v))  # type: ignore[arg-type]

    def _total_value(self, v: sp.Expr) -> list[str]:
        return _u_line(f"{self.target.ljust(self.width)} ", *_u_value(v))


class _LatexPrinter(_Printer):
    """LaTeX: each section a list of ``align`` rows (Markdown puts each in its own math block)."""

    notation = LATEX
    vdots = r"&\;\;\vdots"

    def sections(self) -> list[tuple[str, list[str]]]:
        return [(title, self.rows(rows)) for title, rows in _walk(self.s)]

    def product(self, lhs: str, rel: str, terms: Sequence[str]) -> list[str]:
        """``lhs rel t1 t2 …`` as align rows, :data:`FACTORS_PER_LINE` factors to a row (long products break)."""
        rows, chunks = [], [terms[i:i + FACTORS_PER_LINE] for i in range(0, len(terms), FACTORS_PER_LINE)]
        for n, chunk in enumerate(chunks):
            body = r" \cdot ".join(chunk)
            rows.append(f"{lhs} &{rel} {body}" if n == 0 else rf"&\quad \cdot {body}")
        return rows

    def act(self, i: int) -> str:
        return LATEX.act(self.fs[i].activation, LATEX.expr(self.fs[i].den))

    def _chain(self, shown: list[int | None]) -> list[str]:
        note = [rf"&\text{{({tex_text(self.s.omitted_note())})}}"] if self.s.gap else []
        return self.product(self.target, "=", [LATEX.gap if i is None else self.name(i) for i in shown]) + note

    def _local(self, i: int | None) -> list[str]:
        if i is None:
            return [self.vdots]
        f = self.fs[i]
        return [f"{self.name(i)} &= " + (f"{self.act(i)} = " if f.kind == "activation" else "") + LATEX.expr(f.expr)]

    def _gamma(self, a: Activation) -> list[str]:
        sup = rf"\sup_{{z}} \left|{LATEX.act(a.name, 'z')}\right|"
        return [rf"{sup} &= {LATEX.expr(a.gamma)} \quad {LATEX.argmax(a)}"]

    def _bounds(self, shown: list[int | None]) -> list[str]:
        terms = [LATEX.gap if i is None else LATEX.factor(self.s.bounds[i]) for i in shown]
        return self.product(rf"\left|{self.target}\right|", r"\le", terms)

    def _total_bound(self, bound: sp.Expr) -> list[str]:
        return [rf"&= {LATEX.expr(bound)}"]

    def _product(self, shown: list[int | None]) -> list[str]:
        def one(i: int | None) -> str:
            if i is None:
                return LATEX.gap
            return self.act(i) if self.fs[i].kind == "activation" else LATEX.factor(self.fs[i].expr)

        return self.product(self.target, "=", [one(i) for i in shown])

    def _forward(self, p: tuple[sp.Symbol, sp.Expr] | None) -> list[str]:
        return [self.vdots if p is None else f"{LATEX.expr(p[0])} &= {LATEX.expr(p[1])}"]

    def _given(self, inputs: list[tuple[sp.Symbol, sp.Expr]]) -> list[str]:
        given = r",\; ".join(f"{LATEX.expr(k)} = {LATEX.expr(v)}" for k, v in inputs)
        return [rf"&\text{{at }} {given}" + (r",\; \dots" if self.s.gap else "")]

    def _value(self, v: sp.Expr | None, i: int | None) -> list[str]:
        return [self.vdots if i is None else f"{self.name(i)} &{LATEX.value(v)}"]  # type: ignore[arg-type]

    def _total_value(self, v: sp.Expr) -> list[str]:
        return [f"{self.target} &{LATEX.value(v)}"]


# ----------------------------------------------------------------------------- the public views


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
    return _TextPrinter(_steps(d, values, max_layers)).doprint()


def unicode(d: Derivation, values: Mapping[str, Any] | None = None, max_layers: int = MAX_LAYERS_SHOWN) -> str:
    """The same steps as :func:`text`, printed with SymPy's Unicode pretty printer (∂, σ, subscripts).

    >>> from symvg.symbolic.chain import Chain
    >>> from symvg.symbolic.derive import derive
    >>> print(unicode(derive(Chain(2, "tanh"))).splitlines()[3])
      ∂L/∂w₁ = ∂L/∂h₂ ⋅ ∂h₂/∂z₂ ⋅ ∂z₂/∂h₁ ⋅ ∂h₁/∂z₁ ⋅ ∂z₁/∂w₁
    """
    return _UnicodePrinter(_steps(d, values, max_layers)).doprint()


def latex(d: Derivation, values: Mapping[str, Any] | None = None, environment: str = "align*",
          standalone: bool = False, max_layers: int = MAX_LAYERS_SHOWN) -> str:
    r"""One ``align*`` block walking the chain factor by factor (``aligned`` for use inside ``$$``).

    With ``standalone=True``, a complete document that compiles with pdflatex, amsmath and amssymb (SymPy writes
    ℝ, where sup|φ'| is attained for every z, as ``\mathbb{R}``).

    >>> from symvg.symbolic.chain import Chain
    >>> from symvg.symbolic.derive import derive
    >>> print(latex(derive(Chain(1, "sigmoid"))).splitlines()[1])
    \frac{\partial L}{\partial w_{1}} &= \frac{\partial L}{\partial h_{1}} \cdot \frac{\partial h_{1}}{\partial z_{1}} \cdot \frac{\partial z_{1}}{\partial w_{1}} \\
    """
    if environment not in ENVIRONMENTS:
        raise InvalidValueError(f"environment must be one of {', '.join(ENVIRONMENTS)}, got {environment!r}")
    s = _steps(d, values, max_layers)
    rows = [r for _, section in _LatexPrinter(s).sections() for r in section]
    body = block(rows, environment)
    if not standalone:
        return body
    title = (rf"$\partial L/\partial {LATEX.expr(s.target)}$ for a {tex_text(d.chain.name)} chain, "
             f"depth {d.chain.depth}, {tex_text(d.chain.loss)} loss")
    return "\n".join([r"\documentclass{article}", r"\usepackage{amsmath}", r"\usepackage{amssymb}",
                      r"\usepackage[margin=1in]{geometry}",
                      r"\allowdisplaybreaks", r"\begin{document}", rf"\section*{{{title}}}",
                      block(rows, "align*"), r"\end{document}", ""])


def markdown(d: Derivation, values: Mapping[str, Any] | None = None, max_layers: int = MAX_LAYERS_SHOWN) -> str:
    """A heading and one ``$$`` math block per step (GitHub, Jupyter and MathJax render them).

    >>> from symvg.symbolic.chain import Chain
    >>> from symvg.symbolic.derive import derive
    >>> print(markdown(derive(Chain(1, "relu"))).splitlines()[0])
    ### ∂L/∂w₁ for a relu chain, depth 1, mse loss
    >>> print(markdown(derive(Chain(1, "expr:z*tanh(z)*2"))).splitlines()[0])  # no *emphasis* from the name
    ### ∂L/∂w₁ for a expr:z\\*tanh(z)\\*2 chain, depth 1, mse loss
    """
    s = _steps(d, values, max_layers)
    ch = d.chain
    name = re.sub(r"([\\`*_\[\]<>#|])", r"\\\1", ch.name)  # Markdown would read expr:z*tanh(z)*2 as emphasis
    out = [f"### {UNICODE.partial(_L, s.target)} for a {name} chain, depth {ch.depth}, {ch.loss} loss"]
    for title, rows in _LatexPrinter(s).sections():
        out += ["", f"**{title}**", "", "$$", block(rows, "aligned"), "$$"]
    return "\n".join(out) + "\n"


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
        "steps": [{"name": f.name, "expr": sp.sstr(f.expr), "latex": LATEX.expr(f.expr), "kind": f.kind,
                   "layer": f.layer, "bound": sp.sstr(b)} for f, b in zip(d.factors, s.bounds)],
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
        # json_float: null beyond float64 (x = 1e400 through a linear chain gave inf, which JSON refuses)
        out["value_float"] = magnitude.json_float(ev.value)
        note = magnitude.range_note("value", ev.value, out["value_float"], log_key="")
        if note:
            out["value_note"] = note
    return out


@display.latex.register
def _notebook_latex(d: Derivation) -> str:
    return "$$" + latex(d, environment="aligned") + "$$"


display.markdown.register(Derivation, lambda d: markdown(d))
display.data.register(Derivation, lambda d: to_dict(d))

__all__ = ["ENVIRONMENTS", "MAX_LAYERS_SHOWN", "latex", "markdown", "text", "to_dict", "unicode"]
