"""matplotlib views: the gradient bound against depth, φ' with its supremum, the order/chaos diagram.

Every number plotted comes from elsewhere: (γ|w|)^k from :func:`symvg.symbolic.bounds.depth_bound`, γ and its
argmax from the activation catalogue, dtype limits from ``numpy.finfo``, χ1 from
:func:`symvg.theory.meanfield.phase_diagram`, sampled gradients from :mod:`symvg.engines.sampling`.
matplotlib is imported only inside these functions, and figures are built with ``matplotlib.figure.Figure``
directly (no pyplot, no global backend switch: safe inside Jupyter).
Each function returns the Figure; :func:`save` writes it atomically.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, Union

import numpy as np
import sympy as sp

from symvg.symbolic.activations import Activation, get
from symvg.symbolic.parse import z
from symvg.atomic import write_atomic
from symvg.errors import BackendUnavailableError, InvalidValueError
from symvg.exact import to_rational
from symvg import magnitude
from symvg.magnitude import short

FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}
DTYPES = ("float32", "float64")

GRADIENTS_XLABEL = "layers back-propagated through, k"
GRADIENTS_YLABEL = "ceiling (γ|w|)^k (lines); sampled median |∂L/∂w| (dots)"
DERIVATIVES_XLABEL = "z"
DERIVATIVES_YLABEL = "φ'(z)"
PHASE_XLABEL = "σ_w² (weight variance)"
PHASE_YLABEL = "σ_b² (bias variance)"

MAX_PLOT_LAYERS = 5_000
"""Deepest curve drawn (float64 cannot show smaller values than 4.9e-324 anyway)."""

Samples = Union[int, Mapping[str, Sequence[float]], Callable[[Any], Any], None]


def _figure(**kwargs: Any) -> Any:
    """A bare matplotlib Figure, or a clear error naming the extra to install."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise BackendUnavailableError("plotting needs matplotlib: pip install symvg[plot]") from None
    return Figure(**kwargs)


