"""The inputs of ``segmentation segment``: files from folders, their output names, ranks' shares.

An image's output name is its file stem (``a.png`` -> ``a``), unless another input has the same
stem (``a.png`` beside ``a.jpg``: ``a_png``, ``a_jpg``); inputs whose outputs would still collide
are refused (:func:`output_names`).
"""

from __future__ import annotations

from pathlib import Path


def collect_inputs(inputs: list[str]) -> list[Path]:
    """Expand folders into their image files (sorted); the same file given twice counts once.

    Args:
        inputs: image files and/or folders of them.

    Returns:
        The image files, in the order given (each folder's files sorted by name).

    Raises:
        FileNotFoundError: a path does not exist, or no image file was found.
    """
    from segmentation.inference.api import list_images

    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files.extend(list_images(path))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"input {item!r} does not exist")
    if not files:
        raise FileNotFoundError(f"no image files (PNG, JPEG, BMP, GIF, TIFF) in {inputs}")
    seen: set[Path] = set()
    unique = []
    for path in files:
        if path.resolve() not in seen:
            seen.add(path.resolve())
            unique.append(path)
    return unique


def output_names(files: list[Path]) -> tuple[dict[Path, str], dict[Path, str]]:
    """The output name of every input (see the module docstring), and the inputs refused.

    Args:
        files: the input image files (distinct paths).

    Returns:
        ``(names, refused)``: ``{file: name}`` for the files to segment, in input order, and
        ``{file: reason}`` for those whose name would still be another input's (the same file
        name in two folders, ...); names are compared ignoring case, as some file systems do.
    """
    by_stem: dict[str, list[Path]] = {}
    for path in files:
        by_stem.setdefault(path.stem.casefold(), []).append(path)
    wanted = {
        path: path.stem if len(by_stem[path.stem.casefold()]) == 1 else _with_suffix(path)
        for path in files
    }
    by_name: dict[str, list[Path]] = {}
    for path, name in wanted.items():
        by_name.setdefault(name.casefold(), []).append(path)
    names, refused = {}, {}
    for path, name in wanted.items():
        others = [str(p) for p in by_name[name.casefold()] if p is not path]
        if others:
            refused[path] = (
                f"its outputs ({name}_labels.tif...) would overwrite those of {', '.join(others)}; "
                "rename one of them or segment them into different --output folders"
            )
        else:
            names[path] = name
    return names, refused


def _with_suffix(path: Path) -> str:
    """``a.jpg`` -> ``a_jpg``: the name of an input that shares its stem with another input."""
    return f"{path.stem}_{path.suffix.lstrip('.').lower()}"


def shard(files: list[Path], rank: int, world_size: int) -> list[Path]:
    """This rank's share of the files: every ``world_size``-th file from ``rank``."""
    if not 0 <= rank < world_size:
        raise ValueError(f"RANK must lie in [0, WORLD_SIZE), got {rank} of {world_size}")
    return files[rank::world_size]
