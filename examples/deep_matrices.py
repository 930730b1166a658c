"""From "σ' ≤ 1/4" to a 50-layer tanh network that trains: the scalar chain, the vector chain, the spectrum.

Run:  python examples/deep_matrices.py            (under a minute on a laptop CPU; --quick for a few seconds)

1. σ'(z) ≤ 1/4, proved, so a sigmoid chain's gradient is at most (|w|/4)^N.
2. The same chain rule for width-n layers: δ_k = W_{k+1}ᵀ D_{k+1} δ_{k+1}, and its spectral-norm bound.
3. A 50-layer tanh network at the critical point χ1 = 1: Gaussian weights spread J's singular values
   over many decades, orthogonal weights keep them together (Pennington, Schoenholz & Ganguli 2017).
4. An exploding RNN gradient and gradient clipping: the step along the exploding direction is capped.
5. A short PyTorch run (CPU): PyTorch's default init (σw² = 1/3, χ1 < 1) leaves the first layers without
   gradient; orthogonal weights at the critical point train. Skipped, with a note, when torch is absent.
"""

from __future__ import annotations

import math
import sys

import sympy as sp

from symvg.theory import meanfield as mf
from symvg.symbolic.activations import get
from symvg.symbolic.bounds import depth_bound
from symvg.symbolic.chain import Chain
from symvg.theory.clipping import clip_by_norm
from symvg.symbolic.derive import derive
from symvg.theory.matrices import derive_vector
from symvg.theory.rnn import simulate_rnn
from symvg.theory.spectrum import spectrum

DEPTH, WIDTH, SIGMA_B2 = 50, 64, "0.01"


def scalar_story() -> None:
    print(f"# 1. sup|σ'| = {get('sigmoid').gamma}, proved; the scalar chain, depth 3:")
    for f in derive(Chain(3, "sigmoid"), wrt=1).factors:
        print(f"     {f}")
    b = depth_bound("sigmoid", 1, 10)
    print(f"   with |w| = 1 every layer multiplies by at most 1/4: depth 10 gives <= {b.bound} "
          f"≈ {float(b.bound):.3g}\n")


def vector_story() -> None:
    print("# 2. width-n layers: the same chain rule with matrices")
    print("   " + str(derive_vector((4, 4, 4, 4), "tanh", wrt=1)).replace("\n", "\n   "))
    print("   ‖δ_k‖ <= ∏ γ‖W_j‖₂ · ‖δ_N‖ (γ = 1 for tanh): now the *spectrum* of the product decides")
    print()


def spectrum_story(width: int, samples: int) -> dict:
    cp = mf.critical_sigma_w2("tanh", SIGMA_B2)
    sw = repr(float(cp.sigma_w2))
    print(f"# 3. J = D_L W_L ⋯ D_1 W_1, tanh, depth {DEPTH}, width {width}, critical σw² = {float(sw):.4f}, "
          f"σb² = {SIGMA_B2}")
    out = {}
    for init in ("gaussian", "orthogonal"):
        r = spectrum("tanh", width=width, depth=DEPTH, init=init, sigma_w2=sw, sigma_b2=SIGMA_B2, samples=samples)
        a = r.at[-1]
        lo, med, hi = a.log10_quantiles[1], a.log10_quantiles[3], a.log10_quantiles[5]
        print(f"   {init:10}: log10 σ 5%/50%/95% = {lo:6.2f} / {med:6.2f} / {hi:6.2f}, "
              f"spread m2/m1²−1 = {a.spread:7.3g} (PSG predicts {r.theory.spread:.3g})"
              + ("" if a.resolved else "; the smallest σ are below float64's resolution"))
        out[init] = a
    print()
    return {"sigma_w2": float(sw), "gaussian": out["gaussian"], "orthogonal": out["orthogonal"]}


def _net(torch, init: str, sigma_w2: float):
    layers = []
    for i in range(DEPTH):
        lin = torch.nn.Linear(2 if i == 0 else WIDTH, WIDTH, dtype=torch.float64)
        if init == "orthogonal":
            torch.nn.init.orthogonal_(lin.weight, gain=math.sqrt(sigma_w2))
            torch.nn.init.normal_(lin.bias, std=math.sqrt(float(SIGMA_B2)))
        layers += [lin, torch.nn.Tanh()]
    return torch.nn.Sequential(*layers, torch.nn.Linear(WIDTH, 1, dtype=torch.float64))


def training_story(sigma_w2: float, steps: int) -> dict | None:
    try:
        import torch
    except ImportError:
        print("# 5. skipped: PyTorch is not installed (pip install torch)")
        return None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only contend (10x slower on a shared machine)
    try:
        return _train(torch, sigma_w2, steps)
    finally:
        torch.set_num_threads(threads)


def _train(torch, sigma_w2: float, steps: int) -> dict:
    torch.manual_seed(0)
    x = torch.rand(256, 2, dtype=torch.float64) * 4 - 2
    y = torch.sin(2 * x[:, :1]) * torch.cos(x[:, 1:])
    print(f"# 5. PyTorch, {DEPTH} tanh layers of width {WIDTH}, SGD+momentum, {steps} steps, y = sin(2x1)cos(x2)")
    results = {}
    for init in ("default", "orthogonal"):
        torch.manual_seed(1)
        net = _net(torch, init, sigma_w2)
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        first = None
        for step in range(steps):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(net(x), y)
            loss.backward()
            if first is None:
                first = (loss.item(), net[0].weight.grad.norm().item())
            opt.step()
        results[init] = {"loss0": first[0], "grad0": first[1], "loss": loss.item()}
        label = "PyTorch default (σw² = 1/3)" if init == "default" else f"orthogonal, σw² = {sigma_w2:.3f}"
        print(f"   {label:28}: first-layer ‖∂L/∂W1‖ at init {first[1]:.2e}; "
              f"loss {first[0]:.4f} → {loss.item():.4f}")
    return results


def clipping_story() -> dict:
    """An exploding RNN gradient, clipped: the step along the exploding direction is capped at τ."""
    sim = simulate_rnn("linear", width=8, steps=40, spectral_radius=1.2, init="orthogonal")
    grow = sp.Rational(6, 5) ** 40          # ‖∂h_40/∂h_0‖ for W = 1.2·O, exactly
    print(f"# 4. a linear RNN with W = 1.2·O over 40 steps: ‖∂h_40/∂h_0‖ = 1.2^40 ≈ {float(grow):.4g} "
          f"(simulated: 10^{sim.log10_norms[-1]:.4f})")
    c = clip_by_norm([grow, sp.Rational(1, 2)], 1, direction=[1, 0])
    print(f"   gradient (1.2^40, 1/2) clipped at τ = 1: scale {float(c.scale):.3g}, step along the exploding "
          f"direction {float(c.step_along):.4g} → {float(c.clipped_step_along):.6f}, direction kept")
    print()
    return {"simulated_log10": sim.log10_norms[-1], "clipped_step": c.clipped_step_along}


def main(quick: bool = False) -> dict:
    scalar_story()
    vector_story()
    spec = spectrum_story(64 if quick else 256, 2 if quick else 4)
    clipped = clipping_story()
    train = training_story(spec["sigma_w2"], 20 if quick else 200)
    return {"spectrum": spec, "clipping": clipped, "training": train}


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])
