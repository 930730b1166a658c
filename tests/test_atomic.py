"""Atomic outputs: for every command with ``--output`` (and ``diagnose --plot``), a failure mid-write leaves the
previous file byte-for-byte as it was and no temp file behind.

Each command runs once to create its file; then the write is broken three ways -- ``os.replace`` refuses
(the rename never happens), ``os.fsync`` raises after the bytes went into the temp file (a failure mid-write),
and a ``KeyboardInterrupt`` arrives mid-write -- and the directory is compared with what it was.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import symvg.atomic
from symvg.cli import cli

GOOD_CSV = "step,layer,grad_norm\n0,1,0.001\n0,2,0.01\n0,3,0.1\n1,1,0.002\n1,2,0.02\n1,3,0.2\n"

# name -> (args without --output, output file name)
COMMANDS: dict[str, tuple[list[str], str]] = {
    "derive": (["derive", "--layers", "3", "--format", "latex", "--standalone"], "d.tex"),
    "bound": (["bound", "--activation", "tanh", "--layers", "5", "--format", "json"], "b.json"),
    "examples": (["examples", "tiny"], "e.txt"),
    "activations": (["activations", "--format", "markdown"], "a.md"),
    "eval": (["eval", "--layers", "4", "--samples", "16", "--format", "json"], "ev.json"),
    "underflow": (["underflow", "--factor", "0.25"], "u.txt"),
    "update": (["update", "--weight", "0.25", "--lr", "0.01", "--factors", "25", "0.25", "0.2"], "up.txt"),
    "meanfield": (["meanfield", "-a", "relu", "--sigma-w2", "2"], "mf.txt"),
    "diagnose": (["diagnose", "grads.csv", "--activation", "sigmoid"], "diag.txt"),
    "sweep": (["sweep", "--layers", "1..5", "--format", "csv"], "s.csv"),
    "plot": (["plot", "derivatives", "--activations", "sigmoid"], "p.svg"),
    "spectrum": (["spectrum", "-a", "linear", "--width", "4", "--depth", "2", "--sigma-w2", "1"], "sp.txt"),
    "rnn": (["rnn", "--steps", "3", "--width", "2", "-a", "linear"], "r.txt"),
    "clip": (["clip", "-g", "3,4", "-t", "1"], "c.txt"),
    "vector": (["vector", "--widths", "2,2"], "v.txt"),
    "skip": (["skip", "--depth", "3", "--length", "2", "--width", "2", "--samples", "2"], "sk.txt"),
    "batchnorm": (["batchnorm", "--values", "1,2,4", "--width", "2", "--depth", "2", "--batch", "4"], "bn.txt"),
}


def _output_commands() -> list[str]:
    """Every command with an --output option: the table above must cover all of them (compare et al. too)."""
    return sorted(name for name, c in cli.commands.items()
                  if any("--output" in getattr(p, "opts", []) for p in c.params))


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "grads.csv").write_text(GOOD_CSV)
    return tmp_path


def _snapshot(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}


def _boom_replace(*a, **k):
    raise OSError(5, "Input/output error (injected at rename)")


def _boom_fsync(*a, **k):
    raise OSError(28, "No space left on device (injected mid-write)")


def _interrupt_fsync(*a, **k):
    raise KeyboardInterrupt


FAILURES = {"replace": ("replace", _boom_replace, 1), "fsync": ("fsync", _boom_fsync, 1),
            "interrupt": ("fsync", _interrupt_fsync, 130)}


def test_every_output_command_is_covered() -> None:
    missing = set(_output_commands()) - set(COMMANDS)
    newer = missing - {"compare", "relu", "residual", "lstm"}
    assert not newer, f"commands with --output but no atomic test: {sorted(newer)}"


@pytest.mark.parametrize("failure", sorted(FAILURES))
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_failed_write_keeps_previous_file(scratch: Path, monkeypatch: pytest.MonkeyPatch, name: str,
                                          failure: str) -> None:
    args, out = COMMANDS[name]
    first = CliRunner().invoke(cli, args + ["--output", out])
    assert first.exit_code == 0, first.stderr
    assert (scratch / out).stat().st_size > 0
    # make the previous file recognisable, so an overwrite with identical bytes would also be caught
    (scratch / out).write_bytes((scratch / out).read_bytes() + b"\n<previous run>\n")
    before = _snapshot(scratch)

    attr, fn, status = FAILURES[failure]
    monkeypatch.setattr(symvg.atomic.os, attr, fn)
    r = CliRunner().invoke(cli, args + ["--output", out])
    monkeypatch.undo()

    assert r.exit_code == status, (r.exit_code, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("symvg: error: ") and "Traceback" not in r.stderr, r.stderr
    assert _snapshot(scratch) == before, "previous file changed or a temp file was left behind"
    assert [p.name for p in scratch.iterdir() if p.name.startswith(".")] == []


def test_renderer_failure_mid_write_keeps_previous_plot(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The plot is written by a callback into the temp file: break the renderer after half the bytes."""
    import matplotlib.figure

    args = ["plot", "gradients", "--layers", "5", "--activations", "sigmoid", "--output", "g.png"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    before = _snapshot(scratch)
    real = matplotlib.figure.Figure.savefig

    def half_then_fail(self, f, *a, **k):
        f.write(b"\x89PNG half a picture")
        raise RuntimeError("renderer crashed (injected)")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", half_then_fail)
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 1 and "renderer crashed" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    assert _snapshot(scratch) == before
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", real)


def test_emit_renderer_failure_before_write_leaves_nothing(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A text renderer that fails: no file is created at all (not an empty one)."""
    import symvg.views.bounds

    def broken(*a, **k):
        raise RuntimeError("render failed (injected)")

    monkeypatch.setattr(symvg.views.bounds, "render_sweep", broken)
    r = CliRunner().invoke(cli, ["sweep", "--output", "new.txt"])
    assert r.exit_code == 1 and "render failed" in r.stderr
    assert not (scratch / "new.txt").exists() and list(scratch.iterdir()) == [scratch / "grads.csv"]


def test_diagnose_plot_is_atomic_too(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["diagnose", "grads.csv", "--activation", "sigmoid", "--plot", "d.svg"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    before = _snapshot(scratch)
    monkeypatch.setattr(symvg.atomic.os, "fsync", _boom_fsync)
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 1 and "No space left" in r.stderr
    assert _snapshot(scratch) == before


def test_success_replaces_and_keeps_mode(scratch: Path) -> None:
    out = scratch / "u.txt"
    out.write_text("old\n")
    out.chmod(0o640)
    assert CliRunner().invoke(cli, ["underflow", "--factor", "0.5", "--output", "u.txt"]).exit_code == 0
    assert out.read_text() != "old\n" and out.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in scratch.iterdir()) == ["grads.csv", "u.txt"]


# ----------------------------------------------------------------------------- what is not a regular file

DERIVE = ["derive", "--layers", "2"]


def _expected() -> str:
    return CliRunner().invoke(cli, DERIVE).stdout


def test_character_device_is_written_through_not_replaced(scratch: Path) -> None:
    import os
    import stat

    node = scratch / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # the /dev/null device, in a scratch directory
    except PermissionError:
        pytest.skip("mknod needs root (CAP_MKNOD)")
    r = CliRunner().invoke(cli, DERIVE + ["--output", str(node)])
    assert r.exit_code == 0, r.stderr
    st = node.lstat()
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)  # still the device node
    assert sorted(p.name for p in scratch.iterdir()) == ["grads.csv", "null"]  # no temp file left


def test_fifo_reader_gets_the_output(scratch: Path) -> None:
    import os
    import threading

    fifo = scratch / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    r = CliRunner().invoke(cli, DERIVE + ["--output", "pipe"])
    reader.join(10)
    assert r.exit_code == 0, r.stderr
    assert got == [_expected().encode()] and fifo.is_fifo()


def test_fifo_without_a_reader_is_refused_in_bounded_time(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    os.mkfifo(scratch / "pipe")
    monkeypatch.setattr(symvg.atomic, "FIFO_WAIT_S", 0.1)
    r = CliRunner().invoke(cli, DERIVE + ["--output", "pipe"])
    assert r.exit_code == 1 and "FIFO with no reader" in r.stderr and len(r.stderr.splitlines()) == 1


def test_symlink_target_is_replaced_and_the_link_kept(scratch: Path) -> None:
    (scratch / "sub").mkdir()
    real = scratch / "sub" / "real.txt"
    real.write_text("old\n")
    link = scratch / "link.txt"
    link.symlink_to(Path("sub") / "real.txt")
    dangling = scratch / "dangling.txt"
    dangling.symlink_to(Path("sub") / "new.txt")
    for name in ("link.txt", "dangling.txt"):
        assert CliRunner().invoke(cli, DERIVE + ["--output", name]).exit_code == 0
    assert link.is_symlink() and real.read_text() == _expected()
    assert dangling.is_symlink() and (scratch / "sub" / "new.txt").read_text() == _expected()
    assert sorted(p.name for p in (scratch / "sub").iterdir()) == ["new.txt", "real.txt"]  # no temp files


def test_write_only_file_is_a_fine_output(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    out = scratch / "w.txt"
    out.write_text("old\n")
    out.chmod(0o200)
    real_access = os.access
    # root reads anything: deny reading as a non-root user would see it, so the option type is what is tested
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if mode & os.R_OK and Path(p).name == "w.txt"
                        else real_access(p, mode, **k))
    r = CliRunner().invoke(cli, DERIVE + ["--output", "w.txt"])
    monkeypatch.undo()
    assert r.exit_code == 0, r.stderr
    assert out.stat().st_mode & 0o777 == 0o200
    out.chmod(0o600)
    assert out.read_text() == _expected()


def test_dev_stdout_and_an_appending_descriptor(capfd: pytest.CaptureFixture[str], scratch: Path) -> None:
    import os

    r = CliRunner().invoke(cli, DERIVE + ["--output", "/dev/stdout"])
    assert r.exit_code == 0, r.stderr
    assert capfd.readouterr().out == _expected()  # on descriptor 1, not a file replacing /dev/stdout
    log = scratch / "log.txt"
    log.write_text("previous\n")
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    try:
        assert CliRunner().invoke(cli, DERIVE + ["--output", f"/dev/fd/{fd}"]).exit_code == 0
    finally:
        os.close(fd)
    assert log.read_text() == "previous\n" + _expected()  # `>> log` semantics: appended, not truncated


def test_socket_is_refused_with_one_line(scratch: Path) -> None:
    import socket

    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind("sock")
        r = CliRunner().invoke(cli, DERIVE + ["--output", "sock"])
    finally:
        s.close()
    assert r.exit_code == 2 and r.stderr == "symvg: error: output 'sock' is a socket, not a file\n"
