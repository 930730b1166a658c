"""The view protocol on every result of the matrices modules: as_dict (JSON), __str__, and a notebook view."""

from __future__ import annotations

import json

import numpy as np
import pytest

from symvg.theory import clipping, matrices, rnn, skipbn, spectrum


def _results():
    d = matrices.derive_vector((3, 4, 2), "tanh", 1)
    rng = np.random.default_rng(0)
    ws = [rng.standard_normal((4, 3)), rng.standard_normal((2, 4))]
    bp = matrices.backprop(ws, None, rng.standard_normal(3), rng.standard_normal(2), "tanh")
    sr = spectrum.spectrum("tanh", width=8, depth=3, samples=2, at=(1,))
    return {
        "MatrixFactor": d.factors[0], "VectorDerivation": d, "Backprop": bp,
        "NormBounds": matrices.norm_bounds(ws, "relu", 1.0),   # relu: φ'_min = 0, log10 lower bounds are −inf
        "Theory": sr.theory, "AtDepth": sr.at[0], "SpectrumResult": sr,
        "RNNDerivation": rnn.derive_rnn(8, 0, 4), "PMBCondition": rnn.pmb_condition("tanh", "1/2"),
        "RNNSimulation": rnn.simulate_rnn("tanh", 4, 5, 0.9, "gaussian", 1.0, 0),
        "Clipped": clipping.clip_by_norm([30, 40], 5, [1, 0]),
        "SkipRun": skipbn.simulate_skips("linear", 4, 4, 2, samples=2), "BNRun": skipbn.simulate_batchnorm("linear", 4, 3, 4),
        "BNFactor": skipbn.bn_factor([1, 2, 3, 6]),
    }


def test_every_result_has_json_text_and_a_notebook_view():
    results = _results()
    for name, r in results.items():
        assert type(r).__name__ == name
        json.dumps(r.as_dict(), allow_nan=False)       # JSON-ready: no NaN/inf leaks, no SymPy objects
        assert str(r).strip() and "object at 0x" not in str(r), name
        views = [getattr(r, m)() for m in ("_repr_markdown_", "_repr_latex_") if hasattr(r, m)]
        assert views and all(isinstance(v, str) and v.strip() for v in views), name
    assert results["NormBounds"].as_dict()["log10_lower"][0] is None
    nb = results["NormBounds"]  # a 0 lower bound is log10 −∞: said so, never the float's "-inf"
    assert all("inf" not in t and "−∞ (bound 0)" in t for t in (str(nb), nb._repr_markdown_()))
    # the notebook tables carry one row per recorded depth / per layer
    md = results["SpectrumResult"]._repr_markdown_()
    assert sum(line.startswith("| 1 ") or line.startswith("| 3 ") for line in md.splitlines()) == 2
    rows = [line for line in results["Backprop"]._repr_markdown_().splitlines() if line[:3] in ("| 0", "| 1", "| 2")]
    assert len(rows) == 3                                                     # ‖δ_k‖ for k = 0, 1, 2
    latex = results["VectorDerivation"]._repr_latex_()
    assert latex.startswith("$$\\begin{aligned}") and latex.endswith("\\end{aligned}$$")


@pytest.mark.parametrize("values,eps", [([1, 2, 3, 6], 0), ([0, 1, 5], "1/4")])
def test_bn_factor_eigenvalues_are_those_of_its_matrix(values, eps):
    # exact eigenvalues 0, ε/σ³, 1/σ against NumPy's eigensolver on the exact matrix's floats
    f = skipbn.bn_factor(values, eps)
    ev = sorted(float(k) for k, n in f.eigenvalues.items() for _ in range(n))
    np.testing.assert_allclose(ev, np.linalg.eigvalsh(np.array(f.jacobian.tolist(), dtype=float)), atol=1e-13)
