"""The matrices commands follow the CLI contract: formats, atomic --output, one-line errors with exit 2."""

from __future__ import annotations

import json


def test_spectrum_text_json_markdown(run, tmp_path):
    code, out, _ = run("spectrum", "-a", "linear", "--init", "orthogonal", "--sigma-w2", "4", "--width", "8",
                       "--depth", "3")
    assert code == 0 and "exactly σw^L = 8" in out and "agrees" in out
    path = tmp_path / "s.json"
    code, out, _ = run("spectrum", "-a", "tanh", "--width", "16", "--depth", "4", "--samples", "2",
                       "--sigma-b2", "0.01", "--format", "json", "-o", str(path))
    data = json.loads(path.read_text())
    assert code == 0 and out == ""
    assert abs(data["theory"]["chi1"] - 1) < 1e-9 and data["agreement"]["spread_agrees"] in (True, False)
    code, out, _ = run("spectrum", "--width", "8", "--depth", "2", "--format", "markdown")
    assert code == 0 and out.startswith("**tanh**") and "| depth |" in out


def test_spectrum_errors_are_one_line(run, tmp_path):
    for args in (["-a", "nope"], ["--at", "x"], ["--sigma-w2", "nan"], ["--depth", "3", "--at", "7"],
                 ["-o", str(tmp_path / "missing" / "x.json")]):
        code, out, err = run("spectrum", "--width", "4", *args)
        assert code == 2 and err.startswith("symvg: error:") and len(err.strip().splitlines()) == 1, (args, err)


def test_spectrum_plot(run, tmp_path):
    path = tmp_path / "h.png"
    code, _, _ = run("spectrum", "--width", "8", "--depth", "4", "--at", "2", "--plot", str(path))
    assert code == 0 and path.read_bytes().startswith(b"\x89PNG")
