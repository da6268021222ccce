"""One run at a time per output folder: the lock file ``.segmentation.lock``.

A run that writes into a folder first creates ``.segmentation.lock`` there with
``O_CREAT | O_EXCL`` (atomic: of two runs, one creates it and the other finds it), holding one JSON
object that names the run::

    {"pid": 4242, "host": "node1", "started": "2026-05-01T10:00:00+02:00",
     "command": "segmentation segment images/ --output out/", "job": null, "rank": 0,
     "token": "9f1c..."}

and removes it when it ends, normally or not (an exception, Ctrl-C, ``SIGTERM`` under
:func:`terminate_as_exit`). A second run into the folder is refused with
:class:`OutputLockedError`, whose one-line message names the other run (pid, host, start time,
command) and the fix. A lock whose run is gone (``kill -9``, a power cut) is *stale*: its host is
this one and its pid is no longer alive, or is alive but started after the lock was written (a
reused pid); a stale lock is taken over with a warning. A lock of another host (or any lock on
Windows) is always taken as live, as its pid cannot be checked from here: the message says to
delete it once that run has ended.

The ranks of one sharded job (``torchrun``: the same ``job`` key, see :func:`job_key`) write
into one folder together: each holds ``.segmentation.rank<R>.lock`` and accepts the others' locks;
any lock of another run, in either form, refuses the folder. Each run creates its own lock before
looking at the others', so of two runs that start together at least one is refused.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import shlex
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

#: The lock file of a single run.
LOCK_NAME = ".segmentation.lock"
_ANY_LOCK = re.compile(r"^\.segmentation(\.rank\d+)?\.lock$")


class OutputLockedError(RuntimeError):
    """The folder is being written by another live run; ``str(err)`` is one line with the fix."""


@dataclass(frozen=True)
class LockRecord:
    """What a lock file says about the run holding it (fields as stored, see the module doc)."""

    pid: int
    host: str
    started: str
    command: str
    job: str | None = None
    rank: int = 0

    def describe(self) -> str:
        """``pid 4242 on host node1, started 2026-05-01T10:00:00+02:00, command: ...``."""
        return (
            f"pid {self.pid} on host {self.host}, started {self.started}, "
            f"command: {self.command or '(unknown)'}"
        )


def job_key(environ: dict[str, str] | os._Environ | None = None) -> str | None:
    """The key shared by the ranks of one sharded job, or ``None`` for a single run.

    Built from ``WORLD_SIZE`` (over 1), ``TORCHELASTIC_RUN_ID``, ``MASTER_ADDR`` and
    ``MASTER_PORT``: two jobs on one machine cannot share a master port.
    """
    env = os.environ if environ is None else environ
    world_size = int(env.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return None
    run_id, addr, port = (
        env.get(k, "") for k in ("TORCHELASTIC_RUN_ID", "MASTER_ADDR", "MASTER_PORT")
    )
    return f"{run_id}@{addr}:{port}/{world_size}"


class OutputLock:
    """A lock this process holds on a folder; :meth:`release` removes it (if still its own)."""

    def __init__(self, path: Path, record: LockRecord, raw: bytes):
        self.path, self.record, self._raw = path, record, raw

    def release(self) -> None:
        """Remove the lock file, unless it is gone or another run's by now (then leave it)."""
        with contextlib.suppress(FileNotFoundError):  # gone already: nothing to release
            if self.path.read_bytes() == self._raw:
                self.path.unlink()

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def acquire_output_lock(
    folder: str | os.PathLike,
    *,
    what: str = "--output",
    command: str | None = None,
    job: str | None = None,
    rank: int = 0,
    warn: Callable[[str], None] = _warn,
) -> OutputLock:
    """Lock ``folder`` (an existing folder) for this run, taking over stale locks.

    Args:
        folder: the output folder.
        what: how messages name it.
        command: the command line recorded (default: ``sys.argv``).
        job: the sharded job's key (:func:`job_key`); ``None`` for a single run.
        rank: this process's rank in the job.
        warn: called with one line per stale lock taken over.

    Returns:
        The held lock (a context manager that releases it).

    Raises:
        OutputLockedError: another live run holds a lock in ``folder`` (message: that run, and
            the fix).
        OSError: the lock file cannot be created (not a folder, read-only...).
    """
    folder = Path(folder)
    path = folder / (LOCK_NAME if job is None else f".segmentation.rank{rank}.lock")
    if command is None:
        command = shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])
    started = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    record = LockRecord(os.getpid(), socket.gethostname(), started, command, job, rank)
    data = {**record.__dict__, "token": uuid.uuid4().hex}
    raw = (json.dumps(data) + "\n").encode()
    for _ in range(5):  # a lost race for a stale lock: look again
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            _take_over_if_stale(path, folder, what, warn)
            continue
        try:
            written = 0
            while written < len(raw):
                written += os.write(fd, raw[written:])
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)  # an empty lock would stop the next run for a second
            raise
        os.close(fd)
        lock = OutputLock(path, record, raw)
        try:
            _check_others(lock, folder, what, job, warn)
        except BaseException:
            lock.release()
            raise
        return lock
    raise OutputLockedError(f"{what} {folder}: could not take its lock {path}; try again")


