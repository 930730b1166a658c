"""Diagnose four real training runs of a 10-layer MLP of width 32 (CPU, seconds, fixed seeds):

* ``sigmoid``: default init -- vanishing, layer against layer;
* ``relu``: He init -- healthy;
* ``tanh_small``: tanh with init std 0.01, at its first step -- every layer's gradient about 5e-12,
  alike layer against layer (first/last ≈ 0.7): vanishing *uniformly*, caught by the update ratio;
* ``tanh_big``: tanh with σw = 3 and lr 0.2 -- the loss blows up and the log reaches inf/nan:
  diagnosed up to the first non-finite value, whose step and layer are reported.

Plain SGD on synthetic regression data made here. Every step logs each weight layer's gradient
norm, bias-gradient norm, Frobenius and spectral norms, σw², σb² and the fraction of weights
near zero with :func:`symvg.logs.pytorch.collect_torch`; the logs are written as CSV and read back and
diagnosed exactly as ``symvg diagnose LOG.csv --lr LR`` would.

Run it (needs PyTorch: ``pip install torch``)::

    python examples/diagnose_mlp.py [OUTDIR]

then try ``symvg diagnose OUTDIR/sigmoid.csv --plot sigmoid.png``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from symvg import diagnose as dg
from symvg.views import diagnosis as diagnose_views
from symvg import logs
from symvg.logs import pytorch as torchlog

DEPTH, WIDTH, INPUTS = 10, 32, 16
STEPS, BATCH, LR = 100, 64, 0.05


def make_data(seed: int = 0):
    """A smooth nonlinear target of 16 Gaussian inputs; nothing downloaded."""
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1024, INPUTS, generator=g)
    a = torch.randn(INPUTS, generator=g) / INPUTS ** 0.5
    y = torch.sin(2 * x @ a).unsqueeze(1) + 0.1 * torch.randn(1024, 1, generator=g)
    return x, y


def make_mlp(activation: str, init: "str | float | None", seed: int = 0):
    """DEPTH linear layers with ``activation`` between them; init "he", a weight std times 1/√fan_in... see RUNS."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    act = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh}[activation]
    sizes = [INPUTS] + [WIDTH] * (DEPTH - 1) + [1]
    layers: list[nn.Module] = []
    for k, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        lin = nn.Linear(n_in, n_out)
        if init == "he":
            nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
            nn.init.zeros_(lin.bias)
        elif isinstance(init, tuple):  # ("std", s): N(0, s²); ("sigma_w", s): N(0, s²/fan_in); zero biases
            nn.init.normal_(lin.weight, std=init[1] if init[0] == "std" else init[1] / n_in ** 0.5)
            nn.init.zeros_(lin.bias)
        layers.append(lin)
        if k < DEPTH - 1:  # the output layer is linear
            layers.append(act())
    return nn.Sequential(*layers)


RUNS = {  # name: (activation, init, learning rate, steps)
    "sigmoid": ("sigmoid", None, LR, STEPS),
    "relu": ("relu", "he", LR, STEPS),
    "tanh_small": ("tanh", ("std", 0.01), LR, 1),
    "tanh_big": ("tanh", ("sigma_w", 3.0), 0.2, 40),
}


def train_and_log(activation: str, init: "str | tuple | None", lr: float, steps: int, path: Path) -> Path:
    """Train with SGD, logging every step's per-layer norms to the CSV ``path``."""
    import torch

    x, y = make_data()
    model = make_mlp(activation, init)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = torch.nn.MSELoss()
    g = torch.Generator().manual_seed(1)
    records = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 64×32 matrices: threads cost more than they save, and runs repeat exactly
    try:
        for step in range(steps):
            idx = torch.randint(0, len(x), (BATCH,), generator=g)
            # one forward + backward; the gradients stay in .grad for the optimiser
            records += torchlog.collect_torch(model, loss_fn, (x[idx], y[idx]), step=step,
                                        activation=[activation] * (DEPTH - 1) + [None])
            opt.step()
    finally:
        torch.set_num_threads(threads)
    logs.write_csv(records, path)
    return path


def main(outdir: "str | Path") -> dict[str, dg.Diagnosis]:
    """Train every run of RUNS, write ``<name>.csv`` in ``outdir``, return the diagnoses by name."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    return {name: dg.diagnose(logs.read_log(train_and_log(act, init, lr, steps, out / f"{name}.csv")), lr=lr)
            for name, (act, init, lr, steps) in RUNS.items()}


if __name__ == "__main__":
    outdir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="symvg-diagnose-"))
    for d in main(outdir).values():
        print(diagnose_views.render_text(d))
    print(f"logs written to {outdir}")
