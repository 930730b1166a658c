"""Views of depth bounds: one :class:`~symvg.symbolic.bounds.DepthBound` (``symvg bound``) and a sweep
of them over depth × activation (``symvg sweep``), as text, Unicode, LaTeX, Markdown, CSV and JSON.

The verdict words are :func:`symvg.symbolic.bounds.decide`'s; nothing is decided here.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Sequence

import sympy as sp

from symvg import display, magnitude
from symvg.errors import InvalidValueError
from symvg.symbolic.activations import Activation
from symvg.symbolic.supremum import Supremum
from symvg.symbolic.bounds import UNBOUNDED, DepthBound
from symvg.symbolic.powers import NUMERIC_DIGITS, side
from symvg.views.notation import block, tex_text
from symvg.views.tables import brief, short

BOUND_FORMATS = ("text", "unicode", "latex", "markdown", "json")


# ----------------------------------------------------------------------------- sup|φ'| and its proof (symvg bound)


def _approach(s: Supremum) -> str:
    return ", ".join(str(c.where) for c in s.candidates if not c.attained and c.value == s.value) or "?"


def argmax_cell(s: Supremum) -> str:
    """Where sup|φ'| is attained, for a table cell (or the point it is approached at)."""
    return brief(s.argmax) if s.attained else f"→ {_approach(s)} (not attained)"


def supremum_to_dict(a: Activation) -> dict:
    """The JSON form of γ = sup|φ'| with its proof, every candidate listed."""
    s = a.supremum
    point = s.argmax_point
    # json_float: null beyond float64 (leaky_relu:1e309's γ = 1e309 was inf, which JSON refuses)
    value = magnitude.json_float(s.value) if s.bounded else None
    note = magnitude.range_note("sup_derivative", s.value, value, log_key="") if s.bounded else ""
    return {
        "activation": a.label,
        "derivative": str(a.derivative),
        "sup_derivative": str(s.value),
        "sup_derivative_value": value,
        **({"sup_derivative_note": note} if note else {}),
        "bounded": s.bounded,
        "argmax": str(s.argmax) if s.attained else f"not attained (approached as z -> {_approach(s)})",
        "argmax_value": magnitude.json_float(point) if point is not None else None,
        "attained": s.attained,
        "exact": s.exact,
        "equation": None if s.equation is None else str(s.equation),
        "proof": [{"where": str(c.where), "abs_derivative": str(c.value), "attained": c.attained, "reason": c.reason}
                  for c in s.candidates],
        "convention": a.convention or None,
        **infimum_to_dict(a),
    }


def infimum_to_dict(a: Activation) -> dict:
    """The JSON form of the floor m = inf|φ'| with the candidates its proof adds to the supremum's.

    >>> from symvg.symbolic.activations import get
    >>> d = infimum_to_dict(get("expr:z**3 + z"))
    >>> d["inf_derivative"], d["inf_proved"], d["inf_attained"], d["inf_proof"][0]["reason"]
    ('1', True, True, 'critical point')
    """
    m = a.infimum
    return {"inf_derivative": str(m.value), "inf_proved": m.proved, "inf_attained": m.attained,
            "inf_proof": [{"where": str(c.where), "abs_derivative": str(c.value), "attained": c.attained,
                           "reason": c.reason} for c in m.candidates[len(a.supremum.candidates):]],
            "inf_searched": list(m.searched),
            **({"inf_note": m.why} if m.why else {})}


def render_supremum(a: Activation) -> str:
    """φ' and the proof of γ = sup|φ'|, every candidate listed (the first part of ``symvg bound``).

    >>> from symvg.symbolic.activations import get
    >>> print(render_supremum(get("tanh")).splitlines()[0])
    tanh: φ'(z) = 1 - tanh(z)**2
    """
    lines = [f"{a.label}: φ'(z) = {a.derivative}", "proof (every candidate for the supremum of |φ'|):",
             a.supremum.explain(), "floor inf|φ'| (those candidates, and the zeros and critical points of φ' they lack):",
             a.infimum.explain(len(a.supremum.candidates))]
    if a.convention:
        lines.append(f"  kink convention: {a.convention}")
    return "\n".join(lines)


def approx(v: sp.Expr) -> str:
    """A short decimal of an exact value, with its true exponent; says so when float64 would print 0 or inf.

    >>> approx(sp.Rational(1, 4) ** 5000)
    '5.012e-3011 (below float64 range: a float64 would print 0; the exact value is above)'
    """
    text = f"{float(v.evalf(30)):.6g}"
    if v != 0 and text in ("0", "-0", "inf", "-inf"):
        where = "below" if text in ("0", "-0") else "beyond"
        text = f"{_sci(v)} ({where} float64 range: a float64 would print {text}; the exact value is above)"
    return text


