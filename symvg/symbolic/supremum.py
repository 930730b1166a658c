"""The proof of how steep an activation can be: γ = sup|φ'(z)| over the reals, with its evidence.

:func:`prove_supremum` works from the derivative itself -- critical points from φ'' = 0, one-sided
limits at every kink, at every point where φ' may be undefined, and at ±∞ -- and returns a
:class:`Supremum` whose ``candidates`` are the proof table a reader can check by hand. A proof runs
under a wall-clock budget (:data:`PROOF_SECONDS`); past it, :class:`~symvg.errors.ProofError`.

>>> s = prove_supremum(z * sp.exp(-z**2))
>>> s.value, s.argmax
(sqrt(2)*exp(-1/2)/2, {-sqrt(2)/2, sqrt(2)/2})
"""

from __future__ import annotations

import ctypes
import math
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import mpmath
import numpy as np
import sympy as sp

from symvg.display import Result
from symvg.errors import ProofError
from symvg.symbolic.parse import z

DIGITS = 30
"""Digits kept for maximisers that are roots of transcendental equations."""

_SCAN = 40
"""Half-width of the finest scan for roots no closed form gives, and of t in the sinh scan (see :func:`_grid`)."""


@dataclass(frozen=True)
class Candidate(Result):
    """One line of the proof table: where |φ'| was looked at, its value, and whether it is attained."""

    where: sp.Basic  # a point, an interval (φ' constant there) or ±oo
    value: sp.Expr
    attained: bool
    reason: str  # "critical point", "constant piece", "limit at -oo", "kink", ...


@dataclass(frozen=True)
class Supremum(Result):
    """γ = sup|φ'(z)| over the reals, with the evidence.

    ``argmax`` is the set where |φ'| = γ (a point, an interval, or EmptySet when γ is only
    approached, e.g. softplus as z → ∞). ``exact`` is False when the maximiser is the root of a
    transcendental ``equation``; then ``value`` is a 30-digit Float. ``value`` is ``oo`` when |φ'|
    has no finite ceiling (``bounded`` is False): then no depth law follows from it.
    """

    value: sp.Expr
    argmax: sp.Set
    attained: bool
    exact: bool
    equation: sp.Eq | None
    candidates: tuple[Candidate, ...]

    @property
    def bounded(self) -> bool:
        """True when γ is finite; False when some candidate shows |φ'| → ∞ (``value`` is ``oo``)."""
        return self.value is not sp.oo

    @property
    def argmax_point(self) -> sp.Expr | None:
        """The maximiser when it is a single point, else None."""
        if isinstance(self.argmax, sp.FiniteSet) and len(self.argmax) == 1:
            return next(iter(self.argmax))
        return None

    def explain(self) -> str:
        """A few lines a reader can check by hand."""
        lines = [f"  {c.reason:<22} at {c.where}: |φ'| = {c.value}" + ("" if c.attained else " (approached)")
                 for c in self.candidates]
        if not self.bounded:
            where = ", ".join(str(c.where) for c in self.candidates if _key(c) == mpmath.inf)
            lines.append(f"  sup|φ'| = oo: unbounded (|φ'| grows without limit at {where}), so no ceiling")
            return "\n".join(lines)
        how = "attained on" if self.attained else "approached, not attained; argmax"
        lines.append(f"  sup|φ'| = {self.value}, {how} {self.argmax}")
        if self.equation is not None:
            lines.append(f"  maximiser solves {self.equation} (no closed form: its roots found by a sign-change search "
                         f"out to |z| ≈ 1e17, each to {DIGITS} digits)")
        return "\n".join(lines)


PROOF_SECONDS = 20.0
"""Time budget of one proof (:func:`prove_supremum`); past it, :class:`~symvg.errors.ProofError`. The refusal
comes within it, the command's start-up included: the proof itself stops :func:`_reserve` earlier."""

STARTUP_SECONDS = 4.0
"""Most of a budget kept back for what comes before and after the proof in one command: Python's start-up and
imports (~1.3 s on this project's 2-core machine, 2.5 s while other work shares it), the parse and its domain
check, the answer. Without it ``symvg bound`` answered a proof out of its 20 s budget after 21 s."""


def _reserve(budget: float) -> float:
    """The seconds of ``budget`` the proof leaves to the rest of the command: STARTUP_SECONDS, at most a quarter.

    >>> _reserve(20.0), _reserve(0.5)
    (4.0, 0.125)
    """
    return min(STARTUP_SECONDS, budget / 4)


