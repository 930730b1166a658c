"""render: golden files (the spec, read by eye), LaTeX that compiles, JSON that validates, determinism."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import jsonschema
import pytest
import sympy as sp

from symvg.views import bounds as bviews, derivation
from symvg.symbolic.bounds import depth_bound
from symvg.symbolic.chain import Chain
from symvg.symbolic.derive import derive
from symvg.errors import InvalidValueError

GOLDEN = Path(__file__).parent / "golden"
SCHEMAS = Path(derivation.__file__).parent / "schemas"
VALUES = {"x": 1, "y": 0, "w1": 1, "w2": 1, "w3": 1, "b1": 0, "b2": 0, "b3": 0}
RELU_VALUES = {"x": 2, "y": 0, "w1": "0.5", "w2": 3, "w3": 2, "b1": 0, "b2": "0.25", "b3": 0}


def sigmoid3():
    return derive(Chain(3, "sigmoid"), wrt=1)


def relu3():
    return derive(Chain(3, "relu"), wrt=1)


def _json(d, values=None):
    return json.dumps(derivation.to_dict(d, values), indent=2, ensure_ascii=False) + "\n"


# name -> how the golden file is produced; regenerate with SYMVG_REGOLD=1 and read the diff.
CASES = {
    "sigmoid3.txt": lambda: derivation.text(sigmoid3()),
    "sigmoid3.unicode.txt": lambda: derivation.unicode(sigmoid3()),
    "sigmoid3.tex": lambda: derivation.latex(sigmoid3()) + "\n",
    "sigmoid3.standalone.tex": lambda: derivation.latex(sigmoid3(), standalone=True),
    "sigmoid3.md": lambda: derivation.markdown(sigmoid3()),
    "sigmoid3.json": lambda: _json(sigmoid3()),
    "sigmoid3.values.txt": lambda: derivation.text(sigmoid3(), VALUES),
    "sigmoid3.values.unicode.txt": lambda: derivation.unicode(sigmoid3(), VALUES),
    "sigmoid3.values.tex": lambda: derivation.latex(sigmoid3(), VALUES) + "\n",
    "sigmoid3.values.md": lambda: derivation.markdown(sigmoid3(), VALUES),
    "sigmoid3.values.json": lambda: _json(sigmoid3(), VALUES),
    "relu3.values.txt": lambda: derivation.text(relu3(), RELU_VALUES),
    "tanh20.txt": lambda: derivation.text(derive(Chain(20, "tanh"), wrt=3)),
    "bound.sigmoid.txt": lambda: bviews.render_bound(depth_bound("sigmoid", 1, layers=10, tol="1e-6"), "text") + "\n",
    "bound.relu.tex": lambda: bviews.render_bound(depth_bound("relu", 2, layers=30, tol="1e-6"), "latex") + "\n",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name):
    got = CASES[name]()
    path = GOLDEN / name
    if os.environ.get("SYMVG_REGOLD"):
        path.write_text(got, encoding="utf-8")
    assert got == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


@pytest.mark.parametrize("view", [derivation.text, derivation.unicode, derivation.latex, derivation.markdown, derivation.to_dict])
def test_deterministic(view):
    assert view(sigmoid3(), VALUES) == view(derive(Chain(3, "sigmoid"), wrt=1), dict(VALUES))


def test_text_walks_the_chain_factor_by_factor():
    out = derivation.text(sigmoid3())
    assert "dh3/dz3 = sigmoid'(z3) = exp(-z3)/(1 + exp(-z3))**2" in out
    assert "gamma = sup|sigmoid'(z)| = 1/4, at z = 0" in out
    assert out.isascii()


def test_residual_factor_is_named_then_expanded_never_repeated():
    out = derivation.text(derive(Chain(3, "tanh", residual=True), wrt=1))
    local = [line.strip() for line in out.splitlines() if line.strip().startswith("dh3/dh2 =")]
    assert local == ["dh3/dh2 = 1 + w3*tanh'(z3) = w3*(1 - tanh(z3)**2) + 1"]
    # every local-derivative line states each distinct expression once
    for line in out.split("local derivatives:")[1].split("bound")[0].strip().splitlines():
        parts = [p.strip().strip("()") for p in line.split(" = ")[1:]]
        assert len(parts) == len(set(parts)), line
    assert "(1 + w3*tanh'(z3)) * (1 + w2*tanh'(z2)) * tanh'(z1)" in out


def test_exact_values_stay_exact():
    out = derivation.text(relu3(), RELU_VALUES)
    assert out.rstrip().endswith("dL/dw1  = 156")  # 13 * 1 * 2 * 1 * 3 * 1 * 2


def test_json_validates_against_schema():
    schema = json.loads((SCHEMAS / "derive.schema.json").read_text())
    for d, values in [(sigmoid3(), None), (sigmoid3(), VALUES), (derive(Chain(14, "relu", residual=True), 2), None)]:
        data = json.loads(json.dumps(derivation.to_dict(d, values)))
        jsonschema.validate(data, schema)
        assert {"layers", "activation", "wrt", "factors", "product", "latex"} <= data.keys()
    assert "closed_form" not in derivation.to_dict(derive(Chain(13, "relu")))


def test_sweep_json_validates_against_schema():
    schema = json.loads((SCHEMAS / "sweep.schema.json").read_text())
    cols = [[depth_bound(a, "0.5", layers=n, tol="1e-6") for n in (1, 5, 2000)] for a in ("sigmoid", "relu", "elu")]
    data = json.loads(bviews.render_sweep(cols, "json"))
    jsonschema.validate(data, schema)
    assert data["activations"][0]["bound"][-1] == "6.607e-1807"  # (1/8)^2000 = 10^-1806.18: no float underflow


def test_deep_chain_is_abbreviated_quickly_and_says_so():
    d = derive(Chain(2000, "sigmoid"), wrt=1)
    t = time.perf_counter()
    outs = [derivation.text(d), derivation.unicode(d), derivation.latex(d, standalone=True), derivation.markdown(d)]
    assert time.perf_counter() - t < 20
    for out in outs:
        assert "layers 1997 down to 4 have the same form and are omitted; depth 2000" in out
        assert len(out) < 10_000


def test_jupyter_reprs_are_valid():
    d = sigmoid3()
    tex = d._repr_latex_()
    assert tex.startswith("$$\\begin{aligned}") and tex.endswith("\\end{aligned}$$")
    assert tex.count("\\begin{") == tex.count("\\end{")
    md = d._repr_markdown_()
    assert md.count("$$") % 2 == 0 and md.count("\\begin{aligned}") == md.count("\\end{aligned}") == 5


def test_bad_environment_and_format_are_refused():
    with pytest.raises(InvalidValueError, match="environment must be one of"):
        derivation.latex(sigmoid3(), environment="equation")
    with pytest.raises(InvalidValueError, match="format must be one of"):
        bviews.render_bound(depth_bound("tanh"), "html")


def _pdflatex(tmp_path, source: str) -> None:
    tex = tmp_path / "doc.tex"
    tex.write_text(source, encoding="utf-8")
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 1000


needs_pdflatex = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")


@needs_pdflatex
@pytest.mark.parametrize("chain, wrt, values", [(Chain(3, "sigmoid"), 1, VALUES), (Chain(2000, "sigmoid"), 1, None),
                                                (Chain(4, "relu", residual=True), 2, None),
                                                (Chain(2, ("leaky_relu:0.1", "elu")), 1, None),
                                                (Chain(2, "expr:2*z"), 1, None)])  # sup|φ'| on S.Reals: \mathbb{R}
def test_standalone_latex_compiles(tmp_path, chain, wrt, values):
    _pdflatex(tmp_path, derivation.latex(derive(chain, wrt), values, standalone=True))


@needs_pdflatex
def test_jupyter_latex_and_bound_latex_compile(tmp_path):
    body = sigmoid3()._repr_latex_().replace("$$", "")
    bound = bviews.render_bound(depth_bound("sigmoid", 1, layers=2000, tol="1e-6"), "latex")
    _pdflatex(tmp_path, "\\documentclass{article}\\usepackage{amsmath}\\begin{document}\n"
                        f"\\[{body}\\]\n{bound}\n\\end{{document}}\n")


def test_every_catalogue_activation_has_a_name_in_every_target():
    from symvg.symbolic.activations import names
    from symvg.views.notation import LATEX, NAMES, TARGETS, TEXT, UNICODE

    assert set(NAMES) == set(names())
    for notation in (TEXT, UNICODE, LATEX):
        assert notation.target in TARGETS
        assert all(notation.name(n) not in ("", notation.phi) for n in names())
    assert LATEX.name("expr:z**3") == r"\varphi" and UNICODE.name("expr:z**3") == "φ"


@pytest.mark.parametrize("name, tex, uni", [("erf", r"\operatorname{erf}'", "erf'"),
                                            ("selu", r"\operatorname{SELU}'", "SELU'")])
def test_erf_and_selu_print_by_name(name, tex, uni):
    d = derive(Chain(1, name))
    assert tex + r"\left(z_{1}\right)" in derivation.latex(d) and r"\varphi" not in derivation.latex(d)
    assert uni + "(z₁)" in derivation.unicode(d) and "φ'(z" not in derivation.unicode(d)


def test_docs_outputs_are_what_the_views_print():
    """docs/outputs.md shows the golden files and one sweep; every unabridged block is printed as shown."""
    import re

    docs = (Path(__file__).parents[1] / "docs" / "outputs.md").read_text(encoding="utf-8")
    cols = [[depth_bound(a, "0.9", layers=n, tol="1e-6") for n in range(1, 51, 7)] for a in ("sigmoid", "tanh", "relu")]
    printed = "".join(p.read_text(encoding="utf-8") for p in sorted(GOLDEN.iterdir())) + bviews.render_sweep(cols)
    blocks = [b for b in re.findall(r"```[a-z]*\n(.*?)```", docs, re.S) if "…" not in b and not b.startswith("{")]
    assert len(blocks) >= 4
    assert [b[:40] for b in blocks if b not in printed] == []


V2 = {"x": 1, "y": 0, "w1": 1, "w2": 1, "b1": 0, "b2": 0}


def test_json_value_beyond_float64_is_null_or_noted_not_an_error():
    """A linear chain at x = 1e400 has dL/dw1 = 2·x·x = 2e800 (w = 1, b = 0, y = 0): float() gave inf and
    json.dumps refused it (internal error); the sigmoid chain's e^(-1e400) has log10 ≈ -4.34294e399 (= -1e400/ln 10),
    itself beyond float64, so its note must not say -inf."""
    schema = json.loads((SCHEMAS / "derive.schema.json").read_text())
    big = json.loads(json.dumps(derivation.to_dict(derive(Chain(2, "linear")), dict(V2, x="1e400")), allow_nan=False))
    jsonschema.validate(big, schema)
    assert big["value"] == str(2 * 10**800) and big["value_float"] is None and "800.301" in big["value_note"]
    from symvg.magnitude import range_note
    assert range_note("value", sp.exp(-sp.Integer(10) ** 400), 0.0).endswith("its log10 in 'log10_value' = -4.34294e+399")
    assert "value_note" not in derivation.to_dict(derive(Chain(2, "sigmoid")), V2)
