"""The proof of the floor m = inf|φ'(z)| over the reals, from the supremum's proof table and what it lacks.

On each smooth piece of φ' (the supremum proof's pieces, split where φ' may be undefined), |φ'| is continuous.
Where φ' has a real zero, inf|φ'| = 0 there. Where it has none, φ' keeps one sign, |φ'| = ±φ' is differentiable,
and its infimum over the piece is attained at a critical point (φ'' = 0) or approached at an end (a limit at ±∞,
a one-sided limit, a closed end). The supremum's proof already lists the ends, the kinks, the constant pieces and,
where sup|φ'| is finite, the critical points; this adds the zeros of φ' and, where sup|φ'| = ∞ (the supremum
proof stops at the end that grows), the critical points. The floor is the smallest of those candidates, *proved*
only when every set involved is one SymPy lists exactly: a zero set or a critical set it cannot list, a
transcendental critical equation (its roots are found numerically on a window only), or the time budget spent
leaves the floor at 0, which is always true, and says why.

>>> from symvg.symbolic.supremum import prove_supremum
>>> from symvg.symbolic.parse import z
>>> d = sp.exp(z) + 2
>>> m = prove_infimum(d, prove_supremum(d))
>>> m.value, m.attained, m.proved               # e^z + 2 > 2, approached as z -> -oo
(2, False, True)
>>> d = 3 * z**2 + 1
>>> m = prove_infimum(d, prove_supremum(d))
>>> m.value, m.attained, m.argmin
(1, True, {0})
"""

from __future__ import annotations

from dataclasses import dataclass

import mpmath
import sympy as sp

from symvg.display import Result
from symvg.errors import ProofError
from symvg.symbolic.parse import z
from symvg.symbolic.supremum import (Candidate, Supremum, _OutOfTime, _interior_candidates, _intervals, _key, _pieces,
                                     _short, _singular_points, _time_budget)

__all__ = ["Infimum", "prove_infimum"]


@dataclass(frozen=True)
class Infimum(Result):
    """m = inf|φ'(z)| over the reals, with the evidence: ``candidates`` are the supremum proof's and the ones this
    proof adds (zeros of φ', critical points). ``proved`` is False when the floor could not be proved above 0: then
    ``value`` is 0 (a floor that always holds) and ``why`` says what was missing."""

    value: sp.Expr
    attained: bool | None  # None: m = 0 is approached, and whether φ' also vanishes somewhere was not decided
    proved: bool
    candidates: tuple[Candidate, ...]
    why: str = ""
    searched: tuple[str, ...] = ()  # the sets looked through that held no candidate ("no real zero of φ' on ...")

    @property
    def argmin(self) -> sp.Set:
        """Where |φ'| = m (EmptySet when m is only approached, or not proved)."""
        out: sp.Set = sp.S.EmptySet
        for c in self.candidates:
            if c.attained and self.proved and sp.Abs(c.value) == self.value and not c.reason.endswith("(sign change)"):
                out = out.union(c.where if isinstance(c.where, sp.Set) else sp.FiniteSet(c.where))
        return out

    def explain(self, start: int = 0) -> str:
        """The candidates from ``start`` on (those the supremum's table does not show) and the conclusion."""
        lines = [f"  {c.reason:<22} at {c.where}: |φ'| = {c.value}" + ("" if c.attained else " (approached)")
                 for c in self.candidates[start:]] + [f"  {s}" for s in self.searched]
        if not self.proved:
            lines.append(f"  inf|φ'| >= 0 only: {self.why}")
        elif self.attained and self.argmin is sp.S.EmptySet:  # a zero shown by a sign change: somewhere inside
            inside = next(c.where for c in self.candidates if c.reason.endswith("(sign change)"))
            lines.append(f"  inf|φ'| = 0, attained at a zero of φ' between {inside.start} and {inside.end}")
        elif self.attained:
            lines.append(f"  inf|φ'| = {self.value}, attained on {self.argmin}")
        elif self.attained is None:
            lines.append(f"  inf|φ'| = {self.value}, approached; whether also attained is not decided: {self.why}")
        else:
            lines.append(f"  inf|φ'| = {self.value}, approached, not attained")
        return "\n".join(lines)


