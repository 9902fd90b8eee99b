"""MLflow's path-safety rules, including every traversal form from the CVE table (reference §3.3-3.4)."""

from __future__ import annotations

import os

import pytest

from artifact_fs.errors import InvalidArtifactPathError
from artifact_fs.paths import (
    Confinement,
    fully_decode,
    join_artifact_path,
    to_artifact_path,
    validate_path_is_safe,
    validate_path_within_directory,
    verify_artifact_path,
)

SAFE = [
    ("a/b.txt", "a/b.txt"),
    ("a/./b", "a/./b"),
    ("a//b", "a//b"),
    ("model/MLmodel", "model/MLmodel"),
    ("dir%20name/file", "dir name/file"),
    ("weird:name.txt", "weird:name.txt"),
    ("..hidden", "..hidden"),
    ("a/..b/c", "a/..b/c"),
    ("%2561", "a"),
]

UNSAFE = [
    "../etc/passwd",
    "a/../../b",
    "/etc/passwd",
    "a%2f..%2f..%2fb",
    "..%2fetc",
    "..%252f..%252fetc",  # CVE-2024-1560: double encoding
    "%252e%252e%252fetc",
    "%2e%2e/etc",
    "a#b",
    "x/%23/../y",
    "file:///etc/passwd",
    "FILE:/etc/passwd",
    "C:/x",
    "c:\\windows",
    "\\..\\..\\filename",  # CVE-2023-2780: backslash traversal
    "a\\b",
    "a/b;../../c",  # CVE-2024-1593: ';' parameters
    "a\x00b",
    "line\nbreak",
    "tab%09name",
    "nul%00byte",
    "..",
    "a/..",
    "//etc/passwd",
    "%2fetc%2fpasswd",
]


@pytest.mark.parametrize(("path", "decoded"), SAFE)
def test_safe_paths_are_returned_decoded(path: str, decoded: str) -> None:
    assert validate_path_is_safe(path) == decoded


@pytest.mark.parametrize("path", UNSAFE)
def test_unsafe_paths_are_rejected_as_value_and_os_errors(path: str) -> None:
    with pytest.raises(InvalidArtifactPathError) as info:
        validate_path_is_safe(path)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, PermissionError)
    assert "Invalid artifact path" in str(info.value)


def test_decoding_that_never_settles_is_rejected() -> None:
    nested = "."
    for _ in range(12):
        nested = nested.replace("%", "%25") if "%" in nested else "%2e"
    with pytest.raises(InvalidArtifactPathError):
        fully_decode(nested)


@pytest.mark.parametrize(
    "path", ["/", "//", "/tmp", "/bad_path", ".", "../terrible_path", "a/../b", "a/", "C:/x"]
)
def test_verify_artifact_path_rejects_what_mlflow_rejects(path: str) -> None:
    with pytest.raises(InvalidArtifactPathError):
        verify_artifact_path(path)


@pytest.mark.parametrize("path", [None, "", "a", "a/b", "dir/sub/file.txt"])
def test_verify_artifact_path_accepts_normalised_relative_paths(path: str | None) -> None:
    verify_artifact_path(path)


def test_within_directory_accepts_new_and_existing_children(tmp_path: os.PathLike[str]) -> None:
    base = str(tmp_path)
    os.makedirs(os.path.join(base, "d"))
    assert validate_path_within_directory(base, "d") == os.path.join(base, "d")
    assert validate_path_within_directory(base, "d/new.txt") == os.path.join(base, "d", "new.txt")


def test_within_directory_rejects_dotdot_and_absolute(tmp_path: os.PathLike[str]) -> None:
    with pytest.raises(InvalidArtifactPathError):
        validate_path_within_directory(tmp_path, "../outside")
    with pytest.raises(InvalidArtifactPathError):
        validate_path_within_directory(tmp_path, "/etc/passwd")


def test_within_directory_rejects_symlink_escaping_the_base(tmp_path: os.PathLike[str]) -> None:
    base = os.path.join(tmp_path, "root")
    outside = os.path.join(tmp_path, "outside")
    os.makedirs(base)
    os.makedirs(outside)
    os.symlink(outside, os.path.join(base, "link"))
    with pytest.raises(InvalidArtifactPathError, match="outside the artifact directory"):
        validate_path_within_directory(base, "link")
    with pytest.raises(InvalidArtifactPathError):
        validate_path_within_directory(base, "link/new-file")


def test_sibling_with_common_prefix_is_outside(tmp_path: os.PathLike[str]) -> None:
    base = os.path.join(tmp_path, "root")
    os.makedirs(base)
    os.makedirs(os.path.join(tmp_path, "rootother"))
    with pytest.raises(InvalidArtifactPathError):
        validate_path_within_directory(base, "../rootother/x")


CONFINEMENT_CASES = [
    "d/f.txt",
    "d/new/deeper.txt",
    "missing/f.txt",
    "inner-link/f.txt",
    "link",
    "link/new-file",
    "d/../../outside/x",
    "d/./f.txt",
    "../root-sibling/x",
    "/etc/passwd",
]


@pytest.mark.parametrize("candidate", CONFINEMENT_CASES)
def test_confinement_answers_as_the_full_check(tmp_path: os.PathLike[str], candidate: str) -> None:
    """The one-lstat-per-name check of a tree's files gives the full check's answer for every
    path: plain names, missing ones, links inside and outside, ``..``, ``.``, absolute paths."""
    base = os.path.join(tmp_path, "root")
    os.makedirs(os.path.join(base, "d"))
    os.makedirs(os.path.join(tmp_path, "outside"))
    os.makedirs(os.path.join(tmp_path, "root-sibling"))
    os.symlink(os.path.join(tmp_path, "outside"), os.path.join(base, "link"))
    os.symlink(os.path.join(base, "d"), os.path.join(base, "inner-link"))
    within = Confinement(base)
    for form in (candidate, os.path.join(base, candidate)):
        try:
            expected = validate_path_within_directory(base, form)
        except InvalidArtifactPathError:
            with pytest.raises(InvalidArtifactPathError):
                within.inside(form)
        else:
            assert within.inside(form) == expected


def test_confinement_sees_a_link_made_after_an_earlier_check(tmp_path: os.PathLike[str]) -> None:
    """Only the root is resolved once: a directory replaced by a link to the outside between two
    files of a tree is refused for the second."""
    base = os.path.join(tmp_path, "root")
    os.makedirs(os.path.join(base, "d"))
    os.makedirs(os.path.join(tmp_path, "outside"))
    within = Confinement(base)
    assert within.inside("d/first.txt") == os.path.join(os.path.realpath(base), "d", "first.txt")
    os.rmdir(os.path.join(base, "d"))
    os.symlink(os.path.join(tmp_path, "outside"), os.path.join(base, "d"))
    with pytest.raises(InvalidArtifactPathError):
        within.inside("d/second.txt")


def test_confinement_of_a_root_made_later(tmp_path: os.PathLike[str]) -> None:
    base = os.path.join(tmp_path, "later")
    within = Confinement(base)
    assert within.inside("f.txt") == validate_path_within_directory(base, "f.txt")
    os.makedirs(base)
    assert within.inside("f.txt") == os.path.join(os.path.realpath(base), "f.txt")


def test_join_and_posix_conversion() -> None:
    assert join_artifact_path(None, "a", "", "b/c") == "a/b/c"
    assert join_artifact_path() == ""
    assert to_artifact_path(os.path.join("a", "b")) == "a/b"
    assert to_artifact_path(".") == ""
