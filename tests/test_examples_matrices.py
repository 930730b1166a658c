"""examples/deep_matrices.py runs and tells the story it promises."""

from __future__ import annotations

import math
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # a 50-layer spectrum at two inits and two short PyTorch runs: ~3 s idle, more when shared
def test_deep_matrices_quick(capsys):
    result = runpy.run_path(str(ROOT / "examples" / "deep_matrices.py"))["main"](quick=True)
    out = capsys.readouterr().out
    assert "sup|σ'| = 1/4" in out and "dL/dW1 = D1*W2.T*D2*W3.T*D3*delta3*h0.T" in out
    spec = result["spectrum"]
    assert spec["orthogonal"].spread * 3 < spec["gaussian"].spread
    assert spec["orthogonal"].log10_quantiles[1] > spec["gaussian"].log10_quantiles[1] + 5
    assert result["clipping"]["simulated_log10"] == pytest.approx(40 * math.log10(1.2), abs=1e-9)
    assert 0.99 < float(result["clipping"]["clipped_step"]) <= 1
    train = result["training"]
    if train is not None:   # torch present
        assert train["default"]["grad0"] < 1e-8 < train["orthogonal"]["grad0"]
        assert train["orthogonal"]["loss"] < 0.5 * train["orthogonal"]["loss0"]
        assert train["default"]["loss"] > 0.9 * train["default"]["loss0"]
