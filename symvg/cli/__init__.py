"""The ``symvg`` command line: a thin click layer over the Python API; it holds no maths.

Commands live beside this file, one module per topic, each exporting ``COMMANDS``.
The error contract lives here, once: bad input prints one line ``symvg: error: ...`` and exits
with status 2; a runtime failure exits with 1; no traceback unless ``--debug``.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
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


class SymvgGroup(click.Group):
    """A click group whose ``main`` turns every failure into one line and an exit status."""

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


for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _info.name.startswith("_"):
        for _cmd in importlib.import_module(f"{__name__}.{_info.name}").COMMANDS:
            cli.add_command(_cmd)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="symvg")


__all__ = ["cli", "main"]
