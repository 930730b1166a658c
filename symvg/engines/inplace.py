"""The NumPy/CuPy printer of :class:`symvg.engines.forms.Forms`: a list of in-place array calls (``out=``).

One job: turn straight-line forms into ``kernel(zbuf, hout, dout)`` with no array allocated per call, as fast as
the hand-written kernels it replaced (``lambdify``'s code allocates a fresh array per operation). It prints the
small language the table uses -- sums, products (a negative power becomes a division), squares, ``exp``, :class:`~symvg.engines.forms.expneg`, ``tanh``, ``Abs`` -- and raises
:class:`NotImplementedError` on anything else (the generic kind goes through ``lambdify``).
Intermediates go into zbuf once z is dead, and into hout or dout until φ or φ' is written there, so the table's
forms need no scratch buffer at all, as the hand-written kernels did not (:func:`_allocate`); any more would live
in buffers kept per thread, shape and dtype.

>>> import numpy as np
>>> from symvg.engines.forms import ARRAY
>>> zb, h, d = np.array([-1.0, 0.0, 30.0]), np.empty(3), np.empty(3)
>>> inplace(ARRAY["tanh"], np)(zb.copy(), h, d)   # the copy: zbuf is scratch
>>> bool(np.allclose(h, np.tanh(zb)) and np.allclose(d, np.cosh(zb) ** -2.0, rtol=1e-13, atol=0))
True
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import sympy as sp

from symvg.engines import chainrule as cr
from symvg.engines.forms import Forms, expneg
from symvg.symbolic.parse import z

_scratch = threading.local()
_FUNCS = {sp.exp: "exp", expneg: "exp", sp.tanh: "tanh", sp.Abs: "abs"}
_BUFFERS = ("z", "h", "d")  # the kernel's arguments, then scratch t0, t1, …


class _Printer:
    """Forms as ops ``(xp function name, arguments, value)``: each op defines a new value (an int; 0 is z), each
    argument a value or a number."""

    def __init__(self) -> None:
        self.ops: list[tuple[str, tuple, int]] = []
        self.of: dict[sp.Expr, int] = {z: 0}

    def new(self, name: str, args: tuple) -> int:
        self.ops.append((name, args, len(self.ops) + 1))
        return len(self.ops)

    def value(self, e: sp.Expr) -> Any:
        if e.is_Number:
            return float(e)
        if e in self.of:
            return self.of[e]
        if e.is_Add or e.is_Mul:
            return self._fold(e)
        if e.is_Pow and e.exp == 2:
            base = self.value(e.base)
            return self.new("multiply", (base, base))
        if e.is_Pow and e.exp.is_Integer and e.exp < 0:
            return self._fold(sp.Mul(1, e, evaluate=False))
        if e.func in _FUNCS and len(e.args) == 1:
            return self.new(_FUNCS[e.func], (self.value(e.args[0]),))
        raise NotImplementedError(f"no in-place form for {e}")

    def _fold(self, e: sp.Expr) -> int:
        # the non-constant terms (numerators) left to right, then a division by the denominator, then the
        # constant: 4e/(1+e)² is e / ((1+e)·(1+e)) · 4, the operations of the kernel this printer replaced
        op, unit = ("add", 0.0) if e.is_Add else ("multiply", 1.0)
        neg = [] if e.is_Add else [a for a in e.args if a.is_Pow and a.exp.is_Integer and a.exp < 0]
        args = [a for a in e.args if a not in neg]
        c = float(sum(a for a in args if a.is_Number) if e.is_Add else sp.Mul(*(a for a in args if a.is_Number)))
        rest = [a for a in args if not a.is_Number]
        acc, c = (self.value(rest[0]), c) if rest else (c, unit)
        for t in rest[1:]:
            acc = self.new(op, (acc, self.value(t)))
        if neg:
            acc = self.new("divide", (acc, self.value(sp.Mul(*(a.base ** -a.exp for a in neg)))))
        return self.new(op, (acc, c)) if c != unit else acc


def _allocate(ops: list, vh: int, vd: int, keep_z: bool) -> tuple[list, int]:
    """Each value a buffer, as few as possible: a value may take an argument's buffer where that argument dies,
    z's once z is dead (unless ``keep_z``), h's or d's until φ or φ' is written there; else a scratch one.
    Returns the ops with buffer indices (0 z, 1 h, 2 d, 3… scratch) and the number of scratch buffers."""
    end = len(ops) + 1
    last = {0: end if keep_z else 0, vh: end, vd: end}
    for i, (_, args, out) in enumerate(ops, 1):
        for a in args:
            if isinstance(a, int):
                last[a] = max(last.get(a, 0), i) if a not in (vh, vd) else end
    until = {1: vh, 2: vd}  # h and d are free for a value that dies by the op writing φ (φ')
    held: dict[int, int] = {0: 0}
    placed, out_ops = {0: 0}, []
    for i, (name, args, out) in enumerate(ops, 1):
        if out in (vh, vd):
            buf = 1 if out == vh else 2
        else:
            def free(b: int) -> bool:
                return last.get(held.get(b, -1), 0) <= i and (b not in until or last.get(out, 0) <= until[b])
            dying = [placed[a] for a in args if isinstance(a, int) and last.get(a, 0) <= i]
            buf = next((b for b in [*dying, 0, 1, 2, *range(3, len(held) + 3)] if free(b)), None)
            buf = max(*held, 2) + 1 if buf is None else buf
        held[buf], placed[out] = out, buf
        out_ops.append((name, tuple(placed[a] if isinstance(a, int) else a for a in args), buf))
    return out_ops, max(0, max(held) - 2)


def inplace(forms: Forms, xp: Any, keep_z: bool = False) -> Callable[[Any, Any, Any], None]:
    """``kernel(zbuf, hout, dout)``: hout ← φ(z), dout ← φ'(z), by ``forms`` printed as ``xp`` calls; zbuf is
    scratch afterwards unless ``keep_z``."""
    p = _Printer()
    for sym, expr in forms.written_out():
        p.of[sym] = p.value(expr)
    vh = p.value(forms.phi)
    if not isinstance(vh, int) or vh == 0:
        vh = p.new("copy", (vh,))
    vd = p.value(forms.dphi)
    if not isinstance(vd, int) or vd in (0, vh):
        vd = p.new("copy", (vd,))
    ops, temps = _allocate(p.ops, vh, vd, keep_z)
    calls = [_call(xp, *op) for op in ops]

    def kernel(zb: Any, hout: Any, dout: Any) -> None:
        bufs = [zb, hout, dout, *_buffers(xp, zb, temps)] if temps else [zb, hout, dout]
        for f in calls:
            f(bufs)
    return kernel


def _call(xp: Any, name: str, args: tuple, out: int) -> Callable[[list], None]:
    """One op as a call on the list of buffers."""
    if name == "copy":
        (a,) = args
        return (lambda B: B[out].__setitem__(Ellipsis, B[a])) if isinstance(a, int) else (
            lambda B: B[out].fill(a))
    f = getattr(xp, name)
    if len(args) == 1:
        (a,) = args
        return lambda B: f(B[a], out=B[out])
    a, b = args
    if isinstance(a, int) and isinstance(b, int):
        return lambda B: f(B[a], B[b], out=B[out])
    if isinstance(a, int):
        return lambda B: f(B[a], b, out=B[out])
    return lambda B: f(a, B[b], out=B[out])


def _buffers(xp: Any, like: Any, n: int) -> list:
    """``n`` scratch arrays shaped like ``like``, this thread's, reused from call to call."""
    key = (xp.__name__, like.shape, like.dtype.str)
    cache = _scratch.__dict__.setdefault("bufs", {})
    bufs = cache.get(key)
    if bufs is None or len(bufs) < n:
        bufs = cache[key] = [xp.empty_like(like) for _ in range(n)]
    return bufs


