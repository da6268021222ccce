"""The run folder of ``segmentation train`` (``train.output``): what a start may find there.

A new run never mixes with an old one: :func:`check_run_folder` refuses to start a fresh run in a
folder that holds a previous run's files (``model.pt``, ``member_N/last.pt``, ``best.pt``,
``metrics.csv``) unless ``--overwrite`` (remove them first) or ``--resume`` (continue it) is given;
``--resume`` needs a ``last.pt`` to continue from, whose network config must be the recipe's.
:func:`clean_run_folder` then removes what is to go, including the temporary files that a
checkpoint write killed hard (SIGKILL, power loss) leaves behind (see
:func:`segmentation.modelfile.atomic_save`). :func:`write_metrics` rewrites a member's
``metrics.csv`` from its history, so the log always matches the checkpoint; :class:`EpochLog` does
it each epoch (and writes TensorBoard events when tensorboard is installed).
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from segmentation.modelfile import orphaned_temporary_files, read_checkpoint
from segmentation.training.config import Config

#: Files a run writes into a member folder (``member_N/``), and into the run folder.
MEMBER_FILES = ("last.pt", "best.pt", "metrics.csv")
RUN_FILES = ("model.pt",)
_MEMBER_FOLDER = re.compile(r"member_\d+")


def _member_folders(output: Path, members: list[int] | None = None) -> list[Path]:
    if not output.is_dir():
        return []
    return sorted(
        p
        for p in output.iterdir()
        if p.is_dir()
        and _MEMBER_FOLDER.fullmatch(p.name)
        and (members is None or int(p.name.removeprefix("member_")) in members)
    )


def previous_run(output: str | Path, members: list[int] | None = None) -> list[Path]:
    """The files of a previous run in ``output`` (``model.pt``, ``member_N/last.pt``, ``best.pt``,
    ``metrics.csv``), sorted; ``[]`` when there is none (orphaned temporary files do not count).

    ``members``: look only at these members' files (a run of one member, ``train.member``, joins
    the others' folders and rewrites ``model.pt`` from all of them); None for the whole run.
    """
    output = Path(output)
    found = [output / n for n in RUN_FILES if members is None and (output / n).is_file()]
    for folder in _member_folders(output, members):
        found += [folder / name for name in MEMBER_FILES if (folder / name).is_file()]
    return sorted(found)


def changed_network_keys(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``"key: old -> new"`` for each key of a member's model config that differs (a missing key
    reads as ``<unset>``), sorted by key."""
    unset = "<unset>"
    return [
        f"model.{key}: {stored.get(key, unset)!r} -> {current.get(key, unset)!r}"
        for key in sorted(set(stored) | set(current), key=str)
        if stored.get(key, unset) != current.get(key, unset)
    ]


