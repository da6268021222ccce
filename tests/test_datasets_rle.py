"""Kaggle run-length encoding and the solution/submission CSV files."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from segmentation.datasets.rle import (
    labels_to_rles,
    read_rle_csv,
    rle_decode,
    rle_encode,
    write_submission_csv,
)


@settings(max_examples=200, deadline=None)
@given(
    arrays(
        dtype=bool,
        shape=st.tuples(st.integers(1, 24), st.integers(1, 24)),
        elements=st.booleans(),
    )
)
def test_encode_then_decode_is_identity(mask):
    rle = rle_encode(mask)
    np.testing.assert_array_equal(rle_decode(rle, mask.shape), mask)
    values = [int(v) for v in rle.split()]
    starts, lengths = values[0::2], values[1::2]
    assert starts == sorted(starts) and all(n >= 1 for n in lengths)
    assert sum(lengths) == mask.sum()


def test_known_kaggle_string_decodes_to_known_pixels():
    # Built from the definition: H=4, W=3, pixels numbered 1.. top to bottom, then left to right:
    # column 0 holds pixels 1-4, column 1 pixels 5-8, column 2 pixels 9-12.
    # "2 3" = pixels 2, 3, 4 = rows 1-3 of column 0; "10 2" = pixels 10, 11 = rows 1-2 of column 2.
    expected = np.array(
        [
            [0, 0, 0],
            [1, 0, 1],
            [1, 0, 1],
            [1, 0, 0],
        ],
        dtype=bool,
    )
    np.testing.assert_array_equal(rle_decode("2 3 10 2", (4, 3)), expected)
    assert rle_encode(expected) == "2 3 10 2"


def test_a_run_continues_at_the_top_of_the_next_column():
    mask = rle_decode("4 2", (4, 3))  # pixel 4 = (3, 0), pixel 5 = (0, 1)
    assert set(zip(*np.nonzero(mask), strict=True)) == {(3, 0), (0, 1)}


def test_empty_mask_is_empty_string():
    assert rle_encode(np.zeros((3, 3), bool)) == ""
    assert not rle_decode("", (3, 3)).any()


@pytest.mark.parametrize(
    ("rle", "message"),
    [
        ("1 2 3", "pairs"),
        ("0 2", "1-based"),
        ("1 0", "1-based"),
        ("5 2 1 2", "sorted"),
        ("1 3 2 2", "sorted"),
        ("11 5", "beyond"),
        ("a b", "integers"),
        ("12345678901234567890 1", "12345678901234567890 has 20 digits"),
        ("1 99999999999999999999", "has 20 digits"),
        ("9223372036854775807 9223372036854775807", "beyond the image's 12 pixels"),
    ],
)
def test_bad_rle_strings_are_refused(rle, message):
    with pytest.raises(ValueError, match=message):
        rle_decode(rle, (4, 3))


def test_encode_refuses_label_images():
    with pytest.raises(ValueError, match="labels_to_rles"):
        rle_encode(np.array([[0, 2], [1, 0]]))


def test_labels_to_rles_one_per_nucleus_in_label_order():
    labels = np.array([[0, 5, 5], [2, 0, 5], [2, 0, 0]], dtype=np.int32)
    rles = labels_to_rles(labels)
    assert len(rles) == 2
    np.testing.assert_array_equal(rle_decode(rles[0], labels.shape), labels == 2)
    np.testing.assert_array_equal(rle_decode(rles[1], labels.shape), labels == 5)
    assert labels_to_rles(np.zeros((3, 3), np.int32)) == []


def test_solution_csv_with_shapes_and_an_empty_image(tmp_path):
    path = tmp_path / "solution.csv"
    path.write_text(
        "ImageId,EncodedPixels,Height,Width,Usage\n"
        "a,2 3,4,3,Public\n"
        "a,10 2,4,3,Public\n"
        "b,,5,6,Private\n"
    )
    labels = read_rle_csv(path)
    assert list(labels) == ["a", "b"]
    np.testing.assert_array_equal(labels["a"], [[0, 0, 0], [1, 0, 2], [1, 0, 2], [1, 0, 0]])
    assert labels["a"].dtype == np.int32
    assert labels["b"].shape == (5, 6) and not labels["b"].any()


def test_submission_csv_needs_shapes(tmp_path):
    path = tmp_path / "sub.csv"
    path.write_text("ImageId,EncodedPixels\na,1 2\n")
    with pytest.raises(ValueError, match="shapes="):
        read_rle_csv(path)
    labels = read_rle_csv(path, shapes={"a": (2, 2)})
    np.testing.assert_array_equal(labels["a"], [[1, 0], [1, 0]])
    with pytest.raises(ValueError, match="columns"):
        (tmp_path / "bad.csv").write_text("Id,Pixels\na,1 2\n")
        read_rle_csv(tmp_path / "bad.csv")


def test_overlapping_nuclei_are_refused_naming_the_image(tmp_path):
    path = tmp_path / "overlap.csv"
    path.write_text("ImageId,EncodedPixels,Height,Width\nimg7,1 3,4,4\nimg7,3 2,4,4\n")
    with pytest.raises(ValueError, match=r"img7.*overlap"):
        read_rle_csv(path)


def test_csv_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbfImageId,EncodedPixels,Height,Width\r\na,2 3,4,3\r\n")
    labels = read_rle_csv(path)
    np.testing.assert_array_equal(labels["a"], [[0, 0, 0], [1, 0, 0], [1, 0, 0], [1, 0, 0]])


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("a,1 2 12345678901234567890 4,4,3", r"line 3: image a, nucleus 2: .* has 20 digits"),
        ("a,1 2,12345678901234567890,3", r"line 3: Height/Width .* must lie in 1\.\."),
        ("a,1 2,0,3", r"line 3: Height/Width \(0, 3\) must lie in"),
    ],
)
def test_bad_numbers_are_errors_naming_file_and_line(tmp_path, row, message):
    path = tmp_path / "sub.csv"
    path.write_text(f"ImageId,EncodedPixels,Height,Width\na,5 1,4,3\n{row}\n")
    with pytest.raises(ValueError, match=f"{path}, {message}"):
        read_rle_csv(path)


def test_csv_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("ImageId,EncodedPixels\nimag\xe9,1 2\n".encode("latin-1"))
    with pytest.raises(ValueError, match="latin1.csv is not UTF-8 text"):
        read_rle_csv(path, shapes={"imag\xe9": (2, 2)})


def test_write_submission_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    labels = {
        "zeta": rng.integers(0, 6, (17, 13)).astype(np.int32),
        "alpha": np.zeros((8, 9), np.int32),
    }
    path = tmp_path / "out" / "submission.csv"
    write_submission_csv(path, labels)
    lines = path.read_text().splitlines()
    assert lines[0] == "ImageId,EncodedPixels"
    assert lines[1] == "alpha,"  # sorted ids; an image without nuclei has an empty row
    back = read_rle_csv(path, shapes={k: v.shape for k, v in labels.items()})
    np.testing.assert_array_equal(back["alpha"], labels["alpha"])
    # nuclei come back numbered in label order: 1..5 stay 1..5 when all are present
    np.testing.assert_array_equal(back["zeta"], labels["zeta"])


def test_write_submission_names_the_bad_image(tmp_path):
    with pytest.raises(TypeError, match="image bad"):
        write_submission_csv(tmp_path / "s.csv", {"bad": np.zeros((3, 3), np.float32)})
