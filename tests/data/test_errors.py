from __future__ import annotations

import pickle

import pytest

from skelmask.data.errors import ReadReport, SkeletonFileError, check_on_error


@pytest.mark.parametrize("line", [None, 7])
def test_file_error_survives_pickling(line: int | None) -> None:
    error = SkeletonFileError("S001.skeleton", "truncated", line=line)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.path, copy.reason, copy.line, str(copy)) == (
        error.path,
        error.reason,
        error.line,
        str(error),
    )


def test_file_error_names_file_and_line() -> None:
    assert str(SkeletonFileError("a.txt", "bad", line=3)) == "a.txt:3: bad"
    assert str(SkeletonFileError("a.txt", "bad")) == "a.txt: bad"


def test_report_raises_or_records() -> None:
    report = ReadReport(read=1)
    error = SkeletonFileError("a.txt", "empty file")
    with pytest.raises(SkeletonFileError, match=r"a\.txt: empty file"):
        report.add_error(error, "raise")
    report.add_error(error, "skip")
    assert report.rejected == ["a.txt: empty file"]


def test_report_merge_and_summary_limit() -> None:
    first = ReadReport(read=2, kept=1, rejected=["a: x"])
    second = ReadReport(read=3, kept=3, cleaned=[f"s{i}: resampled" for i in range(4)])
    merged = first.merge(second)
    assert (merged.read, merged.kept, merged.rejected) == (5, 4, ["a: x"])
    text = merged.summary(limit=2)
    assert text.splitlines()[0] == "read 5, kept 4, rejected 1, cleaned 4"
    assert "... and 2 more" in text
    assert "s3: resampled" not in text


def test_check_on_error() -> None:
    check_on_error("skip")
    with pytest.raises(ValueError, match="on_error must be 'raise' or 'skip', got 'ignore'"):
        check_on_error("ignore")
