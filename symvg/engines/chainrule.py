"""The structured chain rule as data: one layer's steps, forward and back, which every engine prints.

One job: say once what a layer computes, so that no engine writes the chain rule itself.

    forward   z_k = w_k·h_{k-1} + b_k;  h_k = φ(z_k) (+ h_{k-1} in a residual chain);  φ'_k = φ'(z_k)
    start     δ_N = ∂L/∂h_N, or through the logit δ ← ∂L/∂z_N and φ'_N ← 1, so the walk back is the same
    backward  a_k = δ_k·φ'_k;  g_k = a_k·h_{k-1};  δ_{k-1} = a_k·w_k  (residual: δ_k + a_k·w_k)
    log       the same walk in (log|·|, sign), where products are sums and nothing underflows

A pass is a tuple of :class:`Step` (an assignment ``target = value`` over the symbols below), the way
``sympy.printing`` keeps expressions as data and each target as a small printer: the whole-chain CUDA kernel
and its C twin print the steps with SymPy's C printer (:mod:`symvg.engines.cuda`), the fused numba kernel with
its Python printer (:mod:`symvg.engines.fused_kernel`), the chunked NumPy/CuPy engine as in-place array calls
(:mod:`symvg.engines.chunked`). What φ and φ' are is not here: that is the forms table
(:mod:`symvg.engines.forms`). The mpmath oracle (:mod:`symvg.engines.reference`) keeps its own walk on
purpose: it must be able to catch a mistake in these steps.

>>> for s in backward(residual=False):
...     print(s)
a = delta*dphi   (0 from nonzero factors: underflow)
g = a*hp   (0 from nonzero factors: underflow)
aw = a*w   (0 from nonzero factors: underflow; feeds the layer below only)
delta = aw   (feeds the layer below only)
>>> [f"{s.target} = {s.value}" for s in backward(residual=True)][2:]
['aw = a*w', 'delta = aw + delta']
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

hp, w, b, z, phi, dphi, h = sp.symbols("hp w b z phi dphi h", real=True)
"""Forward: h_{k-1}, w_k, b_k, the pre-activation z_k, φ(z_k), φ'(z_k), and h_k."""
delta, a, g, aw, wd = sp.symbols("delta a g aw wd", real=True)
"""Backward: δ_k (∂L/∂h_k), a_k = δ_k·φ'_k (∂L/∂z_k), g_k = ∂L/∂w_k, a_k·w_k, and w_{k+1}·φ'_k (folded)."""
ld, sd, la, sa, lg, sg, f = sp.symbols("ld sd la sa lg sg f", real=True)
"""The log domain: log|δ|, sign δ, log|a|, sign a, log|g|, sign g, and 1 + w_k·φ'_k (residual)."""


@dataclass(frozen=True)
class Step:
    """``target = value``. ``factors``: the value is their product (where the symbols of ``zero`` are 0), so a 0
    from nonzero factors is an underflow an engine should flag (one with floating-point flags may rely on those
    instead). ``carry``: the value feeds only the layer below, so it is unused after the first layer."""

    target: sp.Symbol
    value: sp.Expr
    factors: tuple[sp.Symbol, ...] = ()
    carry: bool = False
    zero: tuple[sp.Symbol, ...] = ()
    terms: tuple[sp.Expr, ...] = ()

    def underflow(self, exact: bool = True) -> tuple[sp.Boolean, ...]:
        """The conditions that together say this step's 0 is not exact (none where it is not watched): a product
        of nonzero factors that underflowed, or a sum of nonzero ``terms`` that cancelled to 0 (1 + tanh(-40) = 0,
        truly 3.6e-35: a 0 to be checked, not passed on). ``exact=False`` drops the conditions on ``zero``: a 0
        that may be exact, to be checked all the same (z = w·h + b = 0 where b ≠ 0, which w·h = -b may round to).

        >>> forward(False)[0].underflow(exact=False)
        (Eq(z, 0), Ne(w, 0), Ne(hp, 0))
        """
        nonzero = self.factors or self.terms
        if not nonzero:
            return ()
        # a term that is the target (δ ← δ + a·w) is overwritten by then; a 0 from the other, nonzero, term implies it
        return (sp.Eq(self.target, 0), *(sp.Ne(x, 0) for x in nonzero if x != self.target),
                *(sp.Eq(x, 0) for x in self.zero if exact))

    def __str__(self) -> str:
        notes = ["0 from nonzero factors: underflow"] * bool(self.factors) + ["feeds the layer below only"] * self.carry
        return f"{self.target} = {self.value}" + (f"   ({'; '.join(notes)})" if notes else "")


