"""From "σ' ≤ 1/4" to "why He init works": wide random networks, step by step.

Run:  python examples/wide_networks.py      (about 10 s)

1. A chain of sigmoids multiplies the gradient by σ'(z)·w per layer and σ' ≤ 1/4: with |w| ~ 1
   it shrinks by ≥ 4× per layer. But real layers are wide, weights are random: what matters is
   the *average* squared factor, χ1 = σw²·E[φ'(z)²] with z ~ N(0, q*) (mean field).
2. q* is itself set by the weights: q ↦ σw²·E[φ(√q u)²] + σb² settles at q*.
3. χ1 < 1: gradients vanish like χ1^depth (order); χ1 > 1: they explode (chaos); χ1 = 1 is the
   edge of chaos. For ReLU, E[relu'(z)²] = 1/2 for every q, so χ1 = σw²/2 and σw² = 2 is
   critical at any bias: that is He initialisation, Var w = 2/fan_in.
4. A random width-256 network confirms it.
"""

from __future__ import annotations

import sympy as sp

from symvg.theory import meanfield as mf
from symvg.symbolic.activations import get


def _show(c: mf.CriticalPoint) -> str:
    if not c.exists:
        return f"none (q diverges from {c.diverges_from:.4g})" if c.diverges_from else "none"
    return str(c.sigma_w2) if c.exact else f"{c.sigma_w2:.6g}"


def main() -> None:
    print("1. The single-path bound")
    print(f"   sup σ' = {get('sigmoid').gamma}, sup tanh' = {get('tanh').gamma}, sup relu' = {get('relu').gamma}")
    print(f"   20 sigmoid layers with |w| = 1: gradient ≤ (1/4)^20 = {sp.Rational(1, 4) ** 20} ≈ {0.25 ** 20:.3g}")

    print("\n2. Wide random layers (σw² = 1, σb² = 0): the average squared factor χ1 per layer")
    for name in ("sigmoid", "tanh", "relu"):
        r = mf.mean_field(name, 1, 0)
        chi = float(r.chi1)
        print(f"   {name:<8} q* = {str(r.q_star) if r.exact else f'{r.q_star:.4g}':<8} χ1 = {chi:<8.4g} χ1^20 = {chi ** 20:<10.3g} {r.verdict}")

    print("\n3. The σw² that makes χ1 = 1 (σb² = 0 and 0.05), from inputs of variance 1")
    for name in ("relu", "leaky_relu:0.01", "linear", "tanh", "sigmoid", "gelu"):
        c0, c1 = mf.critical_sigma_w2(name, 0), mf.critical_sigma_w2(name, "0.05")
        print(f"   {name:<16} σw²* = {_show(c0):<12} at σb² = 0.05: {_show(c1)}")
    print("   gelu: χ1 stays below 1 until the variance map diverges, so there is no order/chaos boundary")
    print("   relu: E[relu(√q u)²] = q/2, E[H(u)²] = 1/2 ⇒ χ1 = σw²/2 ⇒ σw² = 2: He init (Var w = 2/fan_in)")
    print("   linear: σw² = 1 (1/fan_in); the backward pass wants 1/fan_out; Xavier takes 2/(fan_in + fan_out)")

    print("\n4. PyTorch's calculate_gain, derived or explained")
    for rule in mf.init_rules():
        crit = rule.critical_sigma_w2
        crit_s = str(crit) if isinstance(crit, sp.Basic) and len(str(crit)) < 12 else f"{float(crit):.4g}"
        print(f"   {rule.name:<11} gain = {str(rule.gain):<8} gain² ≈ {float(rule.gain_squared):<7.4g} "
              f"critical σw² = {crit_s:<12} χ1 at gain² = {float(rule.chi1_at_gain):.4g}"
              f"{'  (derived)' if rule.derived else ''}")

    print("\n5. A random width-256, depth-16 ReLU network at He init, and slightly off it")
    for sw in ("2", "1.6"):
        s = mf.simulate("relu", sw, 0, width=256, depth=16, batch=16, seeds=6, jacobian_inputs=0)
        print(f"   σw² = {sw}: gradient ratio per layer {s.chi1_fit:.4f} ± {s.chi1_stderr:.4f} "
              f"(mean field χ1 = {s.chi1:g}); after 15 layers {s.grad_sq[0]:.3g} vs χ1^15 = {s.chi1 ** 15:.3g}")
        print(f"              a fit on log norms would say {s.chi1_logfit:.4f}: low by the O(1/width) Jensen gap "
              f"{s.log_gap:.1e} per layer")


if __name__ == "__main__":
    main()
