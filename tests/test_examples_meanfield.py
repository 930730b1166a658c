"""The newcomer's walk-through runs and prints the numbers it promises."""

from __future__ import annotations

import runpy
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "wide_networks.py"


def test_wide_networks_example_runs(capsys):
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out
    assert "sup σ' = 1/4" in out
    assert "relu             σw²* = 2            at σb² = 0.05: 2" in out
    assert "at σb² = 0.05: 1.76095" in out  # tanh, Schoenholz et al. 2017
    assert "He init" in out and "gradient ratio per layer" in out
    # issue 14: tanh's q* at σw² = 1, σb² = 0 is the proved fixed point 0, not a rounding residue
    assert "tanh     q* = 0        χ1 = 1 " in out and "e-17" not in out
    # GELU has no order/chaos boundary from unit-variance inputs: the map diverges first
    assert "gelu             σw²* = none (q diverges from 2.352)" in out
    assert "a fit on log norms would say" in out
