"""The ``symvg`` command line: a thin click layer over the Python API; it holds no maths.

Commands live beside this file, one module per topic, each exporting ``COMMANDS``. A module is
imported only when one of its commands runs: :data:`INDEX` names each command's module and the first
paragraph of its help, which is all ``symvg --help`` lists, so the listing costs no import (the tests
hold the index against the commands the modules define).
The error contract lives here, once: bad input prints one line ``symvg: error: ...`` and exits
with status 2; a runtime failure exits with 1; no traceback unless ``--debug``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any, Sequence

import click

from symvg import __version__
from symvg.errors import SymvgInputError, SymvgRuntimeError


def _fail(message: str, status: int) -> None:
    first = " ".join(str(message).split())  # always one line
    click.echo(f"symvg: error: {first}", err=True)
    sys.exit(status)


class _Interrupted(Exception):
    """Ctrl-C inside a command, carried past click (which would print a blank line and call it Abort)."""


INDEX: dict[str, tuple[str, str]] = {
    # name: (module beside this file, the first paragraph of the command's help)
    "activations": ("core", "The catalogue: φ'(z), γ = sup|φ'| (proved) and where it is attained."),
    "batchnorm": ("matrices", "Batch normalisation: its exact backward factor, and a deep BN network without skips "
                  "(exploding, Yang et al. 2019)."),
    "bound": ("core", "Prove γ = sup|φ'| and the depth law (γ|w|)^N that follows."),
    "clip": ("matrices", "Gradient clipping by norm, exactly: ĝ = g·min(1, τ/‖g‖)."),
    "compare": ("compare", "Compare activations: per-layer factor, bound at depth N (never underflows), depth to "
                "vanish/explode."),
    "derive": ("core", "Derive dL/dw_K through an N-layer chain, factor by factor."),
    "diagnose": ("diagnose", "Diagnose vanishing/exploding gradients in a training LOG (.csv, .json or a TensorBoard "
                 "directory)."),
    "eval": ("eval", "Sample random networks and report |dL/dw_k| for every layer k."),
    "examples": ("core", "The classic hand-worked numbers (25 × 0.25 × 0.20 = 1.25 …), computed exactly."),
    "lstm": ("remedies", "The LSTM cell path ∂c_T/∂c_0 = ∏ f_s against a plain RNN's (γ|w|)^T."),
    "meanfield": ("meanfield", "Mean-field signal propagation (Poole 2016, Schoenholz 2017): q*, χ1, ξ_q, ξ_c, verdict."),
    "plot": ("plot", "Draw KIND (gradients, derivatives or phase) to an image file."),
    "relu": ("remedies", "Inactive ReLU units and blocked paths, exactly; leaky ReLU's floor ε^N·|w|^N."),
    "residual": ("remedies", "Skip connections: ∂h_N/∂h_0 as a sum over paths (the identity path is 1) and its bounds."),
    "rnn": ("matrices", "h_s = φ(W h_(s-1) + U x_s): ∂h_T/∂h_0 = ∏ D_s W derived, bounded (Pascanu et al. 2013) and "
            "simulated."),
    "skip": ("matrices", "Skips of any length t: ∂h_N/∂h_0 as a sum over paths, its bound, and random networks."),
    "spectrum": ("matrices", "Singular values of J = D_L W_L ⋯ D_1 W_1 at initialisation, beside the theory."),
    "sweep": ("sweep", "Tabulate the bound (γ|w|)^N over depths N for several activations, and the depth at which "
              "each vanishes."),
    "underflow": ("floats", "Depth N at which a product of N equal factors leaves the normal range and reaches 0."),
    "update": ("floats", "One SGD step w - α·g, exactly and in float16/32/64: is it lost to rounding?"),
    "vector": ("matrices", "The vector chain rule: δ_k = W_(k+1)ᵀ D_(k+1) δ_(k+1), ∂L/∂W_k = D_k δ_k h_(k-1)ᵀ, factor "
               "by factor."),
}
"""Every command, without importing it: its module (``symvg.cli.<module>``) and its help's first paragraph."""