# ----------------------------------------------------------------------------- the chain rule's steps

_UFUNCS = {sp.Add: "add", sp.Mul: "multiply", sp.sign: "sign", sp.Abs: "abs", sp.log: "log"}
MAY_BE_SCALAR = frozenset({cr.w, cr.b})
"""A layer's w_k and b_k: one number where they are shared, so what is computed of them alone is small."""


def _buffer(e: sp.Expr, where: dict) -> str:
    return where.get(e, str(e))


def _operand(e: sp.Expr, where: dict) -> Any:
    """A step's operand: a float, a buffer's name, or a function of the buffers (computed by allocation)."""
    if e.is_Number:
        return float(e)
    if e.is_Symbol:
        return _buffer(e, where)
    return _ufunc_call(_UFUNCS[e.func], [_operand(a, where) for a in e.args])


def _getter(a: Any) -> Callable[[Any, dict], Any]:
    """An operand as ``get(xp, env)``, decided once: the per-layer loop of a deep chain calls these 10^6 times."""
    if isinstance(a, float):
        return lambda xp, env: a
    if isinstance(a, str):
        return lambda xp, env: env[a]
    return a


def _ufunc_call(name: str, args: list, out: str | None = None) -> Callable[[Any, dict], Any]:
    """``call(xp, env)``: ``xp.<name>`` of the operands (an n-ary sum or product left to right), into the buffer
    ``out`` where given, else by allocation."""
    gets = [_getter(a) for a in args]
    while len(gets) > 2:
        gets = [_ufunc_call(name, gets[:2]), *gets[2:]]
    if len(gets) == 1:
        (g0,) = gets
        if out is None:
            return lambda xp, env: getattr(xp, name)(g0(xp, env))
        return lambda xp, env: getattr(xp, name)(g0(xp, env), out=env[out])
    g0, g1 = gets
    if out is None:
        return lambda xp, env: getattr(xp, name)(g0(xp, env), g1(xp, env))
    return lambda xp, env: getattr(xp, name)(g0(xp, env), g1(xp, env), out=env[out])