def _check_others(lock: OutputLock, folder: Path, what: str, job: str | None, warn) -> None:
    """Refuse if our lock was replaced or another run's lock is in the folder; drop stale ones."""
    holder = _read(lock.path)
    if holder is None or holder[1] != lock._raw:
        other = holder[0] if holder else None
        raise OutputLockedError(_locked_message(folder, what, lock.path, other))
    for path in sorted(folder.iterdir()):
        if path == lock.path or not _ANY_LOCK.match(path.name):
            continue
        found = _read(path)
        if found is None:
            continue  # removed meanwhile
        record = found[0]
        if record is not None and job is not None and record.job == job and _alive(record):
            continue  # another rank of this job
        if record is not None and _alive(record):
            raise OutputLockedError(_locked_message(folder, what, path, record))
        _remove_stale(path, found[1], warn)


def _take_over_if_stale(path: Path, folder: Path, what: str, warn) -> None:
    """``path`` exists: refuse if its run is live, else remove it (with a warning)."""
    found = _read(path)
    if found is None:
        return  # removed meanwhile: try again
    record, raw = found
    if record is not None and _alive(record):
        raise OutputLockedError(_locked_message(folder, what, path, record))
    _remove_stale(path, raw, warn)


def _remove_stale(path: Path, raw: bytes, warn) -> None:
    """Move the stale lock aside and delete it; put back a lock that changed meanwhile."""
    aside = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.stale")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return  # another run took it over first
    if aside.read_bytes() != raw:  # a fresh lock replaced the stale one: not ours to remove
        with contextlib.suppress(FileExistsError):  # a newer lock already guards the folder
            os.link(aside, path)
        aside.unlink()
        return
    aside.unlink()
    record = _parse(raw)
    who = record.describe() if record else "its content is unreadable"
    warn(f"took over the stale lock {path} of a run that is no longer running ({who})")


def _read(path: Path) -> tuple[LockRecord | None, bytes] | None:
    """``(record or None if unreadable, raw bytes)``, or ``None`` if the file is gone.

    A lock is written right after it is created; an empty or unreadable one is read again for
    up to a second before it counts as unreadable (a run killed in between: stale).
    """
    deadline = time.monotonic() + 1.0
    while True:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        record = _parse(raw)
        if record is not None or time.monotonic() > deadline:
            return record, raw
        time.sleep(0.05)


def _parse(raw: bytes) -> LockRecord | None:
    try:
        data = json.loads(raw)
        record = LockRecord(
            pid=int(data["pid"]),
            host=str(data["host"]),
            started=str(data.get("started", "")),
            command=str(data.get("command", "")),
            job=data.get("job"),
            rank=int(data.get("rank", 0)),
        )
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return record if record.pid > 0 else None


