"""Skip connections, exactly: ∏(1 + w_jφ'(z_j)) expanded into paths; the identity path is 1.

Run:  python examples/remedy_residual.py
"""

from symvg.symbolic.chain import Chain
from symvg.symbolic.derive import derive
from symvg.theory.residual import derive_jacobian, path_expansion, residual_bounds

e = path_expansion(3)
print("# the path expansion of dh3/dh0 (φ' left abstract)")
print(e)

print("\n# with tanh, dh3/dh1 equals derive(Chain(3, 'tanh', residual=True), 1)'s residual factors:")
ours = path_expansion(3, 1).with_activation("tanh").expanded
print(f"  paths: {ours}")
print(f"  derive: {derive_jacobian(Chain(3, 'tanh', residual=True), 1)}")

print("\n# bounds for sigmoid, |w| = 1, depth 20: residual [∏(1 − γ|w|), ∏(1 + γ|w|)] vs plain ∏ γ|w|")
b = residual_bounds("sigmoid", [1] * 20)
print(f"  residual lower (3/4)^20 = {float(b.lower):.6g}, upper (5/4)^20 = {float(b.upper):.6g}; "
      f"plain (1/4)^20 = {float(b.plain):.6g}")

print("\n# the identity path survives dead units: ReLU, every z_j < 0")
vals = {"x": 1, "y": 0, **{f"w{j}": 1 for j in range(1, 5)}, **{f"b{j}": -100 for j in range(1, 5)}}
chain = Chain(4, "relu", residual=True)
ev = derive(chain, 1).evaluate(vals)
res = [v for v, f in zip(ev.factors, derive(chain, 1).factors) if f.kind == "residual"]
print(f"  residual dh4/dh1 factors = {res}, product = {res[0] * res[1] * res[2]}")
print(f"  plain chain dL/dw1 = {derive(Chain(4, 'relu'), 1).evaluate(vals).value}")
