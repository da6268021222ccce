"""The Dask cluster :func:`~segmentation.large.segment_large` runs on.

``client=None`` starts a local cluster. One worker (the default) runs in this process as a
thread pool: no process is started, so a plain script without ``if __name__ == "__main__":``
works. More workers are processes (PyTorch in parallel), started by multiprocessing's ``spawn``
method, which imports the main module again in each of them: a call at the top of a script
would run again there. Such a worker stops quietly before doing anything
(:func:`refuse_in_spawned_worker`) and the parent says why in one line.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: Environment variable naming the file a spawned worker creates when it finds itself re-running
#: the main script's ``segment_large`` call (set only while a local cluster's workers start).
SPAWN_MARKER = "SEGMENTATION_LARGE_SPAWN_MARKER"


def guard_message(workers: int) -> str:
    """The one-line error for a call that worker processes would run again."""
    return (
        f"segment_large(workers={workers}) starts worker processes, which re-run this script: "
        'put the call under `if __name__ == "__main__":` (or use workers=1)'
    )


def _multiprocess(client: Any, workers: Any) -> bool:
    """Whether these arguments start a local cluster of worker processes."""
    return (
        client is None
        and isinstance(workers, int)
        and not isinstance(workers, bool)
        and workers > 1
    )


def refuse_in_spawned_worker(client: Any, workers: Any) -> None:
    """Stop a call made while a spawned process imports the main module (its bootstrap).

    A local cluster of several workers starts them with multiprocessing's ``spawn`` (or
    ``forkserver``) method, which imports the main script again in each; an unguarded call
    there would start a cluster of its own. Started by :func:`open_cluster`, the worker exits
    quietly (status 1) after leaving the marker the parent reports in one line; in any other
    spawned process it raises the same message.

    Raises:
        SystemExit: in a local cluster's worker process re-running the main script.
        RuntimeError: in another spawned process re-running the main script.
    """
    if not _multiprocess(client, workers):
        return  # one local worker runs in-process: nothing is spawned
    # The check multiprocessing.spawn._check_not_importing_main makes: set while a spawned (or
    # forkserver) process imports the main module, before its target runs.
    if not getattr(multiprocessing.current_process(), "_inheriting", False):
        return
    marker = os.environ.get(SPAWN_MARKER)
    if marker:
        Path(marker).touch()
        raise SystemExit(1)  # no traceback from every worker: the parent says it once
    raise RuntimeError(guard_message(workers))


def task_threads(cores: int, slots: int) -> Callable[[int], int]:
    """PyTorch threads per task for a pass of ``tasks`` tasks on a local cluster of ``slots``
    task slots (workers x threads) on ``cores`` cores: the cores divided among the tasks that
    run at once (one block on two workers gets both cores)."""

    def threads(tasks: int) -> int:
        return max(1, cores // max(1, min(slots, tasks)))

    return threads


@contextmanager
def open_cluster(
    client: Any, workers: int, threads_per_worker: int
) -> Iterator[tuple[Any, Callable[[int], int | None]]]:
    """``(client, torch threads per task)`` for :func:`~segmentation.large.segment_large`.

    Args:
        client: a ``distributed.Client`` (used as is), a scheduler address (connected to and
            closed at the end), or ``None``: a local cluster of ``workers`` x
            ``threads_per_worker`` (closed at the end). One worker runs in this process
            (threads; no Dask memory limit: the process is the client too); more are
            processes.
        workers, threads_per_worker: the local cluster's size.

    Yields:
        The client, and the PyTorch threads each task of a pass of ``n`` tasks uses,
        ``threads(n)``: on a local cluster the machine's cores divided among the tasks that run
        at once (:func:`task_threads`); on another cluster ``None`` (as its workers allow).

    Raises:
        TypeError, ValueError: a bad ``client``, ``workers`` or ``threads_per_worker``.
        RuntimeError: worker processes that would run an unguarded call of the main script
            again (:func:`guard_message`).
    """
    from distributed import Client, LocalCluster

    def unset(tasks: int) -> None:
        return None

    if isinstance(client, Client):
        yield client, unset
        return
    if isinstance(client, str):
        with Client(client) as remote:
            yield remote, unset
        return
    if client is not None:
        raise TypeError(
            f"client must be None (a local cluster), a distributed.Client or a scheduler address "
            f"such as 'tcp://host:8786', got {type(client).__name__}"
        )
    for name, value in (("workers", workers), ("threads_per_worker", threads_per_worker)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    threads = task_threads(os.cpu_count() or 1, workers * threads_per_worker)
    settings = {
        "n_workers": workers,
        "threads_per_worker": threads_per_worker,
        "dashboard_address": "127.0.0.1:0",
        "silence_logs": logging.ERROR,
    }
    if workers == 1:
        # In-process: nothing re-imports the main module. The tasks set their PyTorch threads
        # (segmentation.large.block) as in a worker process. No memory limit: Dask would count
        # the client's memory too and pause the worker, with no nanny to restart it.
        cluster = LocalCluster(processes=False, memory_limit=0, **settings)
    else:
        cluster = _process_cluster(workers, settings)
    with cluster, Client(cluster) as local:
        yield local, threads


#: Environment variables Dask's nanny sets in the worker processes that this cluster does not:
#: ``MALLOC_TRIM_THRESHOLD_=65536`` hands freed memory back to the system at once, so that every
#: large tensor of a forward pass is mapped and faulted in anew (measured: forward passes of the
#: default model 16 % slower, a third more system time). Without it a worker keeps more freed
#: memory for reuse: its peak on a 4096 x 4096 image in blocks of 2048 rose from 1.6 to 1.9 GiB.
UNSET_WORKER_ENVIRON = ("MALLOC_TRIM_THRESHOLD_",)


def _process_cluster(workers: int, settings: dict) -> Any:
    """A started local cluster of worker processes (without :data:`UNSET_WORKER_ENVIRON`); a
    worker that found itself re-running the main script's call
    (:func:`refuse_in_spawned_worker`) turns the start's failure into the one-line
    :func:`guard_message`."""
    import dask
    from distributed import LocalCluster

    unset = {f"distributed.nanny.pre-spawn-environ.{name}": None for name in UNSET_WORKER_ENVIRON}
    with tempfile.TemporaryDirectory(prefix="segmentation-workers-") as folder:
        marker = Path(folder) / "unguarded"
        previous = os.environ.get(SPAWN_MARKER)
        os.environ[SPAWN_MARKER] = str(marker)  # inherited by the processes spawned now
        try:
            with dask.config.set(unset):
                return LocalCluster(processes=True, host="127.0.0.1", **settings)
        except Exception:
            if marker.exists():
                raise RuntimeError(guard_message(workers)) from None
            raise
        finally:
            if previous is None:
                os.environ.pop(SPAWN_MARKER, None)
            else:
                os.environ[SPAWN_MARKER] = previous
