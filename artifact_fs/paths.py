"""Artifact-path safety, shared by the client, the store and the server.

These are MLflow's rules (``validate_path_is_safe``, ``verify_artifact_path``,
``validate_path_within_directory``), made stricter where MLflow is lenient only because of the OS it
runs on: backslashes are refused everywhere, not only on Windows, so a name accepted on a Linux
server cannot become a traversal when the artifact is downloaded on Windows.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from pathlib import PurePath
from urllib.parse import unquote, urlparse, urlunparse

from artifact_fs.errors import InvalidArtifactPathError

_MAX_DECODE_ROUNDS = 10
RESERVED_PREFIX = ".artifact.uploading."
"""MLflow's local store writes ``<dir>/.artifact.uploading.<random>`` then renames: names with this
prefix are uploads in progress, refused as artifact names and hidden from every listing."""
DIGEST_DIRECTORY = ".artifact.digests"
"""Where a directory's digest records live when the store has no place of its own for them
(:mod:`artifact_fs.integrity`): hidden from every listing and refused as an artifact name."""
HIDDEN_NAMES = (RESERVED_PREFIX, DIGEST_DIRECTORY)


def is_hidden(name: str) -> bool:
    """Whether a path segment is artifact_fs's own (an upload in progress, digest records)."""
    return name.startswith(RESERVED_PREFIX) or name == DIGEST_DIRECTORY


_DRIVE = re.compile(r"^[A-Za-z]:")
_FILE_SCHEME = re.compile(r"^file:", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def fully_decode(path: str) -> str:
    """URL-decode until nothing changes (``%252e`` -> ``%2e`` -> ``.``), as MLflow's ``_decode``."""
    for _ in range(_MAX_DECODE_ROUNDS):
        unquoted = unquote(path)
        if _CONTROL.search(unquoted):  # urlparse would silently drop tabs and newlines
            raise InvalidArtifactPathError(path, "control characters are not allowed")
        decoded = urlunparse(urlparse(unquoted))
        if decoded == path:
            return decoded
        path = decoded
    raise InvalidArtifactPathError(path, f"still changes after {_MAX_DECODE_ROUNDS} rounds of URL-decoding")


def validate_path_is_safe(path: str) -> str:
    """The decoded ``path`` if it stays inside whatever root it is joined to; else raise.

    Rejected (after decoding to a fixpoint): NUL and other control characters, ``#`` fragments,
    ``;`` path parameters, backslashes, any ``..`` segment, absolute POSIX or Windows paths, drive
    letters and ``file:`` URIs. Always use the returned value, never the raw input (MLflow PR #10666).
    """
    if not isinstance(path, str):
        raise TypeError(f"artifact path must be a string, not {type(path).__name__}")
    if "\x00" in path:
        raise InvalidArtifactPathError(path, "NUL characters are not allowed")
    decoded = fully_decode(path)
    if "#" in decoded:
        raise InvalidArtifactPathError(path, "'#' fragments are not allowed")
    if urlparse(decoded).params:
        raise InvalidArtifactPathError(path, "';' path parameters are not allowed")
    if "\\" in decoded:
        raise InvalidArtifactPathError(path, "backslashes are not allowed (use '/')")
    if _FILE_SCHEME.match(decoded):
        raise InvalidArtifactPathError(path, "file: URIs are not artifact paths")
    if decoded.startswith("/") or _DRIVE.match(decoded):
        raise InvalidArtifactPathError(path, "absolute paths are not allowed")
    if ".." in decoded.split("/"):
        raise InvalidArtifactPathError(path, "'..' segments are not allowed")
    return decoded


def verify_artifact_path(artifact_path: str | None) -> None:
    """MLflow's check on ``log_artifact``'s ``artifact_path``: normalised, relative, not ``.``/``..``."""
    if not artifact_path:
        return
    normalised = posixpath.normpath(artifact_path)
    if (
        normalised != artifact_path
        or artifact_path == "."
        or artifact_path.startswith("..")
        or artifact_path.startswith("/")
        or "\\" in artifact_path
        or _DRIVE.match(artifact_path)
    ):
        raise InvalidArtifactPathError(
            artifact_path,
            "names may be treated as files in certain cases, and must not resolve to other names "
            f"when treated as such; this name would resolve to {normalised!r}",
        )


def validate_path_within_directory(base: str | os.PathLike[str], candidate: str | os.PathLike[str]) -> str:
    """``candidate`` as an absolute path, if it resolves (symlinks included) inside ``base``.

    The leaf is resolved only if it exists; otherwise its parent is resolved and the leaf name kept,
    so a path about to be created is checked too.
    """
    real_base = os.path.realpath(base)
    absolute = os.path.abspath(os.path.join(real_base, candidate))
    if os.path.lexists(absolute):
        resolved = os.path.realpath(absolute)
    else:
        resolved = os.path.join(os.path.realpath(os.path.dirname(absolute)), os.path.basename(absolute))
    if resolved != real_base and not resolved.startswith(real_base.rstrip(os.sep) + os.sep):
        raise InvalidArtifactPathError(str(candidate), "resolved path is outside the artifact directory")
    return absolute


class Confinement:
    """:func:`validate_path_within_directory` for many paths under one ``root`` (a tree's files).

    The root is resolved once, when it exists. A path under it through plain names (no ``.``,
    ``..`` or empty name) is then checked with one ``lstat`` per name below the root, where the full
    check resolves every name of the root and of the path again for each file. Anything else (a
    symbolic link below the root, a path outside it as written, a root not made yet) gets the full
    check, so the answer is always the full check's.
    """

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self._resolved: str | None = None

    def inside(self, candidate: str) -> str:
        """``candidate`` (absolute, or relative to the root) as an absolute path, if it resolves
        inside the root; :class:`InvalidArtifactPathError` if not."""
        if os.path.isabs(candidate):
            prefix = self.root.rstrip(os.sep) + os.sep
            rest = candidate[len(prefix) :] if candidate.startswith(prefix) else None
        else:
            rest = candidate
        if rest is not None and self._plain(rest.split(os.sep)):
            assert self._resolved is not None
            return candidate if os.path.isabs(candidate) else os.path.join(self._resolved, rest)
        return validate_path_within_directory(self.root, candidate)

    def _plain(self, names: list[str]) -> bool:
        if any(name in ("", ".", "..") or (os.altsep and os.altsep in name) for name in names):
            return False
        if self._resolved is None:
            if not os.path.isdir(self.root):
                return False
            self._resolved = os.path.realpath(self.root)
        current = self._resolved
        for name in names:
            current = os.path.join(current, name)
            try:
                mode = os.lstat(current).st_mode
            except FileNotFoundError:
                return True  # nothing below a missing name exists, so no link either
            if stat.S_ISLNK(mode):
                return False
        return True


def join_artifact_path(*parts: str | None) -> str:
    """POSIX-join artifact path parts, skipping empty ones (``None``, ``""``)."""
    present = [part.strip("/") for part in parts if part]
    return posixpath.join(*present) if present else ""


def to_artifact_path(relative_local_path: str | os.PathLike[str]) -> str:
    """A relative local path as a POSIX artifact path, on every OS (MLflow issue #9278)."""
    posix = PurePath(relative_local_path).as_posix()
    return "" if posix == "." else posix
