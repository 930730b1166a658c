"""plot and the plot/sweep commands: figures with the right axes, files written atomically, CLI contract."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("matplotlib")

from symvg.views import plot  # noqa: E402
from symvg.cli import cli  # noqa: E402
from symvg.cli.sweep import parse_range  # noqa: E402
from symvg.errors import InvalidValueError  # noqa: E402


def test_gradients_figure_axes_and_lines():
    fig = plot.plot_gradients(layers=80)
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_yscale()) == (plot.GRADIENTS_XLABEL, plot.GRADIENTS_YLABEL, "log")
    labels = [line.get_label() for line in ax.get_lines()]
    assert any(lb.startswith("sigmoid: γ|w| = 1/4") for lb in labels)
    assert any("float32 smallest normal" in lb for lb in labels)  # 1/4^80 goes below float32's range
    assert not any("float64" in lb for lb in labels)  # ... but nowhere near float64's


def test_gradients_bound_matches_depth_law():
    k, b = plot.bound_curve("sigmoid", 2, 10)
    assert np.allclose(b, 0.5 ** k)


def test_gradients_with_given_samples():
    fig = plot.plot_gradients(layers=4, activations=["tanh"], samples={"tanh": [0.5, 0.2, 0.1, 0.05]})
    assert any("sampled" in line.get_label() for line in fig.axes[0].get_lines())


def test_derivatives_mark_the_supremum():
    ax = plot.plot_derivatives(("sigmoid", "tanh")).axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == (plot.DERIVATIVES_XLABEL, plot.DERIVATIVES_YLABEL)
    marks = [line.get_xydata().tolist() for line in ax.get_lines() if line.get_marker() == "o"]
    assert [[0.0, 0.25]] in marks and [[0.0, 1.0]] in marks


def test_phase_diagram():
    pytest.importorskip("symvg.theory.meanfield")
    ax = plot.plot_phase("tanh", n=9).axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == (plot.PHASE_XLABEL, plot.PHASE_YLABEL)


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".pdf", b"%PDF"), (".svg", b"<?xml")])
def test_save_writes_each_format_deterministically(tmp_path, suffix, magic):
    fig = plot.plot_gradients(layers=10, activations=("sigmoid",))
    a, b = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
    plot.save(fig, a)
    plot.save(fig, b)
    assert a.read_bytes().startswith(magic) and a.stat().st_size > 1000
    if suffix != ".svg":  # SVG ids still differ between saves (see the report); PNG and PDF are reproducible
        assert a.read_bytes() == b.read_bytes()


def test_save_refuses_other_suffixes(tmp_path):
    with pytest.raises(InvalidValueError, match=r"\.png, \.pdf or \.svg"):
        plot.save(plot.plot_derivatives("relu"), tmp_path / "x.jpg")
    assert not list(tmp_path.iterdir())


def test_missing_matplotlib_names_the_extra(monkeypatch):
    from symvg.errors import BackendUnavailableError

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(BackendUnavailableError, match=r"pip install symvg\[plot\]"):
        plot.plot_derivatives("relu")


# ----------------------------------------------------------------------------- CLI


def run(*args):
    return CliRunner().invoke(cli, list(args))


@pytest.mark.parametrize("kind", ["gradients", "derivatives"])
def test_cli_plot_writes_png(tmp_path, kind):
    out = tmp_path / f"{kind}.png"
    r = run("plot", kind, "--output", str(out), "--layers", "20", "--activations", "sigmoid,tanh")
    assert r.exit_code == 0, r.output
    assert out.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("args, message", [
    (["plot", "gradients", "--output", "x.gif"], "must end in .png, .pdf or .svg"),
    (["plot", "volcano", "--output", "x.png"], "volcano"),
    (["plot", "gradients", "--output", "x.png", "--activations", "sigmod"], "unknown activation 'sigmod'"),
    (["sweep", "--layers", "0..5"], "A >= 1"),
    (["sweep", "--layers", "9..3"], "B >= A"),
    (["sweep", "--layers", "1..x"], "not of the form"),
    (["sweep", "--layers", "1..100000..1"], "at most"),
    (["sweep", "--weight", "nan"], "finite number"),
    (["sweep", "--tol", "2"], "tol must be in (0, 1)"),
])
def test_cli_bad_input_exits_2_with_one_line(args, message):
    r = run(*args)
    assert r.exit_code == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("symvg: error:") and message in r.stderr


def test_parse_range():
    assert parse_range("3..9..3") == range(3, 10, 3)
    with pytest.raises(InvalidValueError):
        parse_range("1..2..0")


def test_cli_sweep_text_table():
    r = run("sweep", "--layers", "1..12", "--activations", "sigmoid,tanh,relu")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[2].split() == ["N", "sigmoid", "tanh", "relu"]
    assert lines[14].split() == ["11", "2.384e-7", "1.000", "1.000"]
    assert "sigmoid: gamma = 1/4, per-layer factor in [0, 1/4]: vanishes (proved" in r.stdout
    assert "below 1/1000000 from depth 10: vanished there (proved)" in r.stdout
    tanh = next(ln for ln in lines if ln.startswith("tanh:"))   # issue 14: it was "neither vanishes nor explodes"
    assert "undecided, may vanish" in tanh and "neither" not in tanh and "explode" not in tanh
    assert r.stderr == ""  # no progress bar when not on a terminal


def test_cli_sweep_json_and_csv(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((plot.Path(plot.__file__).parent / "schemas" / "sweep.schema.json").read_text())
    out = tmp_path / "s.json"
    r = run("sweep", "--layers", "1..50..7", "--activations", "tanh,elu", "--weight", "0.9", "--format", "json",
            "--output", str(out))
    assert r.exit_code == 0 and r.stdout == ""
    data = json.loads(out.read_text())
    jsonschema.validate(data, schema)
    assert data["layers"] == [1, 8, 15, 22, 29, 36, 43, 50] and data["activations"][0]["depth_to_vanish"] == 132
    tanh = data["activations"][0]   # ceiling 0.9 < 1 proves vanishing; below 1e-6 only from depth 132
    assert tanh["verdict"] == "vanish" and tanh["floor"] == "0" and tanh["status"][-1] == "may vanish"
    csv = run("sweep", "--layers", "1..3", "--activations", "sigmoid", "--format", "csv").stdout
    assert csv == "N,sigmoid\n1,0.2500\n2,0.06250\n3,0.01563\n"


def test_gradients_coinciding_lines_differ_and_legend_is_outside():
    # tanh, relu and leaky ReLU all have ceiling 1 at |w| = 1: each must stay tellable apart
    medians = {"sigmoid": [0.2, 0.04, 0.008, 1e-3], "leaky_relu": [0.1, 1e-3, 1e-5, 1e-7], "relu": [0.0] * 4}
    fig = plot.plot_gradients(layers=4, activations=("sigmoid", "tanh", "relu", "leaky_relu"), samples=medians)
    ax = fig.axes[0]
    ceilings = [ln for ln in ax.get_lines() if "ceiling" in ln.get_label()]
    assert len({(ln.get_linestyle(), ln.get_marker()) for ln in ceilings}) == 4
    assert any("tanh: γ|w| = 1, ceiling (undecided: may vanish)" == ln.get_label() for ln in ceilings)
    fig.canvas.draw()
    legend, axes = fig.legends[0].get_window_extent(), ax.get_window_extent()
    assert legend.x0 >= axes.x1                                     # beside the data, not over it
    caption = " ".join(fig.get_supxlabel().split())
    assert "leaky_relu's median falls below sigmoid's although its ceiling" in caption
    assert "leaky_relu' = 1/100 for z <= 0" in caption and "relu's median is 0 from k = 1" in caption
    assert "dead" not in caption


def test_derivatives_beyond_float64_are_refused_in_one_line(tmp_path):
    """leaky_relu:1e309 has γ = 1e309, past float64: the plot was 'internal error (TypeError ... dtype('O'))'."""
    r = CliRunner().invoke(cli, ["plot", "derivatives", "-a", "leaky_relu:1e309", "-o", str(tmp_path / "d.png")])
    assert r.exit_code == 2 and "γ = sup|φ'| = 1.0e+309 is beyond float64's range" in r.output, r.output
    assert not (tmp_path / "d.png").exists()


def test_gradients_weight_text_is_never_evaluated(tmp_path):
    """-w went through sympy.nsimplify, which evaluates text: this ran os.system, then said 'internal error'."""
    marker = tmp_path / "pwned"
    r = CliRunner().invoke(cli, ["plot", "gradients", "-m", "0", "-o", str(tmp_path / "g.png"),
                                 "-w", f"__import__('os').system('touch {marker}')"])
    assert r.exit_code == 2 and r.stderr.startswith("symvg: error:") and r.stderr.count("\n") == 1, r.output
    assert not marker.exists() and not (tmp_path / "g.png").exists()


def test_gradients_tiny_weight_is_not_shown_as_zero():
    """|w| = 1e-300 was titled '|w| = 0' and labelled 'γ|w| = 0' (nsimplify drops it): γ|w| = 1e-300/4."""
    fig = plot.plot_gradients(layers=3, activations=("sigmoid",), weight="1e-300", envelope=False)
    assert "|w| = 0" not in fig.axes[0].get_title() and "1.0e-300" in fig.axes[0].get_title()
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any("γ|w| ≈ 2.5e-301" in t for t in labels), labels


def test_gradients_of_an_unbounded_activation_say_there_is_no_ceiling(tmp_path):
    """expr:z**2 (γ = ∞) said '(γ|w|)^k ... passes float64's largest value from depth 1': no float overflowed."""
    r = CliRunner().invoke(cli, ["plot", "gradients", "-m", "0", "-a", "expr:z**2", "-o", str(tmp_path / "g.png")])
    assert r.exit_code == 2 and "sup|φ'| is unbounded, so there is no ceiling" in r.stderr, r.output
    assert "float64" not in r.stderr


def test_gradients_below_float64_are_noted_not_dropped_silently():
    """(1/4·1e-300)^k is 2.5e-301 at k = 1 and below 4.9e-324 from k = 2: the line ended without a word."""
    fig = plot.plot_gradients(layers=3, activations=("sigmoid",), weight="1e-300", envelope=False)
    caption = fig._supxlabel.get_text()
    assert "below float64's smallest value (4.9e-324) from k = 2" in caption, caption


def test_phase_cells_without_a_finite_fixed_point_are_drawn_and_named():
    """expr:z**2: q ↦ 3σw²q² diverges from q0 = 1 for every σw² ≥ 0.5, so χ1 = ∞ in every cell; the plot was blank."""
    fig = plot.plot_phase("expr:z**2", n=5)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("χ1 = ∞ (no finite q*" in t and "25 of 25 cells" in t for t in labels), labels
    assert np.isfinite(fig.axes[0].collections[0].get_array()).all()
