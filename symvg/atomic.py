"""Write outputs without clobbering: regular files all-or-nothing, everything else as a writer should.

* A **regular file** (or a new name) gets a temp file in the same directory, then ``os.replace``: a failed or
  interrupted run leaves the previous file exactly as it was. A **symlink** is followed: its target is
  replaced and the link kept.
* A **character device** (``/dev/null``, a terminal) or a **FIFO** is written through, as ``>`` in a shell
  would: replacing it would turn a device node into a file, or leave a FIFO's reader with nothing.
  ``/dev/stdout``, ``/dev/stderr`` and ``/dev/fd/N`` name one of this process's descriptors, and are
  written to that descriptor (its position and append mode kept: ``>> log`` is not truncated).
* **Anything else** (a directory, a socket, a block device) is refused with one line.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
>>> write_atomic(p, "first\\n")
>>> def boom(f):
...     f.write(b"half")
...     raise RuntimeError("interrupted")
>>> write_atomic(p, boom)
Traceback (most recent call last):
RuntimeError: interrupted
>>> p.read_text()
'first\\n'
>>> write_atomic("/dev/null", "gone\\n")          # written through: /dev/null stays a device
>>> pathlib.Path("/dev/null").is_char_device()
True
>>> write_atomic(p.parent, "x")
Traceback (most recent call last):
symvg.errors.InvalidValueError: output '...' is a directory, not a file
"""

from __future__ import annotations

import errno
import os
import re
import stat
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Union

from symvg.errors import InvalidValueError, SymvgRuntimeError

Content = Union[str, bytes, Callable[[BinaryIO], None]]

FIFO_WAIT_S = 10.0
"""How long a FIFO with no reader is waited for before the write is refused (every command ends in bounded time)."""

# /dev/fd/N and /proc/self/fd/N (also under this process's pid): a descriptor of this process, not a file.
_FD_PATH = re.compile(r"^/(?:dev/fd|proc/(?:self|thread-self|(\d+))/fd)/(\d+)$")
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISSOCK, "a socket"), (stat.S_ISBLK, "a block device"))


@dataclass(frozen=True)
class Target:
    """Where and how an output is written: ``how`` is ``replace`` (regular file or new name, atomically),
    ``through`` (character device or FIFO, opened and written) or ``descriptor`` (this process's ``fd``)."""

    path: Path
    how: str
    fd: int | None = None


def _descriptor(path: str) -> int | None:
    """The descriptor that ``path`` names (``/dev/stdout`` → 1), following symlinks one hop at a time."""
    p = os.path.abspath(path)
    for _ in range(40):  # the kernel's own limit on a symlink chain
        m = _FD_PATH.match(p)
        if m and (m.group(1) is None or int(m.group(1)) == os.getpid()):
            return int(m.group(2))
        if not os.path.islink(p):
            return None
        p = os.path.normpath(os.path.join(os.path.dirname(p), os.readlink(p)))
    return None


def target(path: "str | os.PathLike[str]") -> Target:
    """Decide how ``path`` is written, or refuse it with the reason (missing directory, a directory, a socket…)."""
    shown = str(path)
    fd = _descriptor(os.fspath(path))
    if fd is not None:
        try:
            os.fstat(fd)
        except OSError:
            raise InvalidValueError(f"output {shown!r} names descriptor {fd}, which is not open") from None
        return Target(Path(path), "descriptor", fd)
    p = Path(os.path.realpath(path))  # a symlink's target is what gets written; the link stays
    try:
        st = os.stat(p)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise InvalidValueError(f"output {shown!r} cannot be examined: {e.strerror}") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        if stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
            if not os.access(p, os.W_OK):
                raise InvalidValueError(f"output {shown!r} is not writable")
            return Target(p, "through")
        kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
        raise InvalidValueError(f"output {shown!r} is {kind}, not a file")
    parent = p.parent
    if not parent.is_dir():
        raise InvalidValueError(f"output directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK) or (st is not None and not os.access(p, os.W_OK)):
        raise InvalidValueError(f"output {shown!r} is not writable")
    return Target(p, "replace")


def check_writable(path: "str | os.PathLike[str]") -> Path:
    """Fail early, with the reason, if ``path`` cannot be written; the path that will be written."""
    return target(path).path


def _write(f: BinaryIO, content: Content) -> None:
    if isinstance(content, str):
        f.write(content.encode("utf-8"))
    elif isinstance(content, bytes):
        f.write(content)
    else:
        content(f)
    f.flush()


def _open_fifo(p: Path) -> int:
    """Open a FIFO for writing, waiting up to FIFO_WAIT_S for a reader instead of blocking forever."""
    deadline = time.monotonic() + FIFO_WAIT_S
    while True:
        try:
            fd = os.open(p, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            if e.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
            if time.monotonic() > deadline:
                raise SymvgRuntimeError(f"output {str(p)!r} is a FIFO with no reader after {FIFO_WAIT_S:g} s") from None
            time.sleep(0.02)
            continue
        os.set_blocking(fd, True)  # the reader sets the pace from here on
        return fd


def _write_through(t: Target, content: Content) -> None:
    if t.how == "descriptor":
        if t.fd in (1, 2):  # what click has buffered for this descriptor goes first
            (sys.stdout if t.fd == 1 else sys.stderr).flush()
        fd = os.dup(t.fd)  # the same open file: its position and O_APPEND are kept, and ours is closed
    elif stat.S_ISFIFO(os.stat(t.path).st_mode):
        fd = _open_fifo(t.path)
    else:
        fd = os.open(t.path, os.O_WRONLY)  # a device: no O_CREAT, no O_TRUNC
    with os.fdopen(fd, "wb") as f:
        _write(f, content)


def write_atomic(path: "str | os.PathLike[str]", content: Content) -> None:
    """Write ``content`` (text, bytes, or a function that writes to a binary file) to ``path``: atomically for
    a regular file (through a symlink, to its target), straight through for a device, FIFO or descriptor."""
    t = target(path)
    if t.how != "replace":
        _write_through(t, content)
        return
    p = t.path
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            _write(f, content)
            os.fsync(f.fileno())
        if p.exists():
            os.chmod(tmp, p.stat().st_mode & 0o777)
        else:
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


__all__ = ["FIFO_WAIT_S", "Target", "check_writable", "target", "write_atomic", "SymvgRuntimeError"]
