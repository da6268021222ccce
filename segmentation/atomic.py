"""Output files that are complete or absent: a temporary file in the same folder, then a rename.

:func:`atomic_write` hands out a file object on a uniquely named temporary file beside the
destination (``.<name>.<random>.segmentation.tmp``, :data:`TEMP_SUFFIX`); when the block ends
without an error the data is flushed to disk and the file renamed over the destination with
``os.replace`` (atomic on POSIX and Windows), else the temporary file is removed. A crash,
``kill -9`` or a full disk therefore never leaves a truncated file under the final name (at worst
a hidden temporary file after ``kill -9``), and two processes writing the same name never mix their
bytes: the last rename wins, whole. :func:`remove_leftover_temps` removes the temporary files such
a killed writer left in a folder (only names of this writer's pattern), for a job that knows no
other writer is at work there (``segmentation segment`` holds the folder's lock).

Failures to write become :class:`OutputError` (an ``OSError``), whose one-line message names the
path and says how to fix it (no space left, read-only or forbidden folder, a folder where a file is
expected...). :func:`check_output_folder` and :func:`check_output_file` find those problems before
a long job starts.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

#: How the names of this writer's temporary files end: ``.<name>.<random>.segmentation.tmp``.
TEMP_SUFFIX = ".segmentation.tmp"
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.[A-Za-z0-9_]{8}" + re.escape(TEMP_SUFFIX) + "$")

_FIXES = {
    errno.ENOSPC: "no space left on the device; free some space or write to another disk",
    errno.EDQUOT: "the disk quota is exceeded; free some space or write to another disk",
    errno.EFBIG: "the file is larger than this file system or process allows; write elsewhere",
    errno.EACCES: "permission denied; choose a folder you can write to or fix its permissions",
    errno.EPERM: "permission denied; choose a folder you can write to or fix its permissions",
    errno.EROFS: "the file system is read-only; choose a writable folder",
    errno.EISDIR: "it is a folder; pass a file name",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
    errno.EEXIST: "a file is in the way where a folder is needed; choose another path",
    errno.ENAMETOOLONG: "the name is too long; choose a shorter path",
}


class OutputError(OSError):
    """A file or folder could not be written; ``str(err)`` is one line naming path and fix.

    Args:
        message: the one-line message.
        code: the ``errno`` of the underlying failure (kept as ``err.errno``), if any.
    """

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.errno = code


def output_error(path: str | os.PathLike, err: OSError) -> OutputError:
    """Turn an ``OSError`` raised while writing ``path`` into an :class:`OutputError`.

    Args:
        path: the destination the caller was writing (named in the message, not the temp file).
        err: the original error; its ``errno`` selects the advice.

    Returns:
        ``OutputError("cannot write PATH: ADVICE")`` with the same ``errno``; an ``OutputError``
        is returned as is.
    """
    if isinstance(err, OutputError):
        return err
    return OutputError(f"cannot write {path}: {_advice(err)}", err.errno)


def _advice(err: OSError) -> str:
    return _FIXES.get(err.errno) or err.strerror or str(err) or type(err).__name__


@contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "w", *, encoding: str | None = None
) -> Iterator[IO[Any]]:
    """Open a temporary file that replaces ``path`` when the ``with`` block succeeds.

    Args:
        path: destination file; its parent folders are created.
        mode: ``"w"`` (text, UTF-8 unless ``encoding`` is given, ``newline=""`` so that ``csv``
            controls line ends) or ``"wb"`` (binary).
        encoding: text encoding, ``"w"`` only.

    Yields:
        The open file object (seekable), to be written by the caller.

    Raises:
        OutputError: the folder or file cannot be written, or an ``OSError`` was raised inside the
            block (a write failure). Any other error inside the block propagates unchanged.
            Either way ``path`` is left untouched and the temporary file is removed.

    Example:
        >>> with atomic_write(tmp / "table.csv") as f:  # doctest: +SKIP
        ...     f.write("a,b\\n1,2\\n")
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder; pass a file name", errno.EISDIR)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        prefix = f".{path.name[:200]}."  # unique per call: writers of one name never mix bytes
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as err:
        raise output_error(path, err) from err
    try:
        os.close(fd)  # reopened by name: writers such as tifffile want a named file object
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; outputs are for sharing
        text = {"encoding": encoding or "utf-8", "newline": ""} if mode == "w" else {}
        with open(tmp, mode, **text) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(err, OSError):
            raise output_error(path, err) from err
        raise


