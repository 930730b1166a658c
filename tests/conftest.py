"""Shared test helpers."""

from __future__ import annotations

import random

import pytest
import sympy as sp
from click.testing import CliRunner

from symvg.chain import Chain


def symbol_values(chain: Chain, seed: int) -> dict:
    """:func:`random_values` keyed by the chain's symbols, for ``xreplace``."""
    vals = random_values(chain, seed)
    return {s: vals[str(s)] for s in chain.symbols()}


def random_values(chain: Chain, seed: int, lo: int = -2, hi: int = 2) -> dict:
    """Random rational inputs (odd denominators keep pre-activations off kinks at 0)."""
    rng = random.Random(seed)
    return {str(s): sp.Rational(rng.randint(lo * 97, hi * 97), 97) + sp.Rational(1, 1013) for s in chain.symbols()}


@pytest.fixture
def run():
    """Invoke the CLI in-process: returns (exit code, stdout, stderr)."""
    from symvg.cli import cli

    runner = CliRunner()

    def invoke(*args: str):
        r = runner.invoke(cli, list(args))
        return r.exit_code, r.stdout, r.stderr

    return invoke
