"""ReLU against sigmoid, exactly: no 1/4 per layer, but inactive units -- and leaky ReLU's floor.

Run:  python examples/remedy_relu.py
"""

from symvg.theory import relu
from symvg.symbolic.regime import regime

N = 10

print(f"# the bound per layer, |w| = 1, depth {N}")
for name in ("sigmoid", "relu", "leaky_relu:0.01"):
    r = regime(name, weight=1, layers=N, tol="1e-6")
    print(f"{r.activation:34} γ|w| = {str(r.factor):5} floor = {str(r.floor):6} "
          f"bound at {N} = {r.bound}  ({r.status})")

print("\n# ReLU'(0) is a convention")
for conv, value in relu.conventions().items():
    print(f"  {conv:8} ReLU'(0) = {value}")

print("\n# units inactive for one input (z <= 0), z ~ N(μ, 1); a dead unit is inactive for every input")
for mu in (0, "0.5", -1):
    p = relu.inactive_probability(mu)
    print(f"  μ = {str(mu):4} P(inactive) = {p} ≈ {float(p.evalf(30)):.6f}")

print(f"\n# a depth-{N} ReLU path passes a gradient only if all {N} units are active")
p = relu.alive_path_probability(N)
mc = relu.simulate_alive_path(N, samples=400_000, seed=0)
print(f"  exact 2^-{N} = {p} ≈ {float(p):.6g}; Monte Carlo {mc.estimate:.6g} over {mc.samples} chains "
      f"({mc.z_score:+.2f} standard errors)")

print("\n# leaky ReLU never goes to zero: the floor ε^N·∏|w|")
ws = [2, "0.5", 3, 1, "0.8", 1, 1, 2, 1, "1.5"]
print(f"  ε = 0.01, w = {ws}: floor = {relu.leaky_floor(ws, '0.01')}")
