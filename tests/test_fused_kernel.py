"""symvg.engines.fused_kernel: the fused kernel printed as source, its on-disk cache and the cache's keys."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from symvg.engines import fused_kernel as fk
from symvg.symbolic.activations import get

ROOT = Path(__file__).resolve().parents[1]
MSE = (fk.H_N - sp.Symbol("y", real=True), False)


def test_the_key_changes_with_every_input_that_changes_the_code():
    base = fk.key_of(get("sigmoid"), MSE, "float64")
    assert base == fk.key_of(get("sigmoid"), MSE, np.float64)  # one dtype, however it is named
    others = [fk.key_of(get("tanh"), MSE, "float64"), fk.key_of(get("sigmoid"), MSE, "float32"),
              fk.key_of(get("sigmoid"), (2 * MSE[0], False), "float64"),  # another loss form
              fk.key_of(get("sigmoid"), (MSE[0], True), "float64"),  # the same form taken through the logit
              fk.key_of(get("leaky_relu"), MSE, "float64"),
              fk.key_of(get("leaky_relu", negative_slope=sp.Rational(1, 10)), MSE, "float64")]  # a parameter
    assert len({base, *others}) == 1 + len(others)


def test_the_key_covers_the_code_it_calls(monkeypatch):
    before = fk.key_of(get("sigmoid"), MSE, "float64")
    fk._code_and_versions.cache_clear(), fk.key_of.cache_clear()
    real = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda p, *a, **k: real(p, *a, **k) + ("#" if p.name == "vmath.py" else ""))
    try:
        assert fk.key_of(get("sigmoid"), MSE, "float64") != before  # vmath.py edited: a new file, a new compile
    finally:
        fk._code_and_versions.cache_clear(), fk.key_of.cache_clear()


def test_load_writes_once_and_falls_back_to_a_private_folder_where_it_cannot_write(tmp_path):
    made = []

    def source():
        made.append(1)
        return "ANSWER = 42\n"
    mod = fk.load("t" * 32, source, tmp_path)
    assert mod.ANSWER == 42 and mod.__file__ == str(tmp_path / f"kernel_{'t' * 32}.py") and made == [1]
    assert [p.name for p in tmp_path.iterdir()] == [f"kernel_{'t' * 32}.py"]  # no temporary file left
    (tmp_path / "plain").write_text("")
    mod = fk.load("u" * 32, source, tmp_path / "plain" / "sub")  # a folder under a file: not writable
    assert mod.ANSWER == 42 and Path(mod.__file__).parent == fk._private_dir() and made == [1, 1]
    assert not (tmp_path / "plain" / "sub").exists()
    assert fk.load("t" * 32, source, tmp_path) is fk.load("t" * 32, source, tmp_path) and made == [1, 1]


def test_the_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(fk.CACHE_ENV, str(tmp_path / "k"))
    assert fk.cache_dir() == tmp_path / "k"
    monkeypatch.delenv(fk.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert fk.cache_dir() == tmp_path / "symvg"


def test_the_printed_module_names_its_forms_and_dtype():
    text = fk.module_source(get("elu"), MSE, "float32")
    assert "FT = np.float32" in text and "expm1(z)" in text and "def kernel(" in text
    compile(text, "<test>", "exec")  # it is Python


@pytest.mark.slow  # one compilation (7-12 s of CPU) and a process that loads it
def test_a_cached_kernel_computes_bitwise_what_the_fresh_compilation_did(tmp_path):
    # The machine code numba saved, loaded by another process, against the compilation that saved it: one
    # route, so the numbers must be identical, not merely close.
    from symvg.engines import fused
    from symvg.symbolic.chain import Chain

    act, loss, dtype = fused._key(Chain(4, "expr:z/(7 + abs(z))"), "float64")  # a kernel no other test builds
    key = fk.key_of(act, loss, dtype)
    fresh = fk.load(key, lambda: fk.module_source(act, loss, dtype), tmp_path / "cache").kernel
    script = """
import numpy as np
from symvg.engines import fused, fused_kernel as fk
from symvg.symbolic.chain import Chain
rng = np.random.default_rng(3)
x, y = rng.standard_normal(3000), rng.standard_normal(3000)
W, B = rng.standard_normal((4, 3000)), rng.standard_normal((4, 1))
G = np.empty((4, 3000))
def run(k):
    k(x, y, W, B, False, G, np.zeros(3, bool), np.zeros(3, bool), np.empty((12, 1024)), 0, 3)
    return G.copy()
"""
    namespace: dict = {}
    exec(script, namespace)  # noqa: S102 -- the test's own text
    want = namespace["run"](fresh)
    assert fk.cached(act, loss, dtype, tmp_path / "cache") and not fk.cached(act, loss, dtype, tmp_path / "empty")
    load = script + f"""
from symvg.engines.numeric import choose_engine
print(fused.on_disk(Chain(4, "expr:z/(7 + abs(z))")), choose_engine(Chain(9, "expr:z/(7 + abs(z))"), 10))
k = fk.kernel(*fused._key(Chain(4, "expr:z/(7 + abs(z))"), "float64"))
np.save({str(tmp_path / 'out.npy')!r}, run(k))
print(sorted(k.stats.cache_hits.values()), sorted(k.stats.cache_misses.values()))
"""
    env = {**os.environ, fk.CACHE_ENV: str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", load], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    # auto takes a kernel an earlier process left on disk even for a small call; it is loaded, not compiled
    assert r.stdout.split() == ["True", "fused", "[1]", "[]"]
    assert np.array_equal(np.load(tmp_path / "out.npy"), want)
