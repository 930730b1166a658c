"""The CLI error contract, across every command: bad input -> one line ``symvg: error: ...`` naming the bad
value, exit 2 (input) or 1 (runtime), no traceback, and any existing ``--output`` file left exactly as it was.

Each case is run in a scratch directory holding a sentinel output file with known content; every command
that has ``--output`` gets ``--output sentinel.txt`` appended, so every case also checks "nothing written,
nothing truncated, no temp file left". A few cases go through the real entry point (``python -m symvg`` and
the ``symvg`` console script) to show it behaves the same as ``CliRunner``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import symvg.atomic
from symvg.cli import cli

PREFIX = "symvg: error: "
SENTINEL = "sentinel.txt"
KNOWN = "known content\n"

# Commands whose --output is optional (so it can be added to every case); plot requires its own.
HAS_OUTPUT = {"derive", "bound", "examples", "activations", "eval", "underflow", "update", "meanfield", "diagnose",
              "sweep", "compare"}

# (args, exit status, text the error line must contain -- the bad value or the option it concerns)
CASES: list[tuple[list[str], int, str]] = [
    # derive
    (["derive", "--activation", "sigmod"], 2, "'sigmod'"),
    (["derive", "--layers", "0"], 2, "got 0"),
    (["derive", "--layers", "-3"], 2, "-3"),
    (["derive", "--layers", "1000000000"], 2, "1000000000"),
    # printing 100000 layers took minutes (about 2.5 ms a layer): refused, so derive answers in seconds
    (["derive", "--layers", "100000"], 2, "at most 2000 layers"),
    (["derive", "--layers", "abc"], 2, "'abc'"),
    (["derive", "--loss", "bce", "--activation", "tanh"], 2, "tanh(z) = 0 at z = 0, outside (0, 1)"),
    (["derive", "--loss", "bce", "--residual"], 2, "residual"),
    (["derive", "--loss", "bce", "--at", "y=2"], 2, "got y = 2"),  # bce labels lie in [0, 1]
    (["derive", "--loss", "bce", "--at", "y=-0.001"], 2, "labels y in [0, 1]"),
    (["derive", "--layers", "3", "--wrt", "4"], 2, "got 4"),
    (["derive", "--layers", "3", "--wrt", "0"], 2, "got 0"),
    (["derive", "--layers", "3", "--wrt", "-1"], 2, "-1"),
    (["derive", "--activation", "expr:__import__('os')"], 2, "__import__"),
    (["derive", "--activation", "expr:"], 2, "empty"),
    (["derive", "--activation", "expr:open('x')"], 2, "'open'"),
    (["derive", "--activation", "leaky_relu:nan"], 2, "'nan'"),
    (["derive", "--activation", "leaky_relu:inf"], 2, "'inf'"),
    (["derive", "--activation", "elu:-1"], 2, "'-1'"),
    (["derive", "--activation", "sigmoid:3"], 2, "sigmoid"),
    (["derive", "--format", "pdf"], 2, "'pdf'"),
    (["derive", "--loss", "hinge"], 2, "'hinge'"),
    (["derive", "--bogus"], 2, "--bogus"),
    # bound
    (["bound", "--activation", "nope"], 2, "'nope'"),
    (["bound", "--weight", "nan"], 2, "'nan'"),
    (["bound", "--weight", "inf"], 2, "'inf'"),
    (["bound", "--weight", "-inf"], 2, "'-inf'"),
    (["bound", "--weight", "abc"], 2, "'abc'"),
    (["bound", "--weight", "1/0"], 2, "'1/0'"),
    (["bound", "--layers", "0"], 2, "got 0"),
    (["bound", "--layers", "-5"], 2, "-5"),
    (["bound", "--tol", "0"], 2, "'0'"),
    (["bound", "--tol", "2"], 2, "'2'"),
    (["bound", "--tol", "nan"], 2, "'nan'"),
    (["bound", "--format", "csv"], 2, "'csv'"),
    (["bound", "--activation", "expr:9**9**9"], 2, "9**9**9"),
    (["bound", "--activation", "expr:z**z"], 2, "z**z"),
    # compare and the remedy commands
    (["compare", "--layers", "0"], 2, "got 0"),
    (["compare", "--weight", "nan"], 2, "'nan'"),
    (["compare", "--activations", "sigmoid,nope"], 2, "'nope'"),
    (["compare", "--tol", "3"], 2, "'3'"),
    (["relu", "--layers", "0"], 2, "got 0"),
    (["relu", "--std", "0"], 2, "'0'"),
    (["relu", "--mean", "inf"], 2, "'inf'"),
    (["relu", "--leaky", "-1"], 2, "'-1'"),
    (["residual", "--layers", "0"], 2, "got 0"),
    (["residual", "--activation", "nope"], 2, "'nope'"),
    (["residual", "--weight", "nan"], 2, "'nan'"),
    (["lstm", "--steps", "0"], 2, "got 0"),
    (["lstm", "--forget", "nan"], 2, "'nan'"),
    (["lstm", "--forget", "2"], 2, "'2'"),
    (["lstm", "--activation", "nope"], 2, "'nope'"),
    # examples, activations
    (["examples", "nope"], 2, "'nope'"),
    (["examples", "--format", "pdf"], 2, "'pdf'"),
    (["activations", "--format", "csv"], 2, "'csv'"),
    # eval
    (["eval", "--layers", "0"], 2, "0 is not in the range"),
    (["eval", "--layers", "100001"], 2, "100001"),
    (["eval"], 2, "--layers"),
    (["eval", "--layers", "3", "--samples", "0"], 2, "0 is not in the range"),
    # float32 cannot hold N(0, 1e-50) draws: all-zero weights, every gradient an exact-looking 0
    (["eval", "--layers", "3", "--samples", "10", "--dtype", "float32", "--init", "0,1e-50"], 2,
     "below float32's smallest normal"),
    (["eval", "--layers", "3", "--samples", "100000000000"], 2, "bounded time"),
    (["eval", "--layers", "100000", "--samples", "100000000"], 2, "bounded time"),
    (["eval", "--layers", "3", "--dtype", "float16"], 2, "'float16'"),
    (["eval", "--layers", "3", "--backend", "jax"], 2, "'jax'"),
    (["eval", "--layers", "3", "--init", "nan,1"], 2, "nan"),
    (["eval", "--layers", "3", "--init", "0,inf"], 2, "inf"),
    (["eval", "--layers", "3", "--init", "0,-1"], 2, "-1.0"),
    (["eval", "--layers", "3", "--init", "foo"], 2, "'foo'"),
    (["eval", "--layers", "3", "--tol", "0"], 2, "'0'"),
    (["eval", "--layers", "3", "--tol", "nan"], 2, "nan"),
    (["eval", "--layers", "3", "--tol", "1e-400"], 2, "smallest normal number"),  # was "0.0 is not in the range"
    (["bound", "--weight", "1" + "0" * 1001], 2, "1002 characters"),
    (["eval", "--layers", "3", "--activation", "foo"], 2, "'foo'"),
    (["eval", "--layers", "3", "--loss", "bce", "--activation", "relu"], 2, "bce needs the output h_N in (0, 1)"),
    (["eval", "--layers", "3", "--seed", "-1"], 2, "-1"),
    (["eval", "--layers", "3", "--format", "csv"], 2, "'csv'"),
    (["eval", "--layers", "3", "--engine", "numba"], 2, "'numba'"),
    (["eval", "--layers", "3", "--engine", "fused", "--log-domain"], 2, "log=True"),
    # underflow
    (["underflow", "--factor", "0"], 2, "factor 0"),
    (["underflow", "--factor", "1"], 2, "factor 1"),
    (["underflow", "--factor", "2"], 2, "factor 2"),
    (["underflow", "--factor", "nan"], 2, "'nan'"),
    (["underflow", "--factor", "inf"], 2, "'inf'"),
    (["underflow", "--factor", "-0.5"], 2, "-1/2"),
    (["underflow", "--factor", "abc"], 2, "'abc'"),
    (["underflow", "--factor", "0.25", "--dtype", "float8"], 2, "'float8'"),
    (["underflow"], 2, "--factor"),
    # update
    (["update", "--weight", "nan", "--lr", "0.1", "--grad", "1"], 2, "'nan'"),
    (["update", "--weight", "1", "--lr", "inf", "--grad", "1"], 2, "'inf'"),
    (["update", "--weight", "1", "--lr", "nan", "--grad", "1"], 2, "'nan'"),
    (["update", "--weight", "1", "--lr", "0.1", "--grad", "nan"], 2, "'nan'"),
    (["update", "--weight", "1", "--lr", "0.1", "--grad", "-inf"], 2, "'-inf'"),
    (["update", "--weight", "1", "--lr", "0.1"], 2, "--grad"),
    (["update", "--weight", "1", "--lr", "0.1", "--grad", "1", "--factors", "2"], 2, "--factors"),
    (["update", "--weight", "1", "--lr", "0.1", "--factors", "2", "abc"], 2, "abc"),
    (["update", "--weight", "1", "--lr", "0.1", "--factors", "2", "nan"], 2, "nan"),
    (["update", "--weight", "1e999", "--lr", "0.1", "--grad", "1"], 2, "1.0e+999"),
    (["update", "--weight", "1", "--lr", "0.1", "--grad", "1", "--dtype", "bfloat16"], 2, "'bfloat16'"),
    # meanfield
    (["meanfield", "-a", "tanh"], 2, "--sigma-w2"),
    (["meanfield", "-a", "nope", "--sigma-w2", "1"], 2, "'nope'"),
    (["meanfield", "-a", "tanh", "--sigma-w2", "nan"], 2, "'nan'"),
    (["meanfield", "-a", "tanh", "--sigma-w2", "-1"], 2, "'-1'"),
    (["meanfield", "-a", "tanh", "--sigma-w2", "1", "--sigma-b2", "inf"], 2, "'inf'"),
    (["meanfield", "-a", "tanh", "--critical", "--sigma-w2", "1"], 2, "'1'"),
    (["meanfield", "-a", "tanh", "--sigma-w2", "1", "--width", "1"], 2, "1 is not in the range"),
    (["meanfield", "-a", "tanh", "--sigma-w2", "1", "--simulate", "--width", "100000000", "--depth", "100000"], 2,
     "--width 100000000"),
    (["meanfield", "-a", "tanh", "--sigma-w2", "1", "--simulate", "--width", "60000"], 2, "MB"),
    # diagnose
    (["diagnose", "missing.csv"], 2, "'missing.csv'"),
    (["diagnose", "empty.csv"], 2, "empty.csv"),
    (["diagnose", "bad.csv"], 2, "'a'"),
    (["diagnose", "bad.json"], 2, "bad.json"),
    (["diagnose", "nan.csv"], 2, "nan"),
    (["diagnose", "emptydir"], 2, "emptydir"),
    (["diagnose", "log.txt"], 2, "'.txt'"),
    (["diagnose", "good.csv", "--window", "0"], 2, "0 is not in the range"),
    (["diagnose", "good.csv", "--vanishing-below", "2"], 2, "2"),
    (["diagnose", "good.csv", "--activation", "nope"], 2, "'nope'"),
    (["diagnose", "good.csv", "--plot", "missingdir/p.png"], 2, "missingdir"),
    # plot
    (["plot", "nope", "--output", "x.png"], 2, "'nope'"),
    (["plot", "gradients", "--output", "x.bmp"], 2, "'x.bmp'"),
    (["plot", "gradients", "--output", "adir"], 2, "'adir'"),
    (["plot", "gradients", "--output", "missingdir/x.png"], 2, "missingdir"),
    (["plot", "gradients", "--layers", "0", "--output", "x.png"], 2, "0 is not in the range"),
    (["plot", "gradients", "--layers", "99999", "--output", "x.png"], 2, "99999"),
    (["plot", "gradients", "--weight", "nan", "--output", "x.png"], 2, "'nan'"),
    (["plot", "gradients", "--activations", ",", "--output", "x.png"], 2, "','"),
    (["plot", "gradients", "--activations", "nope", "--output", "x.png"], 2, "'nope'"),
    (["plot", "phase", "--activation", "nope", "--output", "x.png"], 2, "'nope'"),
    (["plot", "gradients"], 2, "--output"),
    # sweep
    (["sweep", "--layers", "1..0"], 2, "'1..0'"),
    (["sweep", "--layers", "a..b"], 2, "'a..b'"),
    (["sweep", "--layers", "0..5"], 2, "'0..5'"),
    (["sweep", "--layers", "1..5..0"], 2, "'1..5..0'"),
    (["sweep", "--layers", "1..1000000"], 2, "'1..1000000'"),
    (["sweep", "--layers", "1..100000"], 2, "'1..100000'"),
    # 60000 cells took over a minute (0.5-1 ms each): refused, so every sweep answers in seconds
    (["sweep", "--layers", "1..10000", "--activations", "sigmoid,tanh,relu,gelu,silu,selu"], 2, "60000 cells"),
    (["sweep", "--layers", ".."], 2, "'..'"),
    (["sweep", "--layers", "1..2..3..4"], 2, "'1..2..3..4'"),
    (["sweep", "--layers", "-1..5"], 2, "'-1..5'"),
    (["sweep", "--activations", "nope"], 2, "'nope'"),
    (["sweep", "--activations", ","], 2, "','"),
    (["sweep", "--weight", "nan"], 2, "'nan'"),
    (["sweep", "--tol", "5"], 2, "'5'"),
    (["sweep", "--tol", "nan"], 2, "'nan'"),
    (["sweep", "--format", "xml"], 2, "'xml'"),
    # group level
    (["nope"], 2, "'nope'"),
    ([], 0, ""),  # placeholder removed below: a bare 'symvg' prints help (not an error)
]
CASES = [c for c in CASES if c[0]]

# --output itself is the bad value (the sentinel is not added to these)
OUTPUT_CASES: list[tuple[list[str], int, str]] = [
    (["derive", "--output", "missingdir/x.txt"], 2, "missingdir"),
    (["derive", "--output", "adir"], 2, "'adir'"),
    (["bound", "--output", "missingdir/deeper/x.json"], 2, "missingdir"),
    (["activations", "--output", "adir"], 2, "'adir'"),
    (["examples", "--output", "missingdir/x"], 2, "missingdir"),
    (["sweep", "--output", "adir"], 2, "'adir'"),
    (["underflow", "--factor", "0.5", "--output", "missingdir/u.txt"], 2, "missingdir"),
    (["update", "--weight", "1", "--lr", "0.1", "--grad", "1", "--output", "adir"], 2, "'adir'"),
    (["eval", "--layers", "2", "--samples", "4", "--output", "missingdir/e.json"], 2, "missingdir"),
    (["meanfield", "-a", "relu", "--sigma-w2", "2", "--output", "adir"], 2, "'adir'"),
    (["diagnose", "good.csv", "--output", "missingdir/d.txt"], 2, "missingdir"),
]

GOOD_CSV = "step,layer,grad_norm\n0,1,0.001\n0,2,0.01\n0,3,0.1\n"


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with a sentinel output file and a few (bad) logs."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / SENTINEL).write_text(KNOWN)
    (tmp_path / "adir").mkdir()
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "nan.csv").write_text("step,layer,grad_norm\n0,1,nan\n")
    (tmp_path / "log.txt").write_text("hello\n")
    (tmp_path / "good.csv").write_text(GOOD_CSV)
    return tmp_path


def _listing(d: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(d)): (p.read_bytes() if p.is_file() else None) for p in sorted(d.rglob("*"))}


def _check(result, status: int, needle: str) -> str:
    err = result.stderr
    assert result.exit_code == status, (result.exit_code, err, result.stdout)
    lines = err.splitlines()
    assert len(lines) == 1, f"expected exactly one stderr line, got {lines!r}"
    assert lines[0].startswith(PREFIX), lines[0]
    assert needle in lines[0], f"{needle!r} not named in {lines[0]!r}"
    assert "Traceback" not in err + result.stdout
    assert result.stdout == "", result.stdout
    return lines[0]


def _command_exists(name: str) -> bool:
    return name in cli.commands


@pytest.mark.parametrize("args,status,needle", CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_bad_input_one_line_and_output_untouched(scratch: Path, args: list[str], status: int, needle: str) -> None:
    if args[0] in HAS_OUTPUT and args[0] in cli.commands:
        args = args + ["--output", SENTINEL]
    before = _listing(scratch)
    result = CliRunner().invoke(cli, args)
    _check(result, status, needle)
    assert _listing(scratch) == before, "a failed run changed the directory (output written, truncated, temp left)"
    assert (scratch / SENTINEL).read_text() == KNOWN


@pytest.mark.parametrize("args,status,needle", OUTPUT_CASES, ids=[" ".join(c[0])[:60] for c in OUTPUT_CASES])
def test_bad_output_path(scratch: Path, args: list[str], status: int, needle: str) -> None:
    before = _listing(scratch)
    _check(CliRunner().invoke(cli, args), status, needle)
    assert _listing(scratch) == before


def test_case_count() -> None:
    """The brief asks for at least 50 distinct bad inputs across all commands."""
    distinct = {tuple(a) for a, _, _ in CASES + OUTPUT_CASES}
    assert len(distinct) >= 50
    commands = {a[0] for a, _, _ in CASES + OUTPUT_CASES}
    assert KNOWN_COMMANDS <= commands, KNOWN_COMMANDS - commands


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True,
                    reason="root ignores file permissions: chmod cannot make a file unwritable")
def test_unwritable_output_file_chmod(scratch: Path) -> None:
    target = scratch / "ro.txt"
    target.write_text(KNOWN)
    target.chmod(0o444)
    try:
        _check(CliRunner().invoke(cli, ["derive", "--output", str(target)]), 2, "ro.txt")
        assert target.read_text() == KNOWN
    finally:
        target.chmod(0o644)


def test_unwritable_output_file_simulated(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where chmod cannot help (root), make ``os.access`` answer as it would for a read-only file."""
    target = scratch / "ro.txt"
    target.write_text(KNOWN)
    real = os.access
    monkeypatch.setattr(symvg.atomic.os, "access",
                        lambda p, mode, *a, **k: False if Path(p) == target and mode == os.W_OK else real(p, mode))
    for args in (["derive"], ["bound"], ["sweep"], ["activations"], ["underflow", "--factor", "0.5"]):
        before = _listing(scratch)
        _check(CliRunner().invoke(cli, args + ["--output", str(target)]), 2, "ro.txt")
        assert _listing(scratch) == before


