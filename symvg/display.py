"""The notebook display protocol, with the printers registered from above.

A result's ``_repr_latex_``/``_repr_markdown_`` call :func:`latex`/:func:`markdown` here; the view that
knows how to draw the type registers itself (``latex.register(Derivation)(…)`` in
:mod:`symvg.views.derivation`). So the maths never imports its printers, and ``import symvg`` (which loads
the views) puts every registration in place before a result can exist.

>>> latex(object())
Traceback (most recent call last):
TypeError: no LaTeX view for object
"""

from __future__ import annotations

from functools import singledispatch


@singledispatch
def latex(obj: object) -> str:
    """The notebook's LaTeX (``$$…$$``) for ``obj``."""
    raise TypeError(f"no LaTeX view for {type(obj).__name__}")


@singledispatch
def markdown(obj: object) -> str:
    """The notebook's Markdown for ``obj``."""
    raise TypeError(f"no Markdown view for {type(obj).__name__}")


__all__ = ["latex", "markdown"]