def _equals(v: sp.Expr) -> str:
    """``= v ≈ decimal`` for a value written exactly in a few characters, ``≈ decimal`` otherwise; an exact
    0 or 1 is said with ``=`` alone (``≈ 0`` would read as an underflow)."""
    exact, decimal = short(v), approx(v)
    if exact.startswith("≈"):
        return exact
    return f"= {exact}" if exact == decimal else f"= {exact} ≈ {decimal}"


def render_depth_law(db: DepthBound) -> str:
    """The depth law in full: floor and ceiling with decimals, the verdict, the bound at depth N and where
    tol is crossed (the second part of ``symvg bound``; :func:`render_bound` is the one-paragraph form).

    >>> from symvg.symbolic.bounds import depth_bound
    >>> print(render_depth_law(depth_bound("tanh", "1/2", layers=3)))
    per-layer factor |w·φ'(z)| in [floor, ceiling] = [0, 1/2] (floor inf|φ'|·|w| = 0, ceiling γ|w| = 1/2 ≈ 0.5)
    verdict: vanishes (proved: the ceiling 1/2 < 1 gives |dh_N/dh_0| <= (1/2)^N)
    bound at depth 3: |dh3/dh0| <= (γ|w|)^3 = 1/8 ≈ 0.125
    """
    d = db.decision
    if db.verdict == UNBOUNDED:
        return ("per-layer factor γ|w|: unbounded: no ceiling (sup|φ'| = oo), so no bound at any depth\n"
                f"verdict: {d.text}")
    if db.factor is sp.oo:  # no ceiling, but a floor above 1: growth is proved all the same
        lines = [f"per-layer factor |w·φ'(z)| >= floor inf|φ'|·|w| {_equals(db.floor)} (no ceiling: sup|φ'| = oo)",
                 f"verdict: {d.text}"]
        if db.layers is not None and d.status is not None:
            lines.append(f"at depth {db.layers} (tol {db.tol}): {d.status}")
        if db.tol is not None:
            lines.append(depth_note(db, "γ|w|"))
        return "\n".join(lines)
    lines = [f"per-layer factor |w·φ'(z)| in [floor, ceiling] = [{short(db.floor)}, {short(db.factor)}]"
             f" (floor inf|φ'|·|w| {_equals(db.floor)}, ceiling γ|w| {_equals(db.factor)})",
             f"verdict: {d.text}"]
    if db.layers is not None:
        lines.append(f"bound at depth {db.layers}: |dh{db.layers}/dh0| <= (γ|w|)^{db.layers} {_equals(db.bound)}")
        if d.status is not None:
            lines.append(f"at depth {db.layers} (tol {magnitude.short(db.tol)}): {d.status}")
    if db.tol is not None:
        lines.append(depth_note(db, "γ|w|"))
    return "\n".join(lines)


# ----------------------------------------------------------------------------- depth bounds


def _sci(v: sp.Expr | None, digits: int = 4) -> str:
    """A short decimal for an exact value (no float underflow: SymPy keeps the exponent).

    >>> _sci(sp.Rational(1, 4) ** 2000)
    '7.586e-1205'
    """
    return "-" if v is None else sp.sstr(sp.Float(v.evalf(digits + 5), digits))


