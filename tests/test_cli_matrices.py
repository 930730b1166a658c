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


def test_rnn_command(run):
    code, out, _ = run("rnn", "--steps", "20", "--width", "8", "--spectral-radius", "0.5", "--init", "orthogonal")
    assert code == 0 and "vanishing (proved" in out and "holds at every gap" in out and "LSTM cell path" in out
    code, out, _ = run("rnn", "--steps", "10", "--width", "4", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["simulation"]["bound_holds"] is True and len(data["simulation"]["log10_norms"]) == 11
    code, _, err = run("rnn", "--activation", "nope")
    assert code == 2 and err.startswith("symvg: error:")


def test_clip_command(run, tmp_path):
    path = tmp_path / "c.json"
    code, out, _ = run("clip", "-g", "30,40", "-t", "5", "-d", "1,0", "--format", "json", "-o", str(path))
    data = json.loads(path.read_text())
    assert code == 0 and data["clipped"] == ["3", "4"] and data["clipped_step_along"]["exact"] == "3"
    for args in (["-g", "1,,2", "-t", "1"], ["-g", "1,2", "-t", "-1"], ["-g", "1,2", "-t", "1", "-d", "1"]):
        code, _, err = run("clip", *args)
        assert code == 2 and len(err.strip().splitlines()) == 1, args


def test_vector_command(run):
    code, out, _ = run("vector", "--widths", "3,4,2", "-a", "leaky_relu:0.2", "--check", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["gradient"] == "D1*W2.T*D2*delta2*h0.T" and data["check"]["holds"] is True
    code, out, _ = run("vector", "--format", "latex")
    assert code == 0 and r"W_{2}^{T}" in out
    for args in (["--widths", "3,x"], ["--wrt", "9"], ["--widths", "3,0"]):
        code, _, err = run("vector", *args)
        assert code == 2 and err.startswith("symvg: error:"), args
