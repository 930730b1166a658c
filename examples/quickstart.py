"""symvg in five minutes: derive a chain, prove its bound, put numbers in, watch it vanish.

Run:  python examples/quickstart.py
"""

from __future__ import annotations

from symvg import Chain, derive
from symvg.views import derivation
from symvg.symbolic.activations import get
from symvg.symbolic.bounds import depth_bound, gradient_bound
from symvg.engines.numeric import gradients


def main() -> dict:
    # 1. The chain rule for a 3-layer sigmoid chain, factor by factor.
    d = derive(Chain(3, "sigmoid"), wrt=1)
    print(derivation.text(d))

    # 2. Each sigmoid factor is at most 1/4 -- proved by SymPy, with the proof table.
    s = get("sigmoid").supremum
    print("sup|σ'| =", s.value, "at z in", s.argmax)
    print(s.explain())

    # 3. Exact numbers: with rational inputs the gradient is an exact SymPy number.
    values = {"x": 1, "y": 0, "w1": 1, "w2": 1, "w3": 1, "b1": 0, "b2": 0, "b3": 0}
    exact = d.evaluate(values).value
    bound = gradient_bound(d).value(values)
    print(f"dL/dw1 = {float(exact):.6g}  <=  bound {float(bound):.6g}")

    # 4. How fast the bound shrinks with depth, and when it drops below 1e-6.
    law = depth_bound("sigmoid", weight=1, layers=20, tol="1e-6")
    print(f"(1/4)^20 = {law.bound}; below 1e-6 from depth {law.depth_to_vanish}")

    # 5. The same gradient numerically, for every layer at once, on many samples.
    import numpy as np

    rng = np.random.default_rng(0)
    g = gradients(Chain(20, "sigmoid"), rng.normal(size=10_000), rng.normal(size=10_000),
                  rng.normal(size=20), rng.normal(size=20))
    medians = np.median(np.abs(g), axis=1)
    print("median |dL/dw_k| for k = 1, 10, 20:", [f"{medians[k]:.2e}" for k in (0, 9, 19)])
    return {"exact": exact, "bound": bound, "depth_to_vanish": law.depth_to_vanish, "medians": medians}


if __name__ == "__main__":
    main()
