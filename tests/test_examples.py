"""The newcomer's scripts run and print what they promise."""

import runpy
import subprocess
import sys
from pathlib import Path

import sympy as sp

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart(capsys):
    result = runpy.run_path(str(ROOT / "examples" / "quickstart.py"))["main"]()
    out = capsys.readouterr().out
    assert "sup|σ'| = 1/4" in out
    assert sp.N(result["exact"]) <= sp.N(result["bound"])
    assert result["depth_to_vanish"] == 10
    assert result["medians"][0] < result["medians"][-1] * 1e-6  # early layers get far less gradient


def test_bench_derive_quick():
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_derive.py"), "--quick"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert [int(row[0]) for row in rows] == [5, 10, 20]
