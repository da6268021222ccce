"""Outputs are complete or absent: atomic_write and every writer the command line uses."""

import csv
import errno
import types
from pathlib import Path

import numpy as np
import pytest

from segmentation import atomic
from segmentation.atomic import OutputError, atomic_write, check_output_file, check_output_folder
from segmentation.cli_segment import _merge_submission
from segmentation.datasets import io, rle
from segmentation.datasets.io import read_labels, write_labels
from segmentation.datasets.rle import write_submission_csv
from segmentation.evaluation import evaluate_dataset, report
from segmentation.inference import details
from segmentation.inference.details import NUCLEUS_DTYPE, nucleus_table, write_nuclei_csv
from segmentation.visualize import write_overlay

LABELS = np.zeros((12, 10), np.int32)
LABELS[2:5, 2:6] = 1
LABELS[7:10, 3:8] = 2


def result():
    return evaluate_dataset([(LABELS, LABELS)], names=["a"])


def write_parts(path):
    for rank in range(2):
        write_submission_csv(path.with_name(f"{path.name}.part{rank}"), {f"img{rank}": LABELS})
    return path


#: every writer of `segment` and `evaluate`: (name of the output file, function writing it)
WRITERS = {
    "labels_tif": ("a_labels.tif", lambda p: write_labels(p, LABELS)),
    "labels_png": ("a_labels.png", lambda p: write_labels(p, LABELS)),
    "overlay": ("a_overlay.png", lambda p: write_overlay(p, LABELS.astype(np.uint8), LABELS)),
    "nuclei": ("a_nuclei.csv", lambda p: write_nuclei_csv(p, nucleus_table(LABELS, LABELS), "a")),
    "submission": ("sub.csv", lambda p: write_submission_csv(p, {"a": LABELS})),
    "merge": ("merged.csv", lambda p: _merge_submission(p, 2)),  # after write_parts(p)
    "per_image": ("per_image.csv", lambda p: report.write_per_image_csv(result(), p)),
    "summary": ("summary.json", lambda p: report.write_summary_json(result(), p)),
    "curves": ("curves.png", lambda p: report.plot_threshold_curves({"a": result()}, p)),
}


def files_in(folder):
    return sorted(p.name for p in Path(folder).iterdir())


@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch, writer):
    name, write = WRITERS[writer]
    target = tmp_path / name
    if writer == "merge":
        write_parts(target)
    write(target)  # a complete file, as a previous run left it
    before = target.read_bytes()
    target.write_bytes(b"previous run")
    if writer == "merge":
        write_parts(target)

    def full_disk(src, dst):  # the data is written; the rename is the last step, and it fails
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", full_disk)
    with pytest.raises(OutputError, match=f"cannot write {target}: no space left") as err:
        write(target)
    assert "\n" not in str(err.value) and err.value.errno == errno.ENOSPC
    assert target.read_bytes() == b"previous run"
    parts = [f"{name}.part0", f"{name}.part1"] if writer == "merge" else []  # kept for a rerun
    assert files_in(tmp_path) == [name, *parts]
    monkeypatch.undo()
    write(target)  # the rerun (the merge from the parts left by the failed one)
    assert target.read_bytes() == before and files_in(tmp_path) == [name]


def test_a_crash_midway_through_a_label_tiff_leaves_no_file(tmp_path, monkeypatch):
    def half_written(target, data, **kwargs):  # tifffile writing the header, then the disk fills
        if isinstance(target, str | Path):
            target = open(target, "wb")  # noqa: SIM115 (as tifffile does with a path)
        target.write(b"II*\x00" + b"\x00" * 100)
        target.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io.tifffile, "imwrite", half_written)
    with pytest.raises(OSError, match="no space left on the device; free some space"):
        write_labels(tmp_path / "a_labels.tif", LABELS)
    assert files_in(tmp_path) == []


def test_a_crash_midway_through_a_nucleus_table_leaves_no_file(tmp_path, monkeypatch):
    table = nucleus_table(LABELS, LABELS)
    calls = []

    def killed(value):  # the process dies after a few fields were formatted
        calls.append(value)
        if len(calls) > 12:
            raise KeyboardInterrupt
        return str(value)

    monkeypatch.setattr(details, "_fmt", killed)
    with pytest.raises(KeyboardInterrupt):
        write_nuclei_csv(tmp_path / "a_nuclei.csv", table, "a")
    assert files_in(tmp_path) == []


