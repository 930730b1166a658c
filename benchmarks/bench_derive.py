"""Structured derivation vs naive ``sympy.diff`` of the nested loss: time per depth, as a ratio table.

    python benchmarks/bench_derive.py            # depths 10, 100, 1000, 2000 (+ naive where it finishes)
    python benchmarks/bench_derive.py --quick    # seconds; tests/test_examples.py runs it

symvg's time is ``derive(chain, 1)`` plus building the product (everything the CLI needs). The
naive time is ``sympy.diff(chain.nested(), w1)``; it is tried at growing depths and given up
once one call exceeds the budget, since it grows much faster than linearly.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

import sympy as sp

from symvg import Chain, derive
from symvg.symbolic.derive import _derive


def structured(depth: int, activation: str) -> float:
    _derive.cache_clear()  # time the derivation, not the cache
    t = time.perf_counter()
    d = derive(Chain(depth, activation), 1)
    _ = d.product
    return time.perf_counter() - t


def _naive(depth: int, activation: str, out: "mp.Queue[float | str]") -> None:
    t = time.perf_counter()
    c = Chain(depth, activation)
    try:
        sp.diff(c.nested(), c.w(1))
    except RecursionError:
        out.put("RecursionError")
        return
    out.put(time.perf_counter() - t)


def naive(depth: int, activation: str, budget: float) -> float | str | None:
    """Seconds for naive diff, the error that stopped it, or None past ``budget`` (in a child process)."""
    q: "mp.Queue[float]" = mp.Queue()
    p = mp.Process(target=_naive, args=(depth, activation, q))
    p.start()
    p.join(budget)
    if p.is_alive():
        p.terminate()
        p.join()
        return None
    return q.get() if not q.empty() else None


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--activation", default="sigmoid")
    ap.add_argument("--quick", action="store_true", help="small depths, short naive budget")
    ap.add_argument("--budget", type=float, default=60.0, help="seconds allowed per naive diff")
    a = ap.parse_args(argv)
    depths = [5, 10, 20] if a.quick else [10, 20, 30, 50, 100, 1000, 2000]
    budget = 5.0 if a.quick else a.budget
    print(f"activation {a.activation}; naive budget {budget:.0f} s per call")
    print(f"{'depth':>6}  {'symvg (s)':>10}  {'naive diff (s)':>15}  {'naive / symvg':>13}")
    gave_up = False
    for n in depths:
        s = min(structured(n, a.activation) for _ in range(3 if n <= 100 else 1))
        if gave_up:  # it failed at a smaller depth; it only gets worse
            print(f"{n:>6}  {s:10.4f}  {'not run':>15}  {'':>13}")
            continue
        t = naive(n, a.activation, budget)
        gave_up = not isinstance(t, float)
        if isinstance(t, float):
            shown, ratio = f"{t:15.3f}", f"{t / s:12.0f}x"
        else:  # did not finish: the ratio is a lower bound
            shown = f"{t:>15}" if isinstance(t, str) else f"{'> ' + format(budget, '.0f'):>15}"
            ratio = f"{'> ' + format(budget / s, '.0f'):>12}x"
        print(f"{n:>6}  {s:10.4f}  {shown}  {ratio}")


if __name__ == "__main__":
    main()
