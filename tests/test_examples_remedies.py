"""The remedy walk-throughs run and print the numbers they promise."""

from __future__ import annotations

import runpy
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(name: str, capsys) -> str:
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    return capsys.readouterr().out


def test_remedy_relu(capsys):
    out = _run("remedy_relu.py", capsys)
    assert "sigmoid                            γ|w| = 1/4   floor = 0      bound at 10 = 1/1048576  (vanishes)" in out
    assert "sympy    ReLU'(0) = 1/2" in out and "μ = 0    P(inactive) = 1/2 ≈ 0.500000" in out
    assert "exact 2^-10 = 1/1024 ≈ 0.000976562; Monte Carlo 0.0009575 over 400000 chains" in out
    assert "floor = 9/125000000000000000000" in out


def test_remedy_residual(capsys):
    out = _run("remedy_residual.py", capsys)
    assert "length 0: 1\n" in out and "= sum over 8 paths, by length:" in out
    assert "residual lower (3/4)^20 = 0.00317121, upper (5/4)^20 = 86.7362; plain (1/4)^20 = 9.09495e-13" in out
    assert "residual dh4/dh1 factors = [1, 1, 1], product = 1" in out and "plain chain dL/dw1 = 0" in out


def test_remedy_lstm(capsys):
    out = _run("remedy_lstm.py", capsys)
    assert "dc4/dc0 = f1*f2*f3*f4" in out
    assert "cell path  0.9^50     = 0.00515378" in out and "RNN bound  (1/4)^50   = 7.88861e-31" in out
