"""The first commands: ``derive``, ``bound``, ``examples``, ``activations``."""

from __future__ import annotations

import click

from symvg.symbolic import activations as acts
from symvg.symbolic import bounds
from symvg.views import bounds as bviews
from symvg.views import derivation
from symvg.views.tables import brief, short
from symvg.theory import worked
from symvg.symbolic.chain import LOSSES, Chain
from symvg.errors import InvalidValueError
from symvg.symbolic.derive import derive as derive_chain
from symvg.symbolic.supremum import within
from symvg.cli._io import emit, format_option, markdown_table, output_option, precheck_output, table, to_json

MAX_PRINTED_DEPTH = 2000
"""Deepest chain ``symvg derive`` prints: at 2000 layers about 2 s as text and 8 s as JSON (its per-step LaTeX),
linear in depth (100000 took minutes).
The Python API derives deeper chains."""

ACTIVATION_HELP = "Activation name (see 'symvg activations'), 'leaky_relu:0.2', or 'expr:<expression in z>'."


@click.command()
@click.option("--layers", "-n", type=int, default=3, show_default=True, help="Depth N of the chain.")
@click.option("--activation", "-a", default="sigmoid", show_default=True, help=ACTIVATION_HELP)
@click.option("--wrt", "-k", type=int, default=1, show_default=True, help="Differentiate with respect to w_K.")
@click.option("--loss", type=click.Choice(LOSSES), default="mse", show_default=True)
@click.option("--residual", is_flag=True, help="Skip connections: h_k = h_{k-1} + φ(z_k).")
@click.option("--no-bias", is_flag=True, help="Drop the biases b_k.")
@click.option("--at", "at", multiple=True, metavar="NAME=VALUE",
              help="Evaluate at numbers, e.g. --at x=1 --at w1=0.5 (every input; unset ones are 0 for b, 1 for w).")
@format_option("text", "unicode", "latex", "markdown", "json")
@click.option("--standalone", is_flag=True, help="With --format latex: a complete document for pdflatex.")
@output_option
def derive(layers: int, activation: str, wrt: int, loss: str, residual: bool, no_bias: bool, at: tuple[str, ...],
           fmt: str, standalone: bool, output: str | None) -> None:
    """Derive dL/dw_K through an N-layer chain, factor by factor.

    \b
    symvg derive --layers 3
    symvg derive --layers 3 --at x=1 --at y=0 --at w1=0.5
    symvg derive --layers 4 --format latex --standalone --output d.tex
    """
    precheck_output(output)
    if standalone and fmt != "latex":  # else it would be dropped without a word
        raise InvalidValueError(f"--standalone makes a LaTeX document: use it with --format latex, not {fmt}")
    chain = Chain(layers, activation, loss=loss, bias=not no_bias, residual=residual)
    if layers > MAX_PRINTED_DEPTH:
        raise InvalidValueError(f"derive prints chains of at most {MAX_PRINTED_DEPTH} layers (up to about 8 s; the time grows "
                                f"with depth), got {layers}; symvg.derive(Chain(N, ...)) takes deeper ones")
    d = derive_chain(chain, wrt)
    values = _values(chain, at) if at else None
    views = {"text": derivation.text, "unicode": derivation.unicode, "markdown": derivation.markdown,
             "latex": lambda d, values: derivation.latex(d, values, standalone=standalone),
             "json": lambda d, values: to_json(derivation.to_dict(d, values))}
    if values is None:
        emit(views[fmt](d, values), output)
        return
    # SymPy's exact evaluation has no bound of its own: at x = 1e400 it took 4 s at depth 2, 19 s at 4, > 60 s at 6
    text = within(EVAL_SECONDS, lambda: views[fmt](d, values))
    if text is None:
        # at --at x=1 and 2000 layers the depth alone runs past the budget: the cause is not always a magnitude
        raise InvalidValueError(f"evaluating the derivation at these --at values did not finish within {EVAL_SECONDS:g} s "
                                f"at depth {layers} (the exact evaluation grows with depth, and fast at huge or tiny "
                                "magnitudes such as 1e400); use fewer layers or values nearer 1, or drop --at for the "
                                "symbolic derivation")
    emit(text, output)


EVAL_SECONDS = 10.0
"""Wall-clock budget for ``derive --at``: the exact evaluation and its printing."""