class _OutOfTime(BaseException):
    """Internal: raised inside SymPy by the budget's tracer; a BaseException so ``except Exception`` in
    library code does not swallow it. :func:`prove_supremum` turns it into a ProofError."""


@contextmanager
def _time_budget(seconds: float | None) -> Iterator[None]:
    """Stop the Python code run inside after ``seconds`` (wall clock) by raising :class:`_OutOfTime` in it.

    A timer thread raises the exception in this thread (CPython's ``PyThreadState_SetAsyncExc``): it
    lands at the next bytecode boundary, so it stops SymPy mid-call at no cost while it runs, needs no
    signal (works off the main thread and on every OS) and no subprocess. Where that call is missing
    (not CPython) a trace hook checks the clock instead, slower but equivalent.
    """
    if seconds is None:
        yield
        return
    set_async = getattr(getattr(ctypes, "pythonapi", None), "PyThreadState_SetAsyncExc", None)
    if set_async is None:
        with _traced_budget(seconds):
            yield
        return
    target, lock, stop = ctypes.c_ulong(threading.get_ident()), threading.Lock(), threading.Event()
    running = [True]

    def fire() -> None:
        # Raise again every 50 ms until the block is left: SymPy has bare ``except:`` clauses that can
        # swallow one interrupt, and a proof that swallowed it would otherwise run on unbounded.
        if stop.wait(seconds):
            return
        while not stop.is_set():
            with lock:
                if running[0]:
                    set_async(target, ctypes.py_object(_OutOfTime))
            stop.wait(0.05)

    timer = threading.Thread(target=fire, daemon=True)
    timer.start()
    try:
        yield
    finally:
        while True:  # an interrupt may land here too: retry until nothing can arrive any more
            try:
                with lock:
                    running[0] = False
                    set_async(target, None)  # clear one that has not landed: nothing may arrive after this
                break
            except _OutOfTime:
                continue
        stop.set()


def within(seconds: float, f: Callable[[], Any]) -> Any:
    """``f()``, or None where it runs past ``seconds`` (wall clock): stopped as a proof is
    (:func:`_time_budget`). For SymPy work whose time no one can bound in advance.

    >>> def forever():
    ...     while True:
    ...         pass
    >>> within(5.0, lambda: 6 * 7), within(0.05, forever)
    (42, None)
    """
    try:
        with _time_budget(seconds):
            return f()
    except _OutOfTime:
        return None


@contextmanager
def _traced_budget(seconds: float) -> Iterator[None]:
    """The fallback of :func:`_time_budget`: every 1024th Python call reads the clock."""
    end = time.monotonic() + seconds
    previous = sys.gettrace()
    calls = 0

    def tracer(frame, event, arg):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if not calls & 1023 and time.monotonic() > end:
            raise _OutOfTime
        return previous(frame, event, arg) if previous is not None else None

    sys.settrace(tracer)
    try:
        yield
    finally:
        sys.settrace(previous)


def _pieces(d: sp.Expr) -> list[tuple[sp.Expr, sp.Set]]:
    """Split φ' into (smooth expression, set) pieces that cover the reals."""
    pw = sp.piecewise_fold(d.rewrite(sp.Piecewise))
    pairs = pw.as_expr_set_pairs(sp.S.Reals) if isinstance(pw, sp.Piecewise) else [(pw, sp.S.Reals)]
    out = []
    for expr, s in pairs:
        for part in (s.args if isinstance(s, sp.Union) else (s,)):
            if part is not sp.S.EmptySet and not isinstance(part, (sp.Interval, sp.FiniteSet)):
                raise ProofError(f"could not prove sup|φ'|: φ' = {_short(expr)} holds on {_short(part)}, a set "
                                 "SymPy cannot write as intervals")
            if part is not sp.S.EmptySet:
                out.append((expr, part))
    return out


def _magnitude(v: sp.Expr) -> sp.Expr:
    return sp.simplify(sp.Abs(v))