def _product(target: sp.Symbol, x: sp.Symbol, y: sp.Symbol, watch: bool = True, carry: bool = False) -> Step:
    return Step(target, x * y, (x, y) if watch else (), carry)


def forward(residual: bool) -> tuple[Step, ...]:
    """z_k, then h_k from φ(z_k) (``phi``, computed by the forms table with φ'(z_k) as ``dphi``). Where b_k = 0,
    a z_k of 0 from nonzero w_k, h_{k-1} underflowed: φ(0) = 0 would pass it on as exact, and a kink's
    convention (ReLU'(0) = 0) would turn a gradient of 1e-200 into 0."""
    return (Step(z, w * hp + b, (w, hp), zero=(b,)),
            Step(h, hp + phi, terms=(hp, phi)) if residual else Step(h, phi))


def backward(residual: bool) -> tuple[Step, ...]:
    """One layer back: a_k, g_k and δ_{k-1}. In a residual chain δ_{k-1} = δ_k + a_k·w_k keeps δ_k, so a 0
    of a_k·w_k is no underflow of the gradient."""
    return (_product(a, delta, dphi), _product(g, a, hp), _product(aw, a, w, not residual, carry=True),
            Step(delta, delta + aw, carry=True, terms=(delta, aw)) if residual else Step(delta, aw, carry=True))


def folded() -> tuple[tuple[Step, ...], tuple[Step, ...]]:
    """The plain (not residual) walk with w_{k+1}·φ'_k formed on the way forward, while w_{k+1} is read
    anyway: (the forward step that stores it in place of φ'_k, the layer's steps back, from a_k to a_{k-1}).
    The backward walk is then two products per layer and reads per-sample weights once. Algebraically the
    :func:`backward` steps regrouped: a_{k-1} = δ_{k-1}·φ'_{k-1} = a_k·(w_k·φ'_{k-1}) (tested)."""
    return (_product(wd, w, dphi, watch=False),), (_product(g, a, hp), _product(a, a, wd, carry=True))


def start_log() -> tuple[Step, ...]:
    """Into the log domain from δ_N."""
    return Step(ld, sp.log(sp.Abs(delta))), Step(sd, sp.sign(delta))


def backward_log(residual: bool) -> tuple[Step, ...]:
    """One layer back in (log|·|, sign): sums of logs where :func:`backward` multiplies."""
    # 1 + w_k·φ'_k is a sum of the nonzero 1 and w_k·φ'_k: a 0 of it may be a cancellation (w = -1, tanh'(1e-9))
    tail = ((Step(f, 1 + w * dphi, carry=True, terms=(w * dphi,)), Step(ld, ld + sp.log(sp.Abs(f)), carry=True),
             Step(sd, sd * sp.sign(f), carry=True)) if residual else
            (Step(ld, la + sp.log(sp.Abs(w)), carry=True), Step(sd, sa * sp.sign(w), carry=True)))
    return (Step(la, ld + sp.log(sp.Abs(dphi))), Step(sa, sd * sp.sign(dphi)),
            Step(lg, la + sp.log(sp.Abs(hp))), Step(sg, sa * sp.sign(hp)), *tail)


__all__ = ["Step", "a", "aw", "b", "backward", "backward_log", "delta", "dphi", "f", "folded", "forward", "g", "h",
           "hp", "la", "ld", "lg", "phi", "sa", "sd", "sg", "start_log", "w", "wd", "z"]
