"""The view protocol every result offers, with the printers registered from above.

A result type derives from :class:`Result`: ``as_dict()`` (JSON-ready: exact numbers as strings), ``str()``
(its text view) and ``_repr_markdown_`` (Jupyter) call :func:`data`, :func:`text` and :func:`markdown` here;
the view that knows how to draw a type registers itself (``text.register(Diagnosis)(…)`` in
:mod:`symvg.views.diagnosis`), and a type with no view gets the plain rendering of its fields. So the
maths never imports its printers.

View modules are registered lazily: :data:`VIEWS` (filled by ``symvg/__init__``, which sees every layer)
names, per result module, the view module to import the first time one of its results is shown, by any of
the views (so ``import symvg`` and ``symvg --help`` load no printer and no SymPy).

>>> latex(object())
Traceback (most recent call last):
TypeError: no LaTeX view for object
>>> plain({"p": __import__("sympy").Rational(1, 3), "x": float("inf"), "n": (1, 2)})
{'p': '1/3', 'x': None, 'n': [1, 2]}
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import numbers
from fractions import Fraction
from functools import singledispatch
from typing import Any, Callable

VIEWS: dict[str, str] = {}
"""Result module -> the view module that registers its views, imported on first use (see above)."""


def _load_view(obj: object) -> bool:
    """Import the view module :data:`VIEWS` names for ``obj``'s module (once); True if one was imported."""
    module = VIEWS.pop(type(obj).__module__, None)
    if module is None:
        return False
    importlib.import_module(module)
    return True


def _dispatcher(kind: str, doc: str) -> Callable[[object], Any]:
    """A singledispatch function for one kind of view; for a type with no view registered, a TypeError."""
    def view(obj: object) -> Any:
        if _load_view(obj):  # its view module registers it on import
            return dispatch(obj)
        raise TypeError(f"no {kind} view for {type(obj).__name__}")

    view.__doc__, view.__name__ = doc, kind
    dispatch = singledispatch(view)
    return dispatch


latex = _dispatcher("LaTeX", "The notebook's LaTeX (``$$…$$``) for ``obj``.")
markdown = _dispatcher("Markdown", "The notebook's Markdown for ``obj``.")
text = _dispatcher("text", "The plain-text view of ``obj``.")
data = _dispatcher("data", "The JSON-ready dict of ``obj``.")


def plain(value: Any) -> Any:
    """``value`` as JSON can hold it: exact numbers (SymPy, Fraction) as strings, a float that is not finite
    as None (JSON has no inf or nan), sequences as lists, a result as its ``as_dict()``."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if hasattr(value, "as_dict"):
        return value.as_dict()
    if hasattr(value, "tolist"):  # NumPy arrays and scalars
        return plain(value.tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (Fraction, numbers.Number)) or type(value).__module__.startswith("sympy"):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list, set, frozenset)):
        return [plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return str(value)


class Result:
    """The view protocol: ``as_dict()``, ``str()`` and the notebook's Markdown, each from its view."""

    __slots__ = ()

    def as_dict(self) -> dict:
        """JSON-ready: exact numbers as strings, non-finite floats as None."""
        return data(self)

    def __str__(self) -> str:
        return text(self)

    def _repr_markdown_(self) -> str:
        return markdown(self)


class Worded(Result):
    """A result whose text view is its own ``text`` (a field or a property): a judgement already in words."""

    __slots__ = ()

    def __str__(self) -> str:
        return self.text  # type: ignore[attr-defined]


@data.register
def _fields(obj: Result) -> dict:
    if _load_view(obj):
        return data(obj)
    return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}  # type: ignore[arg-type]


@text.register
def _field_lines(obj: Result) -> str:
    if _load_view(obj):
        return text(obj)
    if type(obj).__str__ is not Result.__str__:
        return str(obj)  # the type writes its own text
    lines = [type(obj).__name__]
    for key, value in obj.as_dict().items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        lines.append(f"  {key}: {shown}")
    return "\n".join(lines)


@markdown.register
def _fenced(obj: Result) -> str:
    if _load_view(obj):
        return markdown(obj)
    return "```text\n" + str(obj) + "\n```"


__all__ = ["VIEWS", "Result", "Worded", "data", "latex", "markdown", "plain", "text"]