def _real_roots(eq: sp.Expr, lo: sp.Expr, hi: sp.Expr, deep: bool = True) -> list[sp.Float]:
    """Roots of a transcendental ``eq`` on (lo, hi), by sign changes on a grid (:func:`_grid`), then refinement.

    Honest about its limits: a root pair closer than the grid's spacing, or a root beyond |z| = sinh(_SCAN)
    (about 1e17), is not seen; the limits at ±∞ are separate candidates of the proof.

    >>> [float(r) for r in _real_roots((z - 50) * (z - 3e6), -sp.oo, sp.oo)]   # beyond the old [-40, 40]
    [50.0, 3000000.0]
    """
    f = sp.lambdify(z, eq, modules="mpmath")
    grid = _grid(eq, lo, hi, deep=deep)
    sign = _signs(eq, f, grid)
    roots: list[sp.Float] = []
    with mpmath.workdps(DIGITS + 20):
        for i in np.flatnonzero(sign[:-1] * sign[1:] <= 0):  # a change, or a 0, in float64: settled in mpmath
            t0, t1 = mpmath.mpf(grid[i]), mpmath.mpf(grid[i + 1])
            v0, v1 = f(t0), f(t1)
            if v0 == 0:
                roots.append(t0)
            elif v0 * v1 < 0:
                roots.append(mpmath.findroot(f, (t0, t1), solver="anderson"))
        return [sp.Float(r, DIGITS) for r in roots]


def _signs(eq: sp.Expr, f: Callable[[Any], Any], grid: np.ndarray) -> np.ndarray:
    """The sign of ``eq`` at each grid point: float64 where it is finite and not near underflow (a scan of
    tens of thousands of points in mpmath took seconds), mpmath where float64 overflows or loses it."""
    g = sp.lambdify(z, eq, modules=[{"erf": np.vectorize(math.erf, otypes=[float])}, "numpy"])
    with np.errstate(all="ignore"):
        v = np.broadcast_to(np.asarray(g(grid), dtype=float), grid.shape).copy()
    unsure = ~np.isfinite(v) | (np.abs(v) < 1e-280)
    with mpmath.workdps(DIGITS):
        for i in np.flatnonzero(unsure):
            v[i] = float(mpmath.sign(f(mpmath.mpf(grid[i]))))
    return np.sign(v)


