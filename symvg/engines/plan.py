"""What every engine takes: the inputs, validated and broadcast, and a chain's plan (its local pieces).

The engines (:mod:`symvg.engines.numeric`, :mod:`symvg.engines.chunked`, :mod:`symvg.engines.cuda`) and the
reference (:mod:`symvg.engines.reference`) read their arguments through :func:`prepare` (and ``out=``
through :func:`check_out`, the backend through :func:`array_module`), so a shape, a dtype, a NaN or an
unusable backend is refused in one place with one wording. Internal to the engines package: the public
entry is :func:`symvg.engines.numeric.gradients`.

>>> from symvg.symbolic.chain import Chain
>>> inp = prepare(Chain(2, "relu"), [1.0, 2.0, 3.0], 0.0, [0.5, 3.0])
>>> inp.samples, inp.shared_w, inp.B.tolist()
(3, True, [0.0, 0.0])
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import numpy as np
import sympy as sp

from symvg.engines.kernels import Local, local, loss_lambdified
from symvg.errors import BackendUnavailableError, InvalidChainError, InvalidValueError
from symvg.symbolic.chain import Chain, y as y_sym

DTYPES = ("float64", "float32")
BACKENDS = ("numpy", "cupy")


def array_module(backend: str) -> Any:
    """``numpy``, or ``cupy`` imported lazily with a usable GPU; else BackendUnavailableError.

    >>> array_module("numpy").__name__
    'numpy'
    >>> array_module("jax")
    Traceback (most recent call last):
    symvg.errors.InvalidValueError: backend must be one of numpy, cupy, got 'jax'
    """
    if backend not in BACKENDS:
        raise InvalidValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "numpy":
        return np
    try:
        import cupy
    except ImportError:
        raise BackendUnavailableError("backend 'cupy' needs CuPy: pip install symvg[gpu]") from None
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise BackendUnavailableError("backend 'cupy': CuPy is installed but no CUDA device was found")
    except cupy.cuda.runtime.CUDARuntimeError as e:
        raise BackendUnavailableError(f"backend 'cupy': no usable CUDA device ({e})") from None
    return cupy


_KNOWN_DTYPES = {k: np.dtype(name) for name in DTYPES for k in (name, np.dtype(name), np.dtype(name).type)}


def check_dtype(dtype: Any) -> np.dtype:
    """float64 or float32 as a NumPy dtype.

    >>> check_dtype("float32")
    dtype('float32')
    >>> check_dtype("float16")
    Traceback (most recent call last):
    symvg.errors.InvalidValueError: dtype must be one of float64, float32, got 'float16'
    """
    try:
        return _KNOWN_DTYPES[dtype]  # every call on every path asks: np.dtype's .name alone costs µs
    except (KeyError, TypeError):
        pass
    name = np.dtype(dtype).name if isinstance(dtype, (type, np.dtype)) else dtype
    if name not in DTYPES:
        raise InvalidValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return np.dtype(name)


@dataclass(frozen=True)
class Inputs:
    """x, y as (M,) arrays; W, B as (N,) when shared by every sample or (N, M) when per sample."""

    x: np.ndarray
    y: np.ndarray
    W: np.ndarray
    B: np.ndarray
    samples: int

    @property
    def shared_w(self) -> bool:
        return self.W.ndim == 1

    @property
    def shared_b(self) -> bool:
        return self.B.ndim == 1


def _converted(v: Any, what: str, xp: Any, dtype: np.dtype) -> Any:
    """``v`` as an array of ``dtype``; InvalidValueError where that changes a number beyond rounding: a finite
    value that becomes inf (1e200 in float32) or a nonzero one that becomes 0 (1e-300 in float32, which would make
    every gradient through it an exact-looking 0). NaN and inf given as such are left to the finite check."""
    if getattr(v, "dtype", None) == dtype:  # an array already of dtype: nothing to convert or lose
        return xp.asarray(v)
    with np.errstate(over="ignore", under="ignore"):
        a = xp.asarray(v, dtype=dtype)
        src = v if hasattr(v, "dtype") and hasattr(v, "shape") else np.asarray(v)
        if src.dtype == a.dtype or src.dtype.kind not in "fiu" or a.dtype.itemsize >= src.dtype.itemsize:
            return a  # nothing a narrower dtype could lose
        src = xp.asarray(src)
        info = np.finfo(dtype)
        for lost, why in (((a == 0) & (src != 0), f"rounds to 0 in {dtype.name} (its smallest subnormal is "
                                                  f"{float(info.smallest_subnormal):.3g})"),
                          (xp.isinf(a) & xp.isfinite(src), f"is beyond {dtype.name}'s range (±{float(info.max):.3g})")):
            if bool(lost.any()):
                raise InvalidValueError(f"{what}: {float(src[lost].ravel()[0]):.6g} {why}; use dtype float64, or "
                                        "scale the inputs")
    return a


def _layered(v: Any, n: int, what: str, xp: Any, dtype: np.dtype) -> Any:
    a = _converted(v, what, xp, dtype)
    if a.ndim == 0:
        a = xp.full((n,), a, dtype=dtype)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim not in (1, 2) or a.shape[0] != n:
        raise InvalidValueError(f"{what} must have shape ({n},) or ({n}, M), got {tuple(a.shape)}")
    return a


def prepare(chain: Chain, x: Any, y: Any, weights: Any, biases: Any = None,
            xp: Any = np, dtype: Any = "float64", check_finite: bool = True) -> Inputs:
    """Validate and broadcast the inputs (see :class:`Inputs`); M is the broadcast sample count.

    ``check_finite=False`` leaves the NaN/inf check (a full read of W and B) to the caller: the fused
    kernel does it on the fly, in the pass it makes anyway.
    """
    dt = check_dtype(dtype)
    n = chain.depth
    W = _layered(weights, n, "weights", xp, dt)
    if biases is None:
        B = xp.zeros((n,), dtype=dt)
    else:
        B = _layered(biases, n, "biases", xp, dt)
        if not chain.bias and bool(xp.any(B != 0)):
            raise InvalidValueError("this chain has bias=False, but nonzero biases were given")
    xs, ys = _converted(x, "x", xp, dt), _converted(y, "y", xp, dt)
    chain.check_labels(ys)  # bce: y in [0, 1]
    sizes = [a.shape[-1] for a in (W, B) if a.ndim == 2] + [a.size for a in (xs, ys) if a.ndim]
    if xs.ndim > 1 or ys.ndim > 1:
        raise InvalidValueError(f"x and y must be scalars or 1-D arrays of samples, got shapes {xs.shape}, {ys.shape}")
    m = max(sizes, default=1)
    if any(s not in (1, m) for s in sizes):
        raise InvalidValueError(f"sample counts do not broadcast: {sorted(set(sizes))}")
    # broadcast only what needs it: a broadcast view is read-only, and the fused kernel is compiled
    # for writable arrays (a read-only one would cost a second compilation)
    xs, ys = (a if a.shape == (m,) else xp.broadcast_to(a, (m,)) for a in (xs, ys))
    if W.ndim == 2 and W.shape[1] != m:
        W = xp.broadcast_to(W, (n, m))
    if B.ndim == 2 and B.shape[1] != m:
        B = xp.broadcast_to(B, (n, m))
    inp = Inputs(xs, ys, W, B, m)
    if check_finite:
        check_finite_inputs(inp, xp)
    return inp


def check_finite_inputs(inp: Inputs, xp: Any = np) -> None:
    """InvalidValueError naming the first of x, y, weights, biases that holds a NaN or an inf."""
    for what, a in (("x", inp.x), ("y", inp.y), ("weights", inp.W), ("biases", inp.B)):
        # A sum is finite only if every term is (inf, NaN propagate): one read pass, no temporaries.
        # A finite array whose sum overflows gets the exact elementwise check.
        with np.errstate(all="ignore"):
            ok = bool(xp.isfinite(a.sum())) or bool(xp.all(xp.isfinite(a)))
        if not ok:
            raise InvalidValueError(f"{what} must be finite numbers (found NaN or inf)")


def check_out(out: Any, inp: Inputs, shape: tuple[int, int], dtype: np.dtype, xp: Any, log: bool) -> None:
    """InvalidValueError unless ``out`` can take the (N, M) result: the array type, shape, dtype and layout
    the engines write, and no overlap with the inputs they read."""
    if log:
        raise InvalidValueError("out= takes the direct gradients; log=True returns two arrays (log|g|, sign)")
    if not isinstance(out, xp.ndarray):
        raise InvalidValueError(f"out must be a {xp.__name__} array, got {type(out).__name__}")
    if out.shape != shape or out.dtype != dtype:
        raise InvalidValueError(f"out must have shape {shape} and dtype {dtype.name}, got {out.shape} {out.dtype.name}")
    flags = out.flags  # CuPy's flags have no writeable or aligned: its arrays always are
    if not (flags.c_contiguous and getattr(flags, "writeable", True) and getattr(flags, "aligned", True)):
        raise InvalidValueError("out must be C-contiguous, aligned and writable")
    if any(xp.may_share_memory(out, a) for a in (inp.x, inp.y, inp.W, inp.B)):
        raise InvalidValueError("out must not overlap x, y, weights or biases: they are read while it is written")


@dataclass(frozen=True)
class Plan:
    """A chain's compiled pieces: one :class:`~symvg.engines.kernels.Local` per layer, ∂L/∂h_N(h, y), and
    ∂L/∂z_N(z, y) where the loss is taken through the logit (:func:`symvg.engines.kernels.loss_form`: BCE)."""

    chain: Chain
    locals: tuple[Local, ...]
    dloss: Callable[[Any, Any], Any]
    dz: Callable[[Any, Any], Any] | None = None


@lru_cache(maxsize=64)
def plan(chain: Chain) -> Plan:
    """Derive the local pieces once per distinct activation (cached), lambdify ∂L/∂h_N."""
    if not isinstance(chain, Chain):
        raise InvalidChainError(f"need a Chain, got {type(chain).__name__}")
    locs = tuple(local(a) for a in chain.activations)
    hN = chain.h(chain.depth)
    dl = sp.lambdify((hN, y_sym), chain.dloss(), modules="numpy")
    return Plan(chain, locs, dl, loss_lambdified(chain.activations[-1], chain.loss, chain.residual))


__all__ = ["BACKENDS", "DTYPES", "array_module", "check_dtype"]
