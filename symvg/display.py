"""The notebook display protocol, with the printers registered from above.

A result's ``_repr_latex_``/``_repr_markdown_`` call :func:`latex`/:func:`markdown` here; the view that
knows how to draw the type registers itself (``latex.register(Derivation)(…)`` in
:mod:`symvg.views.derivation`). So the maths never imports its printers. ``import symvg`` does not load the
views either (they need SymPy, which ``symvg --help`` should not pay for): it hands :func:`defer` a loader,
run on the first object no view is registered for, so every registration is in place before one is missed.

>>> latex(object())
Traceback (most recent call last):
TypeError: no LaTeX view for object
"""

from __future__ import annotations

from functools import singledispatch
from typing import Callable

_PENDING: list[Callable[[], object]] = []


def defer(loader: Callable[[], object]) -> None:
    """Run ``loader`` (which registers views, e.g. by importing their module) on the first miss."""
    _PENDING.append(loader)


def _load_pending() -> bool:
    """Run every pending loader; True when one ran, so the lookup is worth trying again."""
    ran = bool(_PENDING)
    while _PENDING:
        _PENDING.pop(0)()
    return ran


@singledispatch
def latex(obj: object) -> str:
    """The notebook's LaTeX (``$$…$$``) for ``obj``."""
    if _load_pending():
        return latex(obj)
    raise TypeError(f"no LaTeX view for {type(obj).__name__}")


@singledispatch
def markdown(obj: object) -> str:
    """The notebook's Markdown for ``obj``."""
    if _load_pending():
        return markdown(obj)
    raise TypeError(f"no Markdown view for {type(obj).__name__}")


__all__ = ["defer", "latex", "markdown"]