def _not_proved(cands: list[Candidate], why: str) -> Infimum:
    return Infimum(sp.Integer(0), False, False, tuple(cands), why)


def _zeros(expr: sp.Expr, part: sp.Set) -> list[Candidate] | str:
    """The real zeros of φ' on ``part`` as candidates (|φ'| = 0 there), or why they cannot be listed."""
    roots = sp.solveset(expr, z, part)
    if roots is sp.S.EmptySet:
        return []
    if isinstance(roots, sp.FiniteSet):
        return [Candidate(p, sp.Integer(0), True, "zero of φ'") for p in roots]
    return f"the real zeros of φ' = {_short(expr)} are not a finite set SymPy can list ({_short(roots)})"


def _added(d: sp.Expr, sup: Supremum, searched: list[str]) -> list[Candidate] | str:
    """The candidates the supremum's proof does not hold (see the module docstring), or why one set is not listed;
    ``searched`` gets a line for each set found empty."""
    out: list[Candidate] = []
    for expr, dom in _pieces(d):
        if isinstance(dom, sp.FiniteSet) or sp.simplify(sp.diff(expr, z)) == 0:
            continue  # a kink's value or a constant piece: already a candidate
        for part in _intervals(dom, _singular_points(expr, dom)):
            zeros = _zeros(expr, part)
            if isinstance(zeros, str):
                return zeros
            if zeros:
                return zeros  # |φ'| = 0 is attained: nothing can be smaller
            searched.append(f"no real zero of φ' on {part}: φ' keeps one sign there")
            if not sup.bounded:
                found, equation = _interior_candidates(expr, part)
                if equation is not None:
                    return (f"the critical points of φ' solve {_short(equation)}, which has no closed form "
                            "(its roots are found on a window only)")
                out += found
                if not found:
                    searched.append(f"no critical point of φ' on {part} (φ'' = {_short(sp.diff(expr, z))} ≠ 0)")
    return out


def _sign_change(expr: sp.Expr, part: sp.Set) -> sp.Interval | None:
    """An interval on which the continuous ``expr`` changes sign, so holds a zero (found on 801 points of
    [-40, 40] in 30-digit mpmath, each sign confirmed at 60 digits and |φ'| > 1e-25), or None.

    >>> _sign_change(z - sp.Rational(1, 3), sp.S.Reals)
    Interval(3/10, 2/5)
    """
    f = sp.lambdify(z, expr, modules="mpmath")
    lo = max(sp.Integer(-40), part.inf) if part.inf.is_finite else sp.Integer(-40)
    hi = min(sp.Integer(40), part.sup) if part.sup.is_finite else sp.Integer(40)
    points = [lo + (hi - lo) * sp.Rational(i, 800) for i in range(1, 800)]
    with mpmath.workdps(30):
        signs = [mpmath.sign(f(mpmath.mpf(sp.N(t, 30)))) for t in points]
    for t0, t1, v0, v1 in zip(points, points[1:], signs, signs[1:]):
        if v0 * v1 < 0:
            with mpmath.workdps(60):  # confirmed where 60 digits leave no doubt: 1 - tanh(36)**2 is noise at 30
                a, b = f(mpmath.mpf(sp.N(t0, 60))), f(mpmath.mpf(sp.N(t1, 60)))
                if a * b < 0 and min(abs(a), abs(b)) > mpmath.mpf("1e-25"):
                    return sp.Interval(t0, t1)
    return None