def _values(chain: Chain, at: tuple[str, ...]) -> dict[str, str]:
    """``--at`` pairs over defaults (w = 1, b = 0, x = 1, y = 0); names and numbers are checked by ``evaluate``."""
    values = {str(s): ("1" if str(s)[0] in "wx" else "0") for s in chain.symbols()}
    given: set[str] = set()
    for item in at:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InvalidValueError(f"--at expects NAME=VALUE, got {item!r}")
        if name.strip() not in values:
            raise InvalidValueError(f"--at: unknown input {name.strip()!r}; this chain has {', '.join(values)}")
        if name.strip() in given:  # the last one silently won: --at w1=0.5 --at w1=2 (meant w2) evaluated at w1 = 2
            raise InvalidValueError(f"--at: {name.strip()} is given twice; give each input once")
        given.add(name.strip())
        values[name.strip()] = value.strip()
    return values


@click.command()
@click.option("--activation", "-a", default="sigmoid", show_default=True, help=ACTIVATION_HELP)
@click.option("--weight", "-w", default=None, help="Weight size |w| on every layer (exact: '0.5', '1/3').")
@click.option("--layers", "-n", type=int, default=None, help="Depth N for the bound (γ|w|)^N.")
@click.option("--tol", default=None, help="Tolerance for the depth at which the bound crosses it (e.g. 1e-6).")
@format_option("text", "json")
@output_option
def bound(activation: str, weight: str | None, layers: int | None, tol: str | None, fmt: str,
          output: str | None) -> None:
    """Prove γ = sup|φ'| and the depth law (γ|w|)^N that follows.

    \b
    symvg bound --activation sigmoid --format json
    symvg bound --activation tanh --weight 0.9 --layers 50 --tol 1e-6
    """
    precheck_output(output)
    a = acts.get(activation)
    data = bviews.supremum_to_dict(a)
    db = None
    if weight is not None or layers is not None or tol is not None:
        db = bounds.depth_bound(a, weight if weight is not None else 1, layers, tol)
        data.update({k: v for k, v in db.as_dict().items() if k not in data})
    if fmt == "json":
        emit(to_json(data), output)
        return
    text = bviews.render_supremum(a)
    emit(text if db is None else text + "\n" + bviews.render_depth_law(db), output)


@click.command()
@click.argument("name", required=False, type=click.Choice(sorted(worked.EXAMPLES)))
@format_option("text", "latex", "json")
@output_option
def examples(name: str | None, fmt: str, output: str | None) -> None:
    """The classic hand-worked numbers (25 × 0.25 × 0.20 = 1.25 …), computed exactly."""
    precheck_output(output)
    chosen = [name] if name else list(worked.EXAMPLES)
    # One heading per name, so every example printed can be asked for by the name it is printed under
    # (halves is one story in two products: σ'(0) = ¼, then ½·¼).
    named: list[tuple[str, list[worked.WorkedProduct]]] = []
    for n in chosen:
        r = worked.EXAMPLES[n]()
        named.append((n, list(r) if isinstance(r, tuple) else [r]))
    items = [p for _, ps in named for p in ps]
    if fmt == "json":
        emit(to_json([dict(p.as_dict(), example=n) for n, ps in named for p in ps]), output)
    elif fmt == "latex":
        emit("\\begin{align*}\n" + " \\\\\n".join(p.latex() for p in items) + "\n\\end{align*}", output)
    else:
        emit("\n\n".join(f"# {n}: " + "; then ".join(p.title for p in ps) + "\n" + "\n".join(str(p) for p in ps)
                         for n, ps in named), output)


@click.command(name="activations")
@format_option("text", "markdown", "json")
@output_option
def activations_cmd(fmt: str, output: str | None) -> None:
    """The catalogue: φ'(z), γ = sup|φ'| (proved) and where it is attained."""
    precheck_output(output)
    cat = [acts.get(n) for n in acts.names()]
    if fmt == "json":
        emit(to_json([bviews.supremum_to_dict(a) for a in cat]), output)
        return
    rows = []
    for a in cat:
        s = a.supremum
        gamma = brief(s.value) + ("" if s.exact else " (numeric root)")
        rows.append((a.label, short(a.derivative), gamma, bviews.argmax_cell(s)))
    header = ("name", "φ'(z)", "sup|φ'|", "argmax")
    emit((markdown_table if fmt == "markdown" else table)(rows, header), output)


COMMANDS = [derive, bound, examples, activations_cmd]


__all__ = ["COMMANDS"]