def test_write_failure_after_checks_is_runtime_error(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails although the checks passed (disk full, read-only mount): exit 1, one line, intact."""
    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(symvg.atomic.os, "fsync", full)
    line = _check(CliRunner().invoke(cli, ["derive", "--output", SENTINEL]), 1, "No space left on device")
    assert "OSError" in line
    assert (scratch / SENTINEL).read_text() == KNOWN
    assert sorted(p.name for p in scratch.iterdir() if p.name.endswith(".tmp")) == []


KNOWN_COMMANDS = {"derive", "bound", "examples", "activations", "eval", "underflow", "update", "meanfield",
                  "diagnose", "plot", "sweep"}
"""The commands this file has cases for; newer ones (compare, ...) get the generic checks below."""

NEWER = sorted(set(cli.commands) - KNOWN_COMMANDS) or ["compare"]


@pytest.mark.parametrize("name", NEWER)
def test_newer_commands_keep_the_contract(scratch: Path, name: str) -> None:
    """Commands written after this file (``compare`` among them): unknown option and a hostile activation."""
    if name not in cli.commands:
        pytest.skip(f"no {name!r} command")
    _check(CliRunner().invoke(cli, [name, "--no-such-option-xyz"]), 2, "--no-such-option-xyz")
    params = {o for p in cli.commands[name].params for o in getattr(p, "opts", [])}
    if "--activation" in params:
        before = _listing(scratch)
        r = CliRunner().invoke(cli, [name, "--activation", "expr:__import__('os')"])
        assert r.exit_code == 2 and r.stderr.startswith(PREFIX) and len(r.stderr.splitlines()) == 1, r.stderr
        assert "Traceback" not in r.stderr and _listing(scratch) == before


# ----------------------------------------------------------------------------- the real entry point

REAL_CASES = [
    (["derive", "--layers", "0"], 2, "got 0"),
    (["bound", "--activation", "expr:__import__('os')"], 2, "__import__"),
    (["sweep", "--layers", "1..0"], 2, "'1..0'"),
    (["eval", "--layers", "3", "--samples", "100000000000"], 2, "bounded time"),
    (["derive", "--output", "missingdir/x.txt"], 2, "missingdir"),
]


def _subprocess(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.parametrize("args,status,needle", REAL_CASES, ids=[" ".join(c[0]) for c in REAL_CASES])
def test_python_m_symvg_same_contract(scratch: Path, args: list[str], status: int, needle: str) -> None:
    before = _listing(scratch)
    p = _subprocess([sys.executable, "-m", "symvg", *args], scratch)
    assert p.returncode == status, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(PREFIX) and needle in lines[0], lines
    assert "Traceback" not in p.stderr and p.stdout == ""
    assert _listing(scratch) == before
    # and the same line as in-process (free memory moves between the two runs)
    same = [re.sub(r"\d+ MB", "N MB", ln) for ln in CliRunner().invoke(cli, args).stderr.splitlines()]
    assert same == [re.sub(r"\d+ MB", "N MB", ln) for ln in lines]


def test_console_script_same_contract(scratch: Path) -> None:
    exe = shutil.which("symvg")
    if exe is None:
        pytest.skip("the 'symvg' console script is not on PATH")
    p = _subprocess([exe, "underflow", "--factor", "nan", "--output", SENTINEL], scratch)
    assert p.returncode == 2
    assert p.stderr == "symvg: error: factor must be a finite number, got 'nan'\n"
    assert (scratch / SENTINEL).read_text() == KNOWN


def test_debug_shows_traceback_in_real_process(scratch: Path) -> None:
    p = _subprocess([sys.executable, "-m", "symvg", "--debug", "derive", "--layers", "0"], scratch)
    assert p.returncode != 0 and "Traceback" in p.stderr and "InvalidChainError" in p.stderr


# ----------------------------------------------------------------------------- hostile numbers (issue 15)
# Extreme but meaningful numbers get a correct answer (exact, or a log10 / 6-digit form of any magnitude);
# the rest get one line and exit 2 naming the limit. Either way within a CPU-time budget, with no inf, nan
# or "≈ 0" standing in for a value, and strict JSON (no Infinity/NaN tokens).

BIG = "1" + "0" * 30          # 10**30 typed as digits
CATS = "sigmoid,relu,leaky_relu:0.2,linear"   # compare over a few activations: the catalogue's proofs cost seconds

HOSTILE_OK: list[list[str]] = [
    ["relu", "--mean", "-40"], ["relu", "--mean", "-40", "--format", "json"], ["relu", "--mean", "-1e9"],
    ["relu", "--mean", "1e99"], ["relu", "--layers", "100000"], ["relu", "--layers", BIG],
    ["relu", "--layers", "1000000000", "--format", "json"], ["relu", "--weight", "1e999"],
    ["relu", "--weight", "-1e999", "--format", "json"], ["relu", "--weight", "1e-400"], ["relu", "--weight", "0"],
    ["relu", "--std", "1e-400"], ["relu", "--std", "1e999", "--mean", "1e-400"], ["relu", "--leaky", "1e-400"],
    ["relu", "--leaky", "0"], ["relu", "--seed", BIG, "--samples", "10", "--layers", "3"],
    ["lstm", "--steps", "1000000000"], ["lstm", "--steps", BIG, "--format", "json"],
    ["lstm", "--weight", "1e999", "--format", "json"], ["lstm", "--weight", "-1e999"], ["lstm", "--forget", "1e-400"],
    ["lstm", "--forget", "0"], ["lstm", "--weight", "0"], ["lstm", "--weight", BIG],
    ["lstm", "--steps", "100000", "-a", "silu", "--format", "json"],
    ["residual", "--weight", "1e999"], ["residual", "--weight", "1e999", "--format", "json"],
    ["residual", "--weight", "-1e999", "-n", "10"], ["residual", "--weight", "1e-400"], ["residual", "--weight", "0"],
    ["residual", "--weight", BIG, "--format", "json"],
    ["compare", "-a", CATS, "--both", "--weight", "1e999"],
    ["compare", "-a", CATS, "--both", "-w", "1e999", "--format", "json"],
    ["compare", "-a", CATS, "--both", "--weight", "-1e999"], ["compare", "-a", CATS, "--weight", "1e-400"],
    ["compare", "-a", CATS, "--both", "--tol", "1e-400"], ["compare", "-a", CATS, "--both", "--layers", BIG],
    ["compare", "-a", CATS, "--both", "--layers", "1000000000", "--format", "json"],
    ["compare", "-a", CATS, "--both", "--weight", "0"], ["compare", "-a", CATS, "--both", "--weight", BIG],
    ["eval", "-n", "3", "-m", "16", "--seed", BIG],
    ["compare", "-a", "sigmoid", "--residual", "-w", "1e-400", "-n", "5"],  # 1 + 2.5e-401 crosses at N ~ 5.5e401
    ["bound", "-a", "sigmoid", "-w", "4.0000000000000000000000001", "-n", "10"],
]

HOSTILE_BAD: list[tuple[list[str], str]] = [
    (["relu", "--seed", "-1"], "-1"), (["relu", "--samples", "1000000000"], "lower --samples"), (["relu", "--samples", BIG], "lower --samples"),
    (["plot", "gradients", "--weight", "1e30"], "too large to plot"),
    (["relu", "--layers", "1000", "--samples", "10"], "layers <= 100"), (["relu", "--mean", "1e999"], "1e100"),
    (["relu", "--mean", "1", "--std", "1e-400"], "1e100"), (["relu", "--mean", "nan"], "'nan'"),
    (["relu", "--std", "-1e999"], "'-1e999'"), (["relu", "--std", "1e-400", "--mean", "-1e999"], "1e100"),
    (["relu", "--leaky", "1e999"], "'1e999'"), (["relu", "--leaky", "inf"], "'inf'"),
    (["relu", "--layers", "1e3"], "'1e3'"), (["relu", "--layers", "-1"], "-1"),
    (["relu", "--weight", "nan"], "'nan'"), (["relu", "--weight", "-inf"], "'-inf'"),
    (["lstm", "--steps", "-1"], "-1"), (["lstm", "--forget", "1e999"], "'1e999'"),
    (["lstm", "--forget", "-1e-400"], "'-1e-400'"),
    (["lstm", "--weight", "nan"], "'nan'"), (["lstm", "--weight", "inf"], "'inf'"), (["lstm", "--forget", BIG], BIG),
    (["residual", "--layers", BIG], "at most 12"), (["residual", "--layers", "-1"], "-1"),
    (["residual", "--weight", "inf"], "'inf'"), (["residual", "--weight", "-1e9999"], "'-1e9999'"),
    (["compare", "-a", CATS, "--tol", "0"], "'0'"), (["compare", "-a", CATS, "--tol", "1e999"], "'1e999'"),
    (["compare", "-a", CATS, "--tol", "nan"], "'nan'"),
    (["compare", "-a", CATS, "--tol", "-1e-400"], "'-1e-400'"),
    (["compare", "-a", CATS, "--layers", "-1"], "-1"), (["compare", "-a", CATS, "--weight", "inf"], "'inf'"),
    (["eval", "-n", "3", "--tol", "1e-400"], "'1e-400'"), (["eval", "-n", "3", "--tol", "-1e-400"], "'-1e-400'"),
    (["eval", "-n", "3", "--tol", "1e999"], "'1e999'"), (["eval", "-n", "3", "--init", "0,1e-400"], "'1e-400'"),
    (["eval", "-n", "3", "--init", "1e-400,1"], "'1e-400'"), (["eval", "-n", "3", "--init", "0,1e999"], "inf"),
    (["eval", "-n", "3", "-a", "expr:1e400*z"], "1.0e+400"),
    (["eval", "-n", "3", "-a", "expr:1e-400*z"], "1.0e-400"),
    (["eval", "-n", "3", "--samples", BIG], "bounded time"), (["eval", "-n", BIG], BIG),
    (["eval", "-n", "3", "--seed", "-1"], "-1"),
    (["plot", "gradients", "--seed", "-1"], "-1"),
]

CPU_BUDGET_S = 3.0
"""CPU seconds a hostile case may take (CPU, not wall: the suite may share a loaded machine)."""

_FAKE_NUMBER = re.compile(r"(?<![\w|])-?(inf|nan|NaN|Infinity)(?![\w|(])|≈ 0(?![.\d])|≈ -?0\.0\b")


def _timed(args: list[str]):
    import time

    start = time.process_time()
    result = CliRunner().invoke(cli, args)
    return result, time.process_time() - start


@pytest.mark.parametrize("args", HOSTILE_OK, ids=[" ".join(a)[:70] for a in HOSTILE_OK])
def test_hostile_numbers_answered_in_full(args: list[str]) -> None:
    result, cpu = _timed(args)
    assert result.exit_code == 0, result.stderr
    assert not re.search(r"(?<![\w.+-])1 > 1", result.stdout)  # a factor that is not 1 is never rounded to 1
    assert result.stderr == "" and "Traceback" not in result.stdout
    assert cpu < CPU_BUDGET_S, f"{cpu:.1f} s of CPU"
    assert not _FAKE_NUMBER.search(result.stdout), _FAKE_NUMBER.search(result.stdout)
    if "json" in args:
        def refuse(c):
            raise AssertionError(f"non-JSON constant {c}")
        json.loads(result.stdout, parse_constant=refuse)


@pytest.mark.parametrize("args,needle", HOSTILE_BAD, ids=[" ".join(a)[:70] for a, _ in HOSTILE_BAD])
def test_hostile_numbers_refused_in_one_line(scratch: Path, args: list[str], needle: str) -> None:
    before = _listing(scratch)
    result, cpu = _timed(args + ["--output", SENTINEL if args[0] != "plot" else "p.png"])
    _check(result, 2, needle)
    assert cpu < CPU_BUDGET_S, f"{cpu:.1f} s of CPU"
    assert _listing(scratch) == before


def test_a_long_exponent_is_refused_for_its_size_not_called_infinite(run):
    """1e4000 is a finite number: the refusal names its size, as 1e1001 did (the 3-digit exponent pattern said
    'must be a finite number')."""
    for text in ("1e4000", "-1e-4000", "1e1001"):
        code, out, err = run("derive", "--layers", "2", "--at", f"x={text}")
        assert code == 2 and "more than 1000 digits" in err and "finite" not in err, err
