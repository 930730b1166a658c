"""Write files all-or-nothing: a temp file in the same directory, then ``os.replace``.

A failed or interrupted run leaves the previous file exactly as it was.

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
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Union

from .errors import InvalidValueError, SymvgRuntimeError

Content = Union[str, bytes, Callable[[BinaryIO], None]]


def check_writable(path: "str | os.PathLike[str]") -> Path:
    """Fail early, with the reason, if ``path`` cannot be written (missing directory, a directory)."""
    p = Path(path)
    if p.is_dir():
        raise InvalidValueError(f"output {str(p)!r} is a directory, not a file")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise InvalidValueError(f"output directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise InvalidValueError(f"output {str(p)!r} is not writable")
    return p


def write_atomic(path: "str | os.PathLike[str]", content: Content) -> None:
    """Write ``content`` (text, bytes, or a function that writes to a binary file) to ``path`` atomically."""
    p = check_writable(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent if str(p.parent) else ".")
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(content, str):
                f.write(content.encode("utf-8"))
            elif isinstance(content, bytes):
                f.write(content)
            else:
                content(f)
            f.flush()
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


__all__ = ["check_writable", "write_atomic", "SymvgRuntimeError"]