def _grid(eq: sp.Expr, lo: sp.Expr, hi: sp.Expr, n: int = 8000, deep: bool = True) -> np.ndarray:
    """The points (lo, hi) is searched at, sorted: n steps over [-_SCAN, _SCAN] (where the catalogue's
    features are); n/2 steps of t over z = sinh(t), t in [-_SCAN, _SCAN] (relative spacing 2 %, out to about
    1e17: a maximiser at z = 100 of z^100·e^-z); and n steps over each of up to 32 windows where an argument
    u(z) of a function (exp, tanh, erf, ...) is within _SCAN of 0 (:func:`_centres`), so a SiLU shifted to
    z = 50 is seen as the catalogue's is (only [-40, 40] was searched: ``(z-50)*sigmoid(z-50)`` was given
    sup|φ'| = 1, not 1.0998, and a false "vanishes")."""
    spans = [(-_SCAN, _SCAN)] + [(c - w, c + w) for c, w in _centres(eq, deep)[:32]]
    pts = np.concatenate([np.linspace(a, b, n + 1) for a, b in spans]
                         + [np.sinh(np.linspace(-_SCAN, _SCAN, n // 2 + 1))])
    low = float(lo) if lo.is_finite else -np.inf
    high = float(hi) if hi.is_finite else np.inf
    pts = np.unique(np.concatenate([pts[(pts >= low) & (pts <= high)], [e for e in (low, high) if np.isfinite(e)]]))
    return pts


def _centres(eq: sp.Expr, deep: bool = True) -> list[tuple[float, float]]:
    """(centre, half-width) of the windows where an argument u(z) of a function in ``eq`` lies within _SCAN of 0,
    widest first: a linear one outside [-_SCAN, _SCAN] or narrower than 2, a polynomial one, and (``deep``) any other,
    whose band is found by the same search. Only linear ones were looked at: a feature of ``z + tanh((z-1009)**2)``
    (sup|φ'| = 2.113 at z = 1009.72) fell between two points of the sinh scan.

    >>> [(round(c, 3), round(w, 3)) for c, w in _centres(sp.tanh((z - 1009)**2))]
    [(1009.0, 6.325)]
    """
    out = set()
    for node in sp.preorder_traversal(eq):
        args = [node.exp] if isinstance(node, sp.Pow) else list(node.args) if isinstance(node, sp.Function) else []
        for u in args:
            if not u.has(z):
                continue
            if not u.is_polynomial(z):
                out |= _band_windows(u) if deep else set()
                continue
            if sp.degree(u, z) < 1:
                continue
            if sp.degree(u, z) > 1:
                out |= _level_windows(sp.Poly(u, z))
                continue
            slope, icpt = (float(c) for c in sp.Poly(u, z).all_coeffs())
            c, w = -icpt / slope, _SCAN / abs(slope)
            if (abs(c) > _SCAN or w < 1) and w < 1e15 and abs(c) < 1e300:  # w < 1: finer than [-40, 40]'s grid
                out.add((c, w))
    return sorted(out, key=lambda cw: -cw[1])


def _band_windows(u: sp.Expr) -> set[tuple[float, float]]:
    """The bounded intervals where |u(z)| <= _SCAN for a non-polynomial u, as (centre, half-width): their ends are
    roots of u ∓ _SCAN, found by the same search (one level deep). ``z + tanh(1000·log(z²+1) - 13800)**2`` has an odd
    wiggle of width ~1 at |z| = 992 (sup|φ'| = 2.55) that the sinh scan stepped over: `bound -w 0.5` said "vanishes".
    Where the search fails (u undefined on part of the line), no window is added."""
    try:
        ends = sorted(float(r) for q in (u - _SCAN, u + _SCAN) for r in _real_roots(q, -sp.oo, sp.oo, deep=False))
        f = sp.lambdify(z, u, modules="mpmath")
        spans: list[list[float]] = []
        with mpmath.workdps(DIGITS):
            for a, b in zip(ends, ends[1:]):
                if b > a and abs(f(mpmath.mpf((a + b) / 2))) <= _SCAN:
                    spans.append([a, b])
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return set()
    return {((a + b) / 2, (b - a) / 2) for a, b in spans[:8]}


def _level_windows(u: sp.Poly) -> set[tuple[float, float]]:
    """The intervals where |u(z)| <= _SCAN, as (centre, half-width): their ends are among the real parts of the
    roots of u ∓ _SCAN and u' (found at 30 digits: (z - 1e6)**2 - 40 loses its roots to cancellation in float64)."""
    if u.degree() > 12:
        return set()
    ends = sorted({float(sp.re(r)) for q in (u - _SCAN, u + _SCAN, u.diff(z)) for r in q.nroots(n=30, maxsteps=200)})
    spans: list[list[float]] = []
    for a, b in zip(ends, ends[1:]):
        if b > a and abs(u.eval(sp.Float((a + b) / 2, DIGITS))) <= _SCAN and abs(a) < 1e300 and abs(b) < 1e300:
            if spans and spans[-1][1] == a:  # split only at a root of u': one window
                spans[-1][1] = b
            else:
                spans.append([a, b])
    return {((a + b) / 2, (b - a) / 2) for a, b in spans}


def _singular_points(expr: sp.Expr, dom: sp.Set) -> set:
    """Points of ``dom`` where ``expr`` may be undefined: zeros of a base raised to a negative or
    fractional power, or of a log's argument (every other function the parser allows is finite on
    the reals). Near them |φ'| may blow up, so they become endpoints with one-sided limits."""
    points: set = set()
    for node in sp.preorder_traversal(expr):
        if isinstance(node, sp.Pow) and node.base.has(z) and not (node.exp.is_Integer and node.exp >= 0):
            arg = node.base
        elif isinstance(node, sp.log) and node.args[0].has(z):
            arg = node.args[0]
        else:
            continue
        roots = sp.solveset(arg, z, dom)
        if roots is sp.S.EmptySet:
            continue
        if not isinstance(roots, sp.FiniteSet):
            raise ProofError(f"could not prove sup|φ'|: the real zeros of {_short(arg)} (where φ' may be "
                             f"undefined) are not a finite set SymPy can list ({_short(roots)})")
        points |= set(roots)
    return points


def _short(e: object, limit: int = 80) -> str:
    s = str(e)
    return s if len(s) <= limit else s[:limit - 3] + "..."


def _intervals(dom: sp.Set, points: set) -> list[sp.Set]:
    """``dom`` with ``points`` removed, as a list of intervals (a FiniteSet dom is returned whole)."""
    if isinstance(dom, sp.FiniteSet) or not points:
        return [dom]
    rest = sp.Complement(dom, sp.FiniteSet(*points))
    return [p for p in (rest.args if isinstance(rest, sp.Union) else (rest,)) if p is not sp.S.EmptySet]


def _end_candidates(expr: sp.Expr, dom: sp.Set) -> list[Candidate]:
    """|φ'| at the ends of an interval piece: a limit at ±∞, the value at a closed end, else a one-sided limit."""
    out = []
    lo, hi = dom.inf, dom.sup
    for end, direction, inside in ((lo, "+", dom.contains(lo) == sp.true), (hi, "-", dom.contains(hi) == sp.true)):
        if end.is_infinite:
            out.append(Candidate(end, _magnitude(sp.limit(expr, z, end)), False, f"limit at {end}"))
        elif inside:
            out.append(Candidate(end, _magnitude(expr.subs(z, end)), True, "kink"))
        else:
            out.append(Candidate(end, _magnitude(sp.limit(expr, z, end, direction)), False,
                                 f"limit at {end}{direction}"))
    return out


def _interior_candidates(expr: sp.Expr, dom: sp.Set) -> tuple[list[Candidate], sp.Eq | None]:
    """|φ'| at the critical points inside an interval piece (φ'' = 0), exactly or as numeric roots."""
    slope = sp.diff(expr, z)
    crit = sp.solveset(slope, z, dom)
    if isinstance(crit, sp.ConditionSet):
        cond = crit.condition
        equation = cond if isinstance(cond, sp.Eq) else sp.Eq(cond, 0)
        return [Candidate(p, sp.Abs(expr.subs(z, p)).evalf(DIGITS), True, "critical point (numeric)")
                for p in _real_roots(equation.lhs - equation.rhs, dom.inf, dom.sup)], equation
    if crit is not sp.S.EmptySet and not isinstance(crit, sp.FiniteSet):
        raise ProofError(f"could not prove sup|φ'|: the critical points of {_short(expr)} are not a finite "
                         f"set ({_short(crit)})")
    return [Candidate(p, _magnitude(expr.subs(z, p)), True, "critical point") for p in crit], None


def _key(c: Candidate) -> mpmath.mpf:
    """A candidate's size for ranking: +inf for an infinite |φ'|; refuses a value with no size.

    An mpf, not a float: its exponent is unbounded, so 1e309 is not ranked ∞ nor 1e-400 as 0.
    """
    v = c.value
    if v in (sp.oo, sp.zoo, -sp.oo) or v.is_infinite:
        return mpmath.inf
    if v.has(sp.nan, sp.AccumBounds) or not v.is_number:
        raise ProofError(f"could not prove sup|φ'|: |φ'| has no definite value at {c.where} ({_short(v)})")
    with mpmath.workdps(DIGITS + 10):
        return mpmath.mpf(sp.Float(v.evalf(DIGITS + 10), DIGITS + 10))


def _unbounded(candidates: list[Candidate]) -> Supremum:
    return Supremum(sp.oo, sp.S.EmptySet, False, True, None, tuple(candidates))


def prove_supremum(d: sp.Expr, budget: float | None = PROOF_SECONDS) -> Supremum:
    """Prove sup|d(z)| over the reals for a derivative ``d`` written in :data:`z`.

    The ends of every piece (limits at ±∞, kinks, points where d is undefined) are examined first,
    so an unbounded d is reported without solving for its critical points. The proof stops with
    :class:`~symvg.errors.ProofError` within ``budget`` seconds (None: no limit).

    >>> prove_supremum(sp.exp(-z**2)).value
    1
    >>> prove_supremum(sp.exp(-z**2)).candidates[0].reason
    'critical point'
    >>> s = prove_supremum(3 * z**2)
    >>> s.value, s.bounded
    (oo, False)
    """
    from sympy.core.parameters import global_parameters

    saved = (global_parameters.evaluate, global_parameters.distribute)
    try:
        with _time_budget(None if budget is None else budget - _reserve(budget)):
            return _prove(d)
    except _OutOfTime:
        # The interrupt may land inside SymPy's own clean-up (an ``evaluate(False)`` block's restore):
        # put back the global switches it would have restored.
        global_parameters.evaluate, global_parameters.distribute = saved
        raise ProofError(f"could not prove sup|φ'| for φ' = {_short(d)} within {budget:g} s "
                         f"(the proof's time budget; it stopped at {budget - _reserve(budget):g} s, leaving the "
                         "rest for the command)") from None
    except RecursionError:
        raise ProofError(f"could not prove sup|φ'| for φ' = {_short(d)}: the expression nests too deeply "
                         "for SymPy") from None


def _prove(d: sp.Expr) -> Supremum:
    candidates: list[Candidate] = []  # in the order of the table: per piece, critical points then ends
    parts: list[tuple[sp.Expr, sp.Set, int]] = []
    for expr, dom in _pieces(d):
        if isinstance(dom, sp.FiniteSet):  # a kink whose derivative value is fixed by convention
            candidates += [Candidate(p, _magnitude(expr.subs(z, p)), True, "kink (convention)") for p in dom]
            continue
        if sp.simplify(sp.diff(expr, z)) == 0:  # constant: its value is the whole story, ends included
            candidates.append(Candidate(dom, _magnitude(expr), True, "constant piece"))
            continue
        for part in _intervals(dom, _singular_points(expr, dom)):
            parts.append((expr, part, len(candidates)))
            candidates += _end_candidates(expr, part)
    if any(_key(c) == mpmath.inf for c in candidates):
        return _unbounded(candidates)
    equation = None
    for expr, part, at in reversed(parts):  # reversed: inserting keeps the earlier positions valid
        found, eq = _interior_candidates(expr, part)
        candidates[at:at] = found
        equation = eq if eq is not None else equation
    key = [_key(c) for c in candidates]
    best = max(key)
    # largest first: where a numeric (Float) value ties others within its digits, the one shown is the largest
    near = [c for k, c in sorted(((k, c) for c, k in zip(candidates, key) if _near(k, best)),
                                 key=lambda kc: kc[0], reverse=True)]
    lead = near[0].value
    for c in near[1:]:  # the largest of the near-ties, decided exactly: 1 ± 8.6e-41 tie to 25 digits
        lead = c.value if _compare(c.value, lead) > 0 else lead
    top = [c for c in near if _compare(c.value, lead) == 0]
    hit = [c for c in top if c.attained]
    argmax: sp.Set = sp.S.EmptySet
    for c in hit:
        argmax = argmax.union(c.where if isinstance(c.where, sp.Set) else sp.FiniteSet(c.where))
    exact = not any(c.reason.endswith("(numeric)") for c in top)
    return Supremum(top[0].value, argmax, bool(hit), exact, equation if not exact else None, tuple(candidates))


def _near(k: mpmath.mpf, best: mpmath.mpf) -> bool:
    """Whether a candidate of size ``k`` is within 25 digits of the best (both finite; relative: 1e-400 and
    √2·1e-400 differ)."""
    with mpmath.workdps(DIGITS + 10):
        return abs(k - best) <= mpmath.mpf("1e-25") * best


def _compare(a: sp.Expr, b: sp.Expr) -> int:
    """The sign of a − b for two candidates' values, exactly: SymPy's evalf keeps the difference's own digits, so
    1 + √2e^(-1/2)·1e-40 and 1 − √2e^(-1/2)·1e-40 are told apart (they tie to 25 digits). A value with a Float (a
    numeric critical point, 30 digits) ties any value within its digits. Refuses (ProofError) what it cannot decide.

    >>> e = sp.sqrt(2) * sp.exp(-sp.Rational(1, 2)) / 10**40
    >>> _compare(1 - e, 1 + e), _compare(sp.sqrt(2) / 2, 1 / sp.sqrt(2))
    (-1, 0)
    """
    if a == b:
        return 0
    if a.is_Rational and b.is_Rational:
        return 1 if a > b else -1
    if a.has(sp.Float) or b.has(sp.Float) or sp.simplify(a - b) == 0:
        return 0
    try:
        gap = (a - b).evalf(DIGITS, strict=True)
    except sp.core.evalf.PrecisionExhausted:
        gap = sp.Integer(0)
    if not gap.is_Float or gap == 0:
        raise ProofError(f"could not prove sup|φ'|: the candidates {_short(a, 40)} and {_short(b, 40)} agree to "
                         f"25 digits and SymPy can neither prove them equal nor tell which is larger")
    return 1 if gap > 0 else -1


__all__ = ["DIGITS", "PROOF_SECONDS", "STARTUP_SECONDS", "Candidate", "Supremum", "prove_supremum", "within"]