def test_a_crash_midway_through_a_submission_leaves_no_file(tmp_path, monkeypatch):
    class DiesAfterTheHeader:
        def __init__(self, f, **kwargs):
            self.writer = csv.writer(f, **kwargs)
            self.rows = 0

        def writerow(self, row):
            self.rows += 1
            if self.rows > 1:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.writer.writerow(row)

    monkeypatch.setattr(rle, "csv", types.SimpleNamespace(writer=DiesAfterTheHeader))
    with pytest.raises(OSError, match=r"sub\.csv: no space left"):
        write_submission_csv(tmp_path / "sub.csv", {"a": LABELS})
    assert files_in(tmp_path) == []


def test_writers_of_one_name_use_distinct_temporary_files_and_never_mix(tmp_path):
    target = tmp_path / "out.csv"
    with atomic_write(target) as first, atomic_write(target) as second:
        assert first.name != second.name
        assert Path(first.name).parent == tmp_path and Path(first.name).name.startswith(".out.csv.")
        for _ in range(1000):
            first.write("first\n")
            second.write("second\n")
        assert not target.exists()
    assert target.read_text() == "first\n" * 1000  # the last rename (outer block) wins, whole
    assert files_in(tmp_path) == ["out.csv"]


def test_atomic_files_are_readable_by_others_and_binary_mode_works(tmp_path):
    with atomic_write(tmp_path / "sub" / "a.bin", "wb") as f:
        f.write(b"\x00\x01")
    path = tmp_path / "sub" / "a.bin"
    assert path.read_bytes() == b"\x00\x01" and path.stat().st_mode & 0o044 == 0o044
    with pytest.raises(ValueError, match="mode must be"):
        with atomic_write(path, "a"):
            pass


def test_write_errors_name_the_path_and_the_fix(tmp_path):
    (tmp_path / "folder").mkdir()
    with pytest.raises(OutputError, match="folder: it is a folder; pass a file name"):
        write_submission_csv(tmp_path / "folder", {"a": LABELS})
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="a file is in the way where a folder is needed"):
        write_labels(tmp_path / "file" / "a_labels.tif", LABELS)
    with pytest.raises(OutputError, match="--output .*file is a file, not a folder; pass a folder"):
        check_output_folder(tmp_path / "file", "--output")
    with pytest.raises(OutputError, match="--submission .*folder is a folder; pass a file name"):
        check_output_file(tmp_path / "folder", "--submission")
    assert check_output_folder(tmp_path / "new" / "out", create=False) == tmp_path / "new" / "out"
    assert not (tmp_path / "new").exists()
    assert files_in(tmp_path) == ["file", "folder"]


def test_a_read_only_folder_is_found_before_writing(tmp_path, monkeypatch):
    def read_only(**kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(atomic, "tempfile", types.SimpleNamespace(mkstemp=read_only))
    with pytest.raises(OutputError, match="--output .*: the file system is read-only; choose a"):
        check_output_folder(tmp_path, "--output")
    with pytest.raises(OutputError, match=r"cannot write .*a\.csv: the file system is read-only"):
        write_submission_csv(tmp_path / "a.csv", {"a": LABELS})


def test_label_files_read_back_as_written(tmp_path):
    for suffix in (".tif", ".png"):
        write_labels(tmp_path / f"a{suffix}", LABELS)
        np.testing.assert_array_equal(read_labels(tmp_path / f"a{suffix}"), LABELS)


def test_nucleus_table_as_a_structured_array_gives_the_same_csv(tmp_path):
    frame = nucleus_table(LABELS, LABELS.astype(np.uint8))  # details.nuclei: a DataFrame
    records = np.zeros(len(frame), NUCLEUS_DTYPE)
    for name in NUCLEUS_DTYPE.names:
        records[name] = frame[name].to_numpy()
    write_nuclei_csv(tmp_path / "frame.csv", frame, "a")
    write_nuclei_csv(tmp_path / "array.csv", records, "a")
    assert (tmp_path / "array.csv").read_text() == (tmp_path / "frame.csv").read_text()
    assert (tmp_path / "array.csv").read_text().startswith("image,label,area,")
    with pytest.raises(TypeError, match="pandas DataFrame"):
        write_nuclei_csv(tmp_path / "bad.csv", [1, 2], "a")


def test_nucleus_table_as_a_real_dataframe(tmp_path):
    pd = pytest.importorskip("pandas")
    table = nucleus_table(LABELS, LABELS.astype(np.uint8))
    frame = pd.DataFrame({name: table[name] for name in NUCLEUS_DTYPE.names})
    write_nuclei_csv(tmp_path / "array.csv", table, "a")
    write_nuclei_csv(tmp_path / "frame.csv", frame, "a")
    assert (tmp_path / "array.csv").read_text() == (tmp_path / "frame.csv").read_text()
