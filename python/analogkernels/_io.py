"""File writing shared by every module that writes results or caches."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w", **open_kwargs: Any) -> Iterator[IO]:
    """Open a temporary file beside ``path`` and move it onto ``path`` on success.

    An interruption (an exception, Ctrl-C, a killed process) never leaves a
    partial ``path``: readers see the old file or the whole new one
    (:func:`os.replace` is atomic within a file system). On an exception the
    temporary file is removed and the exception propagates.

    Parameters
    ----------
    path : str or path-like
        The file to write; its folder must exist.
    mode : {"w", "wb"}
        Text or binary.
    **open_kwargs
        Passed to :func:`open` (``newline=``, ``encoding=``).

    Yields
    ------
    file object
        The open temporary file.
    """
    path = Path(path)
    # Process and thread in the name: two writers of the same file never share
    # a temporary. A plain open (not mkstemp) keeps the umask's permissions.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, mode, **open_kwargs) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