class _Commands(MutableMapping[str, click.Command]):
    """``Group.commands`` that imports a command's module on first access (every name in :data:`INDEX`)."""

    def __init__(self, index: dict[str, tuple[str, str]]) -> None:
        self._index = index
        self._loaded: dict[str, click.Command] = {}

    def _load(self, name: str) -> None:
        module = importlib.import_module(f"{__name__}.{self._index[name][0]}")
        for cmd in module.COMMANDS:
            self._loaded.setdefault(cmd.name, cmd)

    def loaded(self, name: str) -> click.Command | None:
        """The command if its module is already imported (or it was added directly), else None."""
        return self._loaded.get(name)

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._loaded and name in self._index:
            self._load(name)
        return self._loaded[name]

    def __setitem__(self, name: str, cmd: click.Command) -> None:
        self._loaded[name] = cmd

    def __delitem__(self, name: str) -> None:
        raise TypeError("symvg's commands cannot be removed")

    def __iter__(self) -> Iterator[str]:
        return iter({**dict.fromkeys(self._index), **dict.fromkeys(self._loaded)})

    def __len__(self) -> int:
        return len(set(self._index) | set(self._loaded))

    def __contains__(self, name: object) -> bool:
        return name in self._index or name in self._loaded


class SymvgGroup(click.Group):
    """A click group whose ``main`` turns every failure into one line and an exit status, and whose
    commands load on first use (:data:`INDEX`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy = _Commands(INDEX)
        self._lazy.update(self.commands)  # any given to the constructor
        self.commands = self._lazy

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's own listing, drawn from stand-ins that carry only the indexed help: nothing is imported."""
        stand_ins = [self._lazy.loaded(name) or click.Command(name, help=INDEX[name][1])
                     for name in self.list_commands(ctx)]
        click.Group(commands=stand_ins).format_commands(ctx, formatter)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise _Interrupted() from None

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        debug = "--debug" in argv
        try:
            return super().main(args=argv, prog_name=prog_name or "symvg", standalone_mode=False, **extra)
        except click.exceptions.Exit as e:
            sys.exit(e.exit_code)
        except click.exceptions.Abort:
            _fail("aborted", 1)
        except click.UsageError as e:
            hint = f" (see 'symvg {e.ctx.info_name if e.ctx and e.ctx.parent else ''} --help')".replace("  ", " ")
            _fail(e.format_message() + hint, 2)
        except click.ClickException as e:
            _fail(e.format_message(), e.exit_code or 1)
        except SymvgInputError as e:
            if debug:
                raise
            _fail(str(e), 2)
        except (SymvgRuntimeError, OSError, MemoryError) as e:
            if debug:
                raise
            _fail(f"{type(e).__name__}: {e}" if not isinstance(e, SymvgRuntimeError) else str(e), 1)
        except (KeyboardInterrupt, _Interrupted):
            _fail("interrupted", 130)
        except Exception as e:  # a bug: still one line, but say so
            if debug:
                raise
            _fail(f"internal error ({type(e).__name__}: {e}); rerun with --debug for the traceback", 1)


@click.group(cls=SymvgGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", "-V", prog_name="symvg")
@click.option("--debug", is_flag=True, help="Show the full traceback on errors.")
def cli(debug: bool) -> None:
    """Derive exactly why gradients vanish or explode in deep networks.

    \b
    Start here:
      symvg derive --layers 3                 the chain rule, factor by factor
      symvg bound --activation sigmoid        sup|φ'| = 1/4, proved
      symvg examples                          the classic hand-worked numbers
      symvg activations                       the catalogue with γ = sup|φ'|
    """


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="symvg")


__all__ = ["INDEX", "cli", "main"]