def _emit(e: sp.Expr, out: str, where: dict, ops: list) -> None:
    """Ops computing ``e`` into the buffer ``out``: an argument that is itself an operation goes into ``out`` first
    where nothing else in ``e`` reads ``out`` and it involves a whole buffer (not just w or b); else it is computed
    by allocation, as a small or rare value may be."""
    if e.is_Symbol:
        if _buffer(e, where) != out:
            ops.append(("copy", (_buffer(e, where),), out))
        return
    if e.func not in _UFUNCS:
        raise NotImplementedError(f"no array form for a step's {e.func}")
    args, done = list(e.args), None
    for i, a in enumerate(args):
        reads = {_buffer(s, where) for j, b in enumerate(args) if j != i for s in b.free_symbols}
        if done is None and not (a.is_Symbol or a.is_Number) and out not in reads and a.free_symbols - MAY_BE_SCALAR:
            _emit(a, out, where, ops)
            done = i
    ops.append((_UFUNCS[e.func], tuple(out if i == done else _operand(a, where) for i, a in enumerate(args)), out))


def array_steps(steps: tuple, where: dict | None = None) -> Callable[[Any, dict], None]:
    """``run(xp, env)``: a pass's steps (:mod:`symvg.engines.chainrule`) as ``xp`` calls with ``out=``, on the
    arrays ``env`` names. ``where`` gives the buffer a symbol lives in (by its name in ``env``; default its own
    name): a value aliased to an operand's buffer is computed in place, and a step whose value already is in its
    target's buffer is no call at all.

    >>> import numpy as np
    >>> from symvg.engines import chainrule as cr
    >>> run = array_steps(cr.backward(residual=False), {cr.a: "delta", cr.aw: "delta"})
    >>> env = {"delta": np.array([2.0]), "dphi": np.array([0.25]), "hp": np.array([3.0]), "w": 4.0,
    ...        "g": np.empty(1)}
    >>> run(np, env)
    >>> env["g"].tolist(), env["delta"].tolist()   # g = δ·φ'·h, δ ← δ·φ'·w
    ([1.5], [2.0])
    """
    where = where or {}
    ops: list = []
    for s in steps:
        _emit(s.value, _buffer(s.target, where), where, ops)
    calls = [_step_call(*op) for op in ops]

    def run(xp: Any, env: dict) -> None:
        for c in calls:
            c(xp, env)
    return run


def array_value(e: sp.Expr) -> Callable[[Any, dict], Any]:
    """``value(xp, env)``: ``e`` over the arrays ``env`` names, computed by allocation (a step's value needed once,
    such as z_N recomputed for the loss)."""
    v = _operand(e, {})
    return v if callable(v) else (lambda xp, env: env[v] if isinstance(v, str) else v)


def _step_call(name: str, args: tuple, out: str) -> Callable[[Any, dict], None]:
    if name == "copy":
        (a,) = args
        return lambda xp, env: env[out].__setitem__(Ellipsis, env[a])
    return _ufunc_call(name, list(args), out)


__all__ = ["MAY_BE_SCALAR", "array_steps", "array_value", "inplace"]