def _zero_approached(d: sp.Expr, cands: list[Candidate], budget: float | None) -> Infimum:
    """The floor 0, approached (a limit): attained too where φ' has a real zero -- listed by SymPy, or shown by a
    sign change of φ' on a piece, where it is continuous -- not attained where SymPy proves it has none, else
    undecided (``attained`` None). GELU' → 0 as z → -∞ but is also 0 near z = -0.75, where it changes sign.

    >>> from symvg.symbolic.supremum import prove_supremum
    >>> d = z * sp.exp(-z**2)                       # -> 0 at ±oo, and 0 at z = 0
    >>> m = prove_infimum(d, prove_supremum(d))
    >>> m.value, m.attained
    (0, True)
    """
    searched: list[str] = []
    undecided = ""
    try:
        with _time_budget(budget):
            for expr, dom in _pieces(d):
                if isinstance(dom, sp.FiniteSet) or sp.simplify(sp.diff(expr, z)) == 0:
                    continue
                for part in _intervals(dom, _singular_points(expr, dom)):
                    zeros = _zeros(expr, part)
                    if not isinstance(zeros, str) and zeros:
                        return Infimum(sp.Integer(0), True, True, tuple(cands + zeros))
                    if not isinstance(zeros, str):
                        searched.append(f"no real zero of φ' on {part}: 0 is only approached")
                        continue
                    at = _sign_change(expr, part)
                    if at is not None:
                        return Infimum(sp.Integer(0), True, True, tuple(cands + [
                            Candidate(at, sp.Integer(0), True, "zero of φ' (sign change)")]))
                    undecided = zeros
    except _OutOfTime:
        undecided = f"the search for a zero of φ' did not finish within its {budget:.3g} s"
    except (ProofError, NotImplementedError, ValueError, TypeError) as e:
        undecided = f"SymPy could not list the zeros of φ' ({_short(e)})"
    if undecided:
        return Infimum(sp.Integer(0), None, True, tuple(cands), undecided, tuple(searched))
    return Infimum(sp.Integer(0), False, True, tuple(cands), searched=tuple(searched))


def prove_infimum(d: sp.Expr, sup: Supremum, budget: float | None = None) -> Infimum:
    """Prove inf|d(z)| over the reals, given ``sup``, the proof of sup|d| (whose candidates it reuses), within
    ``budget`` seconds (None: no limit). Never raises for a floor it cannot prove: that floor is 0, and says why.

    >>> from symvg.symbolic.supremum import prove_supremum
    >>> d = sp.exp(z)
    >>> prove_infimum(d, prove_supremum(d)).value, prove_infimum(d, prove_supremum(d)).attained   # approached at -oo
    (0, False)
    """
    cands = list(sup.candidates)
    if any(c.value == 0 for c in cands):
        if any(c.value == 0 and c.attained for c in cands):
            return Infimum(sp.Integer(0), True, True, tuple(cands))
        return _zero_approached(d, cands, budget)
    if any(c.reason.endswith("(numeric)") for c in cands):
        return _not_proved(cands, "the critical points of φ' are roots found numerically on a window only")
    if budget is not None and budget <= 0:
        return _not_proved(cands, "the time budget of the proof was spent on the supremum")
    searched: list[str] = []
    try:
        with _time_budget(budget):
            added = _added(d, sup, searched)
    except _OutOfTime:
        return _not_proved(cands, f"the floor's proof did not finish within its {budget:.3g} s")
    except (ProofError, NotImplementedError, ValueError, TypeError) as e:  # a set SymPy cannot list, or compare
        return _not_proved(cands, f"SymPy could not decide it ({_short(e)})")
    if isinstance(added, str):
        return _not_proved(cands, added)
    cands += added
    try:
        keys = [_key(c) for c in cands]
    except ProofError as e:
        return _not_proved(cands, str(e))
    low = min(keys)
    if low == mpmath.inf:
        return _not_proved(cands, "no candidate has a finite |φ'|")
    with mpmath.workdps(40):
        at = [c for c, k in zip(cands, keys) if k - low <= mpmath.mpf("1e-25") * low]  # ties to 25 digits
    if any(sp.simplify(c.value - at[0].value) != 0 for c in at[1:]):
        return _not_proved(cands, "two candidates agree to 25 digits but are not proved equal")
    return Infimum(at[0].value, any(c.attained for c in at), True, tuple(cands), searched=tuple(searched))