def check_run_folder(
    config: Config, members: list[int], *, resume: bool, overwrite: bool
) -> list[Path]:
    """Check that training may start in ``config.train.output``; changes nothing.

    Args:
        config: the recipe.
        members: indices of the ensemble members this run trains; with ``train.member`` set,
            only their files count as a previous run (see :func:`previous_run`).
        resume: ``--resume``: continue the run there.
        overwrite: ``--overwrite``: replace the run there.

    Returns:
        The files of the previous run (:func:`previous_run`).

    Raises:
        ValueError: both flags; a fresh start into a folder holding a run; ``--resume`` with no
            ``last.pt`` of these members, with a damaged one, or with a network config (family or
            ``model`` keys) that differs from the one it was trained with (the keys are named).
    """
    output = Path(config.train.output)
    if resume and overwrite:
        raise ValueError(
            "--resume continues the run in train.output and --overwrite replaces it: give one"
        )
    found = previous_run(output, members if config.train.member is not None else None)
    if not resume:
        if found and not overwrite:
            names = ", ".join(str(p.relative_to(output)) for p in found[:3])
            more = f" and {len(found) - 3} more" if len(found) > 3 else ""
            raise ValueError(
                f"train.output {str(output)!r} already holds a training run ({names}{more}); add "
                "--resume to continue it, --overwrite to replace it, or set train.output to a "
                "new folder"
            )
        return found
    lasts = {i: output / f"member_{i}" / "last.pt" for i in members}
    if not any(path.is_file() for path in lasts.values()):
        raise ValueError(
            f"--resume: train.output {str(output)!r} holds no last.pt to continue from (looked "
            f"for {', '.join(str(p) for p in lasts.values())}); drop --resume to start a new run"
        )
    configs = config.members()
    for i, path in lasts.items():
        if not path.is_file():
            continue
        try:
            ckpt = read_checkpoint(path)
        except ValueError as err:
            raise ValueError(
                f"--resume: {err}; the run cannot continue from it: start it again with --overwrite"
            ) from None
        changed = changed_network_keys(ckpt["members"][0]["config"], configs[i])
        if ckpt.get("family") != config.family:
            changed.insert(0, f"family: {ckpt.get('family')!r} -> {config.family!r}")
        if changed:
            raise ValueError(
                f"--resume: the recipe's network differs from the one {path} was trained with "
                f"({'; '.join(changed)}); restore those values to continue the run, or start a "
                "new one (--overwrite, or another train.output)"
            )
        if ckpt.get("training_state") is None:
            raise ValueError(
                f"--resume: {path} holds no training state to continue from; start the run again "
                "with --overwrite"
            )
    return found


def clean_run_folder(
    output: str | Path, *, overwrite: bool, members: list[int] | None = None
) -> list[Path]:
    """Remove the previous run (with ``overwrite``: ``model.pt`` and the ``member_N/`` folders,
    or only the folders of ``members`` when given, see :func:`previous_run`) and the orphaned
    temporary files of killed checkpoint writes; other files are kept.

    Returns:
        The paths removed.
    """
    output = Path(output)
    removed = []
    if overwrite:
        if members is None and (output / "model.pt").is_file():
            (output / "model.pt").unlink()
            removed.append(output / "model.pt")
        for folder in _member_folders(output, members):
            shutil.rmtree(folder)
            removed.append(folder)
    orphans = orphaned_temporary_files(output, RUN_FILES)
    for folder in _member_folders(output):
        orphans += orphaned_temporary_files(folder, MEMBER_FILES)
    for path in orphans:
        path.unlink()
        removed.append(path)
    return removed


def write_metrics(history: list[dict[str, Any]], path: str | Path) -> None:
    """Write ``history`` (one dict per epoch) as the CSV ``path``, atomically.

    The columns are every key of every row, in order of first appearance (a validation epoch
    adds ``val_*`` columns; earlier rows leave them empty).
    """
    path = Path(path)
    fields: dict[str, None] = {}
    for row in history:
        fields.update(dict.fromkeys(row))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600
        with os.fdopen(fd, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(fields))
            writer.writeheader()
            writer.writerows(history)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class EpochLog:
    """``metrics.csv`` (rewritten from the history each epoch) and TensorBoard events (when
    tensorboard is installed) of one member; main rank only."""

    def __init__(self, folder: Path, enabled: bool):
        """Log into ``folder`` (a member's run folder); ``enabled`` False: log nothing."""
        self.path = folder / "metrics.csv"
        self.enabled = enabled
        self.tb = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(folder / "tensorboard"))
            except ImportError:  # tensorboard is optional
                self.tb = None

    def log(self, history: list[dict[str, Any]]) -> None:
        """Record the history whose last row is the epoch just finished."""
        if not self.enabled:
            return
        write_metrics(history, self.path)
        row = history[-1]
        if self.tb is not None:
            for key, value in row.items():
                if isinstance(value, int | float) and key not in ("epoch", "member"):
                    self.tb.add_scalar(key, value, row["epoch"])
            self.tb.flush()
