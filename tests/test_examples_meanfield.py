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
