"""The Content-Disposition that presigned downloads ask S3 and GCS to answer with."""

from __future__ import annotations

import pytest

from artifact_fs.backends.presigning import attachment_disposition


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("model.bin", "attachment; filename=model.bin"),
        ("a b.txt", 'attachment; filename="a b.txt"'),
        ("ü model.bin", "attachment; filename*=UTF-8''%C3%BC%20model.bin"),
        ('q"uote.txt', 'attachment; filename="q\\"uote.txt"'),
        ("back\\slash", 'attachment; filename="back\\\\slash"'),
        ("tab\there", "attachment; filename*=UTF-8''tab%09here"),
    ],
)
def test_attachment_disposition_quotes_only_what_is_safe(name: str, expected: str) -> None:
    assert attachment_disposition(name) == expected