def _cell(v: sp.Expr | None) -> str:
    """:func:`_sci`, except that a bound which is not 1 is never shown as 1.000: (1 − 2.5e-24)^N is below 1 and
    (1 + 2.5e-8)^N above it, which side decides vanishing against exploding (:func:`symvg.magnitude.not_one`).

    >>> _cell(1 - sp.Rational(1, 10**7)), _cell(sp.Integer(1)), _cell(sp.Rational(1, 4))
    ('1 - 1e-07', '1.000', '0.2500')
    """
    text = _sci(v)
    return magnitude.not_one(v, "1") if v is not None and text == "1.000" and v != 1 else text


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
        return (f"the ceiling ({g})^N is below {magnitude.short(b.tol)} from depth {b.depth_to_vanish}: vanished "
                "there (proved)")
    if b.depth_to_explode is not None:
        return (f"the floor (m|w|)^N is above 1/tol = {magnitude.short(1 / b.tol)} from depth {b.depth_to_explode}: "
                "exploded there (proved)")
    if b.depth_may_explode is not None:
        return (f"the ceiling ({g})^N is above 1/tol = {magnitude.short(1 / b.tol)} from depth {b.depth_may_explode}: "
                "exploding is no longer excluded there, not proved")
    if side(b.factor) is None:
        return (f"the ceiling ({g})^N: {g} is 1 to the {NUMERIC_DIGITS} digits its numeric value is known to, "
                "so no depth at which it crosses tol or 1/tol is proved")
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
        rows = [rf"\gamma = \sup_z \left|\text{{{tex_text(b.activation)}}}'(z)\right| &= {sp.latex(b.gamma)}",
                rf"\gamma \left|w\right| &= {sp.latex(b.gamma)} \cdot {sp.latex(b.weight)} = {sp.latex(b.factor)}"
                rf" \quad \text{{(ceiling; floor {tex_text(sp.sstr(b.floor))}: {tex_text(d.short)})}}"]
        if b.layers is not None and b.factor is not sp.oo:  # no ceiling: no bound above to state
            exact = sp.latex(b.bound) if len(sp.sstr(b.bound)) <= 40 else rf"{sp.latex(b.factor)}^{{{b.layers}}}"
            rows.append(rf"\left(\gamma \left|w\right|\right)^{{{b.layers}}} &= {exact} \approx {_sci(b.bound)}")
        if b.tol is not None:
            name, depth = next(((n, v) for n, v in (("vanished", b.depth_to_vanish), ("exploded", b.depth_to_explode),
                                                     ("may explode", b.depth_may_explode)) if v is not None),
                               ("never crossed", r"\infty"))
            rows.append(rf"N_{{\text{{{name}}}}} &= {depth} \quad \text{{(tolerance }} {sp.latex(b.tol)}\text{{)}}")
        return block(rows, "align*")
    g, times = ("γ", "·") if fmt in ("unicode", "markdown") else ("gamma", "*")
    lines = [f"{b.activation}: {g} = sup|{b.activation}'| = {b.gamma}, |w| = {b.weight}, "
             f"per-layer factor in [{b.floor}, {b.factor}] -> {d.short}", f"  {d.text}"]
    if b.layers is not None:
        exact = sp.sstr(b.bound) if len(sp.sstr(b.bound)) <= 40 else f"({b.factor})^{b.layers}"
        lines.append(f"  bound at depth {b.layers}: ({g}{times}|w|)^{b.layers} = {exact} ~= {_sci(b.bound)}"
                     if b.factor is not sp.oo else f"  no ceiling (sup|{b.activation}'| = oo): no bound above at any depth")
        if d.status is not None:
            lines.append(f"  at depth {b.layers}: {d.status}")
    if b.tol is not None:
        lines.append("  " + depth_note(b, f"{g}{times}|w|"))
    if b.verdict == UNBOUNDED:  # no ceiling: no bound and no crossing depth to state
        lines[2:] = ["  unbounded: no ceiling (sup|φ'| = oo), so no bound at any depth"]
    if fmt == "markdown":
        return "\n".join(["- " + lines[0]] + ["  - " + ln.strip() for ln in lines[1:]])
    return "\n".join(lines)


display.text.register(DepthBound, lambda b: render_bound(b, "text"))
display.markdown.register(DepthBound, lambda b: render_bound(b, "markdown"))


# ----------------------------------------------------------------------------- sweeps: depth x activation


SWEEP_FORMATS = ("text", "markdown", "csv", "json")


def _log10(b: DepthBound) -> float | None:
    """log10 of (γ|w|)^N (:attr:`DepthBound.log10_bound`): no float underflow at any depth, and no rounding to 6
    decimals, which printed (1 − 2.5e-24)^N's log10 −1.1e-24·N as -0.0, as if the ceiling were 1.

    >>> from symvg.symbolic.bounds import depth_bound
    >>> _log10(depth_bound("sigmoid", "3.99999999999999999999999", 2)) < -2e-24
    True
    """
    return b.log10_bound


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
                         "bound": [_cell(b.bound) for b in c], "log10_bound": [_log10(b) for b in c]}
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
    rows = [[str(bs[0].layers)] + [_cell(b.bound) for b in bs] for bs in zip(*columns)]
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


__all__ = ["BOUND_FORMATS", "SWEEP_FORMATS", "approx", "argmax_cell", "bound_to_dict", "depth_note", "render_bound",
           "infimum_to_dict", "render_depth_law", "render_supremum", "render_sweep", "supremum_to_dict", "sweep_to_dict"]
