"""Diagnose two real training runs: a deep sigmoid MLP (vanishing) and a ReLU + He one (healthy).

Both networks have 10 weight layers of width 32 and train for a few seconds on CPU with
plain SGD on synthetic regression data made here (fixed seeds, so the numbers repeat).
Every step logs each weight layer's gradient norm, weight norm and fraction of weights near
zero with :func:`symvg.diagnose.collect_torch`; the logs are written as CSV and then read
back and diagnosed exactly as ``symvg diagnose LOG.csv`` would.

Run it (needs PyTorch: ``pip install torch``)::

    python examples/diagnose_mlp.py [OUTDIR]

then try ``symvg diagnose OUTDIR/sigmoid.csv --plot sigmoid.png``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from symvg import diagnose as dg

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


def make_mlp(activation: str, he_init: bool, seed: int = 0):
    """DEPTH linear layers with ``activation`` between them; He (kaiming_normal_) init if asked."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    act = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU}[activation]
    sizes = [INPUTS] + [WIDTH] * (DEPTH - 1) + [1]
    layers: list[nn.Module] = []
    for k, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        lin = nn.Linear(n_in, n_out)
        if he_init:
            nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
            nn.init.zeros_(lin.bias)
        layers.append(lin)
        if k < DEPTH - 1:  # the output layer is linear
            layers.append(act())
    return nn.Sequential(*layers)


def train_and_log(activation: str, he_init: bool, path: Path) -> Path:
    """Train with SGD, logging every step's per-layer norms to the CSV ``path``."""
    import torch

    x, y = make_data()
    model = make_mlp(activation, he_init)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    loss_fn = torch.nn.MSELoss()
    g = torch.Generator().manual_seed(1)
    records = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 64×32 matrices: threads cost more than they save, and runs repeat exactly
    try:
        for step in range(STEPS):
            idx = torch.randint(0, len(x), (BATCH,), generator=g)
            # one forward + backward; the gradients stay in .grad for the optimiser
            records += dg.collect_torch(model, loss_fn, (x[idx], y[idx]), step=step,
                                        activation=[activation] * (DEPTH - 1) + [None])
            opt.step()
    finally:
        torch.set_num_threads(threads)
    dg.write_csv(records, path)
    return path


def main(outdir: "str | Path") -> tuple[dg.Diagnosis, dg.Diagnosis]:
    """Train both networks, write ``sigmoid.csv`` and ``relu.csv`` in ``outdir``, return both diagnoses."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    runs = [("sigmoid", False), ("relu", True)]
    return tuple(dg.diagnose(dg.read_log(train_and_log(act, he, out / f"{act}.csv"))) for act, he in runs)


if __name__ == "__main__":
    outdir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="symvg-diagnose-"))
    for d in main(outdir):
        print(dg.render_text(d))
    print(f"logs written to {outdir}")