def _alive(record: LockRecord) -> bool:
    """Whether the run of ``record`` may still be running (another host's: assumed so)."""
    if record.host != socket.gethostname() or os.name == "nt":  # Windows: os.kill(pid, 0) kills
        return True
    try:
        os.kill(record.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    except OSError:
        return True
    began = _process_start(record.pid)
    try:
        locked = dt.datetime.fromisoformat(record.started).timestamp()
    except ValueError:
        return True
    return began is None or began <= locked + 2.0  # started after the lock: a reused pid


def _process_start(pid: int) -> float | None:
    """When process ``pid`` started (Unix time, Linux ``/proc``), or ``None`` if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _locked_message(folder: Path, what: str, path: Path, record: LockRecord | None) -> str:
    who = record.describe() if record else "a run whose lock was just taken"
    return (
        f"{what} {folder} is being written by another run ({who}); wait for it to end or choose "
        f"another {what} (if that run has ended, delete {path})"
    )


def hold_output_folder(
    folder: str | os.PathLike,
    *,
    command: str | None = None,
    job: str | None = None,
    rank: int = 0,
    own_files: set[str] | None = None,
    warn: Callable[[str], None] = _warn,
) -> OutputLock:
    """Lock ``folder`` (:func:`acquire_output_lock`), then remove what a killed run left there.

    The leftovers are the atomic writer's temporary files
    (:func:`segmentation.atomic.remove_leftover_temps`; one warning lists them): all of them for a
    single run, which now holds the folder alone; for a rank of a sharded job, which shares it,
    only those of ``own_files`` (the file names it writes).

    Args:
        folder: the output folder (it exists).
        command, job, rank, warn: as for :func:`acquire_output_lock`.
        own_files: see above; ``None``: every leftover.

    Returns:
        The held lock (a context manager that releases it).

    Raises:
        OutputLockedError: another live run holds the folder.
        segmentation.atomic.OutputError: the lock or a leftover cannot be written or removed.
    """
    from segmentation.atomic import output_error, remove_leftover_temps

    folder = Path(folder)
    try:
        lock = acquire_output_lock(folder, command=command, job=job, rank=rank, warn=warn)
    except OSError as err:
        raise output_error(folder / LOCK_NAME, err) from err
    try:
        removed = remove_leftover_temps(folder, None if job is None else own_files)
    except BaseException:
        lock.release()
        raise
    if removed:
        listed = ", ".join(path.name for path in removed)
        warn(f"removed {len(removed)} temporary file(s) a killed run left in {folder}: {listed}")
    return lock


def command_line(fallback: list[str], expect: str) -> str:
    """This process's command line as typed (``sys.argv``), for a lock to show to a user.

    Args:
        fallback: the arguments to show when ``sys.argv`` is not the command (a ``main([...])``
            called from Python, e.g. a test run); the first is the program.
        expect: an argument the command line must hold to count as the command (the folder).
    """
    argv = [Path(sys.argv[0]).name, *sys.argv[1:]]
    if argv[0] == "__main__.py":
        argv[0] = "python -m " + Path(sys.argv[0]).parent.name
    if not any(a == expect or a.endswith(f"={expect}") for a in argv[1:]):
        argv = fallback
    return " ".join([argv[0], shlex.join(argv[1:])])


@contextmanager
def terminate_as_exit() -> Iterator[None]:
    """Within the block, ``SIGTERM`` raises ``SystemExit(143)`` so ``finally`` blocks run.

    Only in the main thread, and only where ``SIGTERM`` has its default action; the previous
    handler is restored after the block.
    """
    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def _exit(signum, frame):
        raise SystemExit(128 + signal.SIGTERM)

    signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


__all__ = [
    "LOCK_NAME",
    "LockRecord",
    "OutputLock",
    "OutputLockedError",
    "acquire_output_lock",
    "command_line",
    "hold_output_folder",
    "job_key",
    "terminate_as_exit",
]