def temp_destination(name: str) -> str | None:
    """The destination a temporary file of :func:`atomic_write` was for, from its name.

    Args:
        name: a file name (no folder).

    Returns:
        ``"labels.tif"`` for ``".labels.tif.k3j_x9ab.segmentation.tmp"``; ``None`` for any name
        that is not this writer's temporary file (``".a.tmp"``, ``"notes.tmp"``...).
    """
    match = _TEMP_NAME.match(name)
    return match["name"] if match else None


def remove_leftover_temps(
    folder: str | os.PathLike, destinations: set[str] | None = None
) -> list[Path]:
    """Remove the temporary files of :func:`atomic_write` left in ``folder`` by a killed writer.

    Call it only when no other writer is at work in ``folder`` (a live writer's temporary file
    would go, and its rename fail). Sub-folders and every other file are left alone.

    Args:
        folder: the folder (not searched recursively); a missing folder has none.
        destinations: remove only temporary files for these destination names (the files this
            job writes); ``None``: all of them.

    Returns:
        The removed files, sorted.

    Raises:
        OutputError: a leftover could not be removed (message names it and the fix).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    if destinations is not None:  # the writer cuts long names to 200 characters
        destinations = {name[:200] for name in destinations}
    removed = []
    for path in sorted(folder.iterdir()):
        target = temp_destination(path.name)
        if target is None or (destinations is not None and target not in destinations):
            continue
        if not path.is_file() or path.is_symlink():
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as err:
            raise OutputError(f"cannot remove {path}: {_advice(err)}", err.errno) from err
        removed.append(path)
    return removed


def check_output_folder(
    folder: str | os.PathLike, what: str = "output folder", *, create: bool = True
) -> Path:
    """Prove that files can be written in ``folder``, by creating and removing one there.

    Args:
        folder: the folder outputs will be written to.
        what: how messages name it (e.g. ``"--output"``).
        create: create ``folder`` (and its parents) now; with ``False`` nothing is left on disk
            and a missing folder is checked through its nearest existing parent.

    Returns:
        ``folder`` as a ``Path``.

    Raises:
        OutputError: ``folder`` or a parent is an existing file, or it cannot be created or
            written (read-only, permission denied...).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(
            f"{what} {folder} is a file, not a folder; pass a folder path", errno.ENOTDIR
        )
    try:
        probe_dir = folder
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        else:
            while not probe_dir.exists() and probe_dir != probe_dir.parent:
                probe_dir = probe_dir.parent
            if not probe_dir.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(probe_dir))
        fd, probe = tempfile.mkstemp(prefix=".write-check.", suffix=".tmp", dir=probe_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        message = f"cannot write to {what} {folder}: {_advice(err)}"
        raise OutputError(message, err.errno) from err
    return folder


def check_output_file(
    path: str | os.PathLike, what: str = "output file", *, create: bool = True
) -> Path:
    """Check that ``path`` can be written as a file: not a folder, its folder writable.

    Args:
        path: the file a job will write at its end.
        what: how messages name it (e.g. ``"--submission"``).
        create: create the parent folder now (see :func:`check_output_folder`).

    Returns:
        ``path`` as a ``Path``.

    Raises:
        OutputError: ``path`` is a folder, or its folder cannot be created or written.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(
            f"{what} {path} is a folder; pass a file name such as {path / 'x.csv'}", errno.EISDIR
        )
    check_output_folder(path.parent, f"the folder of {what}", create=create)
    return path