def _positive_int(value: Any, what: str, most: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise InvalidValueError(f"{what} must be an integer in 1..{most}, got {value!r}")
    return value


def _activations(names: Sequence[str | Activation] | str) -> list[Activation]:
    names = [names] if isinstance(names, (str, Activation)) else list(names)
    if not names:
        raise InvalidValueError("give at least one activation")
    return [get(n) for n in names]


def dtype_limits(dtype: str) -> tuple[float, float]:
    """(smallest normal, smallest subnormal) of a float dtype, from ``numpy.finfo``.

    >>> ["%.4g" % v for v in dtype_limits("float32")]
    ['1.175e-38', '1.401e-45']
    """
    fi = np.finfo(np.dtype(dtype))
    return float(fi.tiny), float(fi.smallest_subnormal)


def bound_curve(activation: str | Activation, weight: Any, layers: int) -> tuple[np.ndarray, np.ndarray]:
    """k = 1..layers and (γ|w|)^k as floats, from :func:`symvg.symbolic.bounds.depth_bound`'s log rate.

    Values below float64's range come out as 0 (and are not drawn on a log axis).

    >>> k, b = bound_curve("sigmoid", 1, 3)
    >>> k.tolist(), b.round(12).tolist()
    ([1, 2, 3], [0.25, 0.0625, 0.015625])
    """
    from symvg.symbolic.bounds import depth_bound

    db = depth_bound(activation, weight)
    k = np.arange(1, layers + 1)
    if db.factor is sp.oo:  # not a float overflow: there is no ceiling at all
        raise InvalidValueError(f"{db.activation}: sup|φ'| is unbounded, so there is no ceiling (γ|w|)^k to plot")
    if db.factor == 0:
        return k, np.zeros(layers)
    with np.errstate(under="ignore", over="ignore"):
        b = np.exp(db.log_rate * k)
    if not np.isfinite(b).all():  # a log axis cannot draw inf: say where the curve leaves float64
        first = int(k[~np.isfinite(b)][0])
        raise InvalidValueError(f"(γ|w|)^k for {db.activation} at |w| = {short(db.weight)} passes float64's largest "
                                f"value from depth {first}: too large to plot (symvg sweep prints it in log10)")
    return k, b


def _sampled_medians(act: Activation, layers: int, weight: Any, samples: Samples, seed: int) -> np.ndarray | None:
    """Median |dL/dw_i| per layer, indexed by layers back-propagated through (N - i + 1); None if unavailable."""
    if samples is None:
        return None
    if isinstance(samples, Mapping):
        got = samples.get(act.name, samples.get(act.label))
        return None if got is None else np.asarray(got, dtype=float)
    from symvg.symbolic.chain import Chain

    chain = Chain(layers, act)
    if callable(samples):
        stats = samples(chain)
    else:
        from symvg.engines.sampling import sample

        stats = sample(chain, samples=samples, seed=seed)
    rows = stats.as_dict()["layers"] if hasattr(stats, "as_dict") else stats
    med = np.array([float(r["median_abs"]) for r in rows])
    return med[::-1]  # layer N is 1 layer from the loss, layer 1 is N


LINESTYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def _why_below(acts: Sequence[Activation], weight: Any, medians: Mapping[str, np.ndarray]) -> list[str]:
    """Why an activation's sampled median ends below one with a *lower* ceiling: said from its proved floor.

    The ceiling γ|w| is the best case (every z at the argmax of |φ'|); a random chain's typical layer sits
    elsewhere, down to the floor, so a higher ceiling does not mean a larger typical gradient.
    """
    from symvg.symbolic.bounds import floor_cause

    w = _weight(weight)
    notes = []
    for a in acts:
        for b in acts:
            ma, mb = medians.get(a.name), medians.get(b.name)
            if a is b or ma is None or mb is None or not bool(a.gamma > b.gamma):
                continue
            if 0 < ma[-1] < mb[-1]:
                notes.append(f"{a.name}'s median falls below {b.name}'s although its ceiling γ|w| "
                             f"{_short(a.gamma * w)} is higher: in a random chain many layers sit where "
                             f"{floor_cause(a)}, far below the ceiling, which counts only the best case.")
                break
    return notes


def _draw_medians(ax: Any, a: Activation, med: np.ndarray, marker: str, color: Any, notes: list[str]) -> float:
    """Sampled medians as dots in the colour of their ceiling; returns the lowest positive one drawn."""
    zero = np.flatnonzero(med == 0)
    if zero.size:
        notes.append(f"{a.name}'s median is 0 from k = {zero[0] + 1}: more than half the sampled chains "
                     "pass through a unit inactive for that input, which blocks the path.")
    ax.plot(np.arange(1, med.size + 1), np.where(med > 0, med, np.nan), marker,
            ms=3.5, mfc="none", color=color, alpha=0.8, label=f"{a.label}: sampled median, w, b, x ~ N(0, 1)")
    return float(med[med > 0].min()) if (med > 0).any() else math.inf


def _draw_dtype_limits(ax: Any, dtypes: Sequence[str] | str, lowest: float) -> None:
    """Where float32/float64 underflow; ``"auto"`` draws only limits within 10^6 of the lowest curve."""
    chosen = DTYPES if dtypes == "auto" else ((dtypes,) if isinstance(dtypes, str) else tuple(dtypes))
    for dt, style in zip(chosen, (":", "-.", "--")):
        tiny, sub = dtype_limits(dt)
        for value, what in ((tiny, "smallest normal"), (sub, "smallest subnormal")):
            if dtypes != "auto" or value >= lowest * 1e-6:
                ax.axhline(value, color="grey", ls=style, lw=1, label=f"{dt} {what} {value:.3g}")


def plot_gradients(layers: int = 30, activations: Sequence[str | Activation] | str = ("sigmoid", "tanh", "relu",
                   "leaky_relu"), weight: Any = 1, dtypes: Sequence[str] | str = "auto", samples: Samples = None,
                   seed: int = 0, envelope: bool = True) -> Any:
    """The ceiling (γ|w|)^k against k on a log axis, one line per activation, each labelled with its verdict.

    Also: the 1/4^k envelope (sigmoid with |w| = 1), horizontal lines where float32/float64
    underflow (``dtypes="auto"`` draws only the limits the curves come within 10^6 of, so a short
    plot is not squashed; pass a tuple to choose), and, when ``samples`` is given, median sampled
    |dL/dw| per layer (an int uses :func:`symvg.engines.sampling.sample`; a callable gets the
    Chain; a mapping gives medians per activation name). Lines that coincide (tanh, ReLU and leaky
    ReLU all have ceiling 1 at |w| = 1) differ in style, width and staggered markers; the legend sits
    outside the axes, and the caption below says what the dots are and why one activation's typical
    gradient can fall below another's with a lower ceiling.

    >>> fig = plot_gradients(layers=5, activations=("sigmoid", "relu"))
    >>> ax = fig.axes[0]
    >>> ax.get_yscale(), ax.get_xlabel() == GRADIENTS_XLABEL
    ('log', True)
    """
    layers = _positive_int(layers, "layers", MAX_PLOT_LAYERS)
    acts = _activations(activations)
    _weight(weight)  # a bad weight is refused before any drawing
    fig = _figure(figsize=(12.0, 5.8), layout="constrained")
    ax = fig.add_subplot()
    notes: list[str] = []
    lowest, medians = _draw_ceilings(ax, acts, weight, layers, samples, seed, notes)
    if envelope:
        k, b = bound_curve("sigmoid", 1, layers)
        ax.plot(k, np.where(b > 0, b, np.nan), "k--", lw=1, label="envelope 1/4^k (sigmoid, |w| = 1)")
        lowest = min(lowest, float(b[b > 0].min()) if (b > 0).any() else lowest)
    _draw_dtype_limits(ax, dtypes, lowest)
    w = _weight(weight)
    ax.set_yscale("log")
    ax.set_xlabel(GRADIENTS_XLABEL)
    ax.set_ylabel(GRADIENTS_YLABEL)
    ax.set_title(f"Why gradients vanish: proved ceilings at |w| = {short(w)}")
    ax.grid(True, which="major", alpha=0.3)
    # A figure legend "outside" is placed by the constrained layout itself: beside the data, and the
    # same on every draw (an axes legend anchored outside moves a little each time the layout reruns).
    fig.legend(fontsize=8, loc="outside right upper")
    if medians:
        notes.insert(0, f"Dots: median |∂L/∂w| of {'given' if isinstance(samples, Mapping) else 'sampled'} random chains with "
                        f"w, b, x ~ N(0, 1), not |w| = {short(w)}, so they need not lie under the lines.")
        notes[1:1] = _why_below(acts, weight, medians)
    if notes:
        fig.supxlabel("\n".join(textwrap.fill(t, 180) for t in notes), fontsize=8, ha="left", x=0.01)
    fig.draw_without_rendering()   # settle the layout once, so every save of this figure is byte-identical
    return fig


def _draw_ceilings(ax: Any, acts: Sequence[Activation], weight: Any, layers: int, samples: Samples, seed: int,
                   notes: list[str]) -> tuple[float, dict[str, np.ndarray]]:
    """One ceiling line per activation (and its sampled medians): the lowest value drawn, the medians."""
    from symvg.symbolic.bounds import depth_bound

    lowest = 1.0
    every = max(1, layers // 8)
    medians: dict[str, np.ndarray] = {}
    w = _weight(weight)
    for n, a in enumerate(acts):
        k, b = bound_curve(a, weight, layers)
        verdict = depth_bound(a, weight).decision
        # Coinciding lines stay visible: later ones are thinner, dashed differently, and their markers
        # are staggered along k so no two sit on the same point.
        style = dict(ls=LINESTYLES[n % len(LINESTYLES)], marker=MARKERS[n % len(MARKERS)], ms=5,
                     markevery=(n % every, every), lw=1.2 + 1.2 * (len(acts) - 1 - n))
        line, = ax.plot(k, np.where(b > 0, b, np.nan), **style,
                        label=f"{a.label}: γ|w| {_short(a.gamma * w)}, ceiling ({verdict.short})")
        positive = b[b > 0]
        lowest = min(lowest, float(positive.min()) if positive.size else lowest)
        if positive.size < b.size and a.gamma * w != 0:  # a log axis drops 0 without a trace
            notes.append(f"{a.label}: the ceiling (γ|w|)^k is below float64's smallest value (4.9e-324) from "
                         f"k = {positive.size + 1} and is not drawn there (symvg sweep prints it in log10).")
        med = _sampled_medians(a, layers, weight, samples, seed)
        if med is not None:
            medians[a.name] = med
            lowest = min(lowest, _draw_medians(ax, a, med, MARKERS[n % len(MARKERS)], line.get_color(), notes))
    return lowest, medians


def _weight(weight: Any) -> sp.Expr:
    """|w| exact, by the validator every command uses (``sympy.nsimplify`` evaluated text and read 1e-300 as 0)."""
    return sp.Abs(to_rational(weight, "weight"))


def _short(v: sp.Expr) -> str:
    """``= 1/4`` for a short exact value, ``≈ 1.128`` otherwise (legends stay one short line).

    >>> _short(sp.Rational(1, 4)), _short(sp.sqrt(2) * sp.exp(-sp.Rational(1, 2)))
    ('= 1/4', '≈ 0.8578')
    """
    s = sp.sstr(v)
    return f"= {s}" if len(s) <= 8 and (v.is_Rational or v.is_Integer) else f"≈ {magnitude.sci(v, 4)}"


def _numpy(expr: sp.Expr) -> Callable[[np.ndarray], np.ndarray]:
    """φ' as a NumPy function (SciPy supplies erf for GELU when present; mpmath otherwise)."""
    try:
        f = sp.lambdify(z, expr, modules=["numpy", "scipy"])
    except ImportError:
        g = sp.lambdify(z, expr, modules="mpmath")
        return np.vectorize(lambda t: float(g(t)))
    return lambda t: np.broadcast_to(np.asarray(f(t), dtype=float), np.shape(t))


def plot_derivatives(activations: Sequence[str | Activation] | str = ("sigmoid", "tanh", "relu", "leaky_relu"),
                     zrange: tuple[float, float] = (-6.0, 6.0), points: int = 1201) -> Any:
    """φ'(z) for each activation, with γ = sup|φ'| as a dotted line and its argmax marked.

    >>> fig = plot_derivatives(("sigmoid",))
    >>> fig.axes[0].get_ylabel() == DERIVATIVES_YLABEL
    True
    """
    acts = _activations(activations)
    lo, hi = zrange
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise InvalidValueError(f"zrange must be two finite numbers lo < hi, got {zrange!r}")
    points = _positive_int(points, "points", 100_000)
    t = np.linspace(lo, hi, points)
    fig = _figure(figsize=(7.5, 4.8), layout="constrained")
    ax = fig.add_subplot()
    for a in acts:
        sup = a.supremum
        gamma = magnitude.json_float(sup.value) if sup.bounded else None
        if sup.bounded and gamma is None:  # leaky_relu:1e309: φ' itself no longer evaluates in float64
            raise InvalidValueError(f"{a.label}: γ = sup|φ'| = {magnitude.sci(sup.value)} is beyond float64's range: "
                                    "too large to plot (symvg bound gives it exactly)")
        line, = ax.plot(t, _numpy(a.derivative)(t), lw=2, label=f"{a.label}: γ = sup|φ'| {_short(sup.value)}")
        if gamma is not None:
            ax.axhline(gamma, color=line.get_color(), ls=":", lw=1)
        p = sup.argmax_point
        if p is not None and gamma is not None and lo <= float(p) <= hi:
            ax.plot([float(p)], [gamma], "o", color=line.get_color(), ms=6)
            ax.annotate(f"z {_short(p)}", (float(p), gamma),
                        textcoords="offset points", xytext=(6, 6), fontsize=8, color=line.get_color())
    ax.set_xlabel(DERIVATIVES_XLABEL)
    ax.set_ylabel(DERIVATIVES_YLABEL)
    ax.set_title("Derivatives and their suprema γ = sup|φ'| (proved)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_phase(activation: str | Activation = "tanh", sigma_w2_range: tuple[float, float] = (0.5, 4.0),
               sigma_b2_range: tuple[float, float] = (0.0, 0.5), n: int = 41) -> Any:
    """The order/chaos diagram: χ1 over (σ_w², σ_b²) with the critical line χ1 = 1.

    χ1 comes from :func:`symvg.theory.meanfield.phase_diagram`, imported only when called.
    """
    from symvg.theory.meanfield import phase_diagram

    pd = phase_diagram(activation, sigma_w2_range, sigma_b2_range, n)
    fig = _figure(figsize=(7.0, 4.8), layout="constrained")
    ax = fig.add_subplot()
    chi = np.asarray(pd.chi1, dtype=float)
    with np.errstate(divide="ignore"):
        logchi = np.log10(np.where(chi > 0, chi, np.nan))
    finite = np.isfinite(logchi)
    bound = float(np.max(np.abs(logchi[finite]))) if finite.any() else 1.0
    # χ1 = ∞ where the variance map diverges (no finite q*): a log axis cannot draw it, and expr:z**2 came out as a
    # blank square; those cells take the chaotic end of the scale, and the legend says so
    diverged = np.isposinf(logchi)
    mesh = ax.pcolormesh(pd.sigma_w2, pd.sigma_b2, np.where(diverged, bound, logchi), cmap="RdBu_r", vmin=-bound,
                         vmax=bound, shading="auto")
    if diverged.any():
        ax.plot([], [], "s", color=mesh.cmap(1.0), label=f"χ1 = ∞ (no finite q*: the variance map diverges) in "
                                                        f"{int(diverged.sum())} of {diverged.size} cells")
    fig.colorbar(mesh, ax=ax, label="log10 χ1   (< 0: ordered, gradients vanish;  > 0: chaotic, explode)")
    ax.plot(pd.critical_sigma_w2, pd.sigma_b2, "k-", lw=2, label="critical line χ1 = 1")
    ax.set_xlabel(PHASE_XLABEL)
    ax.set_ylabel(PHASE_YLABEL)
    ax.set_title(f"Order and chaos for {pd.activation}")
    ax.legend(fontsize=8, loc="upper left")
    return fig


def format_for(path: str | Path) -> str:
    """The file format from the suffix: png, pdf or svg.

    >>> format_for("out.PDF")
    'pdf'
    >>> format_for("out.jpg")
    Traceback (most recent call last):
    symvg.errors.InvalidValueError: plot output must end in .png, .pdf or .svg, got 'out.jpg'
    """
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise InvalidValueError(f"plot output must end in .png, .pdf or .svg, got {str(path)!r}")
    return fmt


def save(fig: Any, path: str | Path, dpi: int = 150) -> None:
    """Write ``fig`` to ``path`` atomically, in the format the suffix names; no timestamps, so reruns match."""
    fmt = format_for(path)
    metadata = {"png": {"Software": None}, "pdf": {"CreationDate": None, "Producer": None},
                "svg": {"Date": None}}[fmt]

    def write(f: Any) -> None:
        import matplotlib

        with matplotlib.rc_context({"svg.hashsalt": "symvg"}):
            fig.savefig(f, format=fmt, dpi=dpi, metadata=metadata)

    write_atomic(path, write)


__all__ = ["DTYPES", "FORMATS", "bound_curve", "dtype_limits", "format_for", "plot_derivatives", "plot_gradients",
           "plot_phase", "save"]
