"""FTP listings as fsspec entries: ``MLSD``/``MLST`` facts, ``LIST`` on servers without them.

Entries carry full paths, ``type`` ``"file"``/``"directory"`` and ``size`` (0 for directories);
the other facts (``modify``, ``perm``, ...) are kept as the server sent them.
"""

from __future__ import annotations

import ftplib
import posixpath
from typing import Any

from fsspec.implementations.ftp import _mlsd2

UNKNOWN_COMMAND_REPLIES = ("500", "502")
"""Replies of a server that does not implement a command (``MLSD``, ``MLST``): fall back."""


def is_unsupported(exc: BaseException | None) -> bool:
    """Whether ``exc`` is the server saying it does not know the command."""
    return isinstance(exc, ftplib.error_perm) and str(exc).startswith(UNKNOWN_COMMAND_REPLIES)


def entry(directory: str, name: str, facts: dict[str, str]) -> dict[str, Any]:
    """One fsspec entry for ``name`` in ``directory`` from its MLSD-style facts."""
    is_dir = facts.get("type") == "dir"
    result: dict[str, Any] = {
        key: value for key, value in facts.items() if key not in {"type", "size", "sizd"}
    }
    result["name"] = posixpath.join(directory, posixpath.basename(name.rstrip("/")))
    result["type"] = "directory" if is_dir else "file"
    result["size"] = 0 if is_dir else int(facts.get("size", 0))
    return result


def mlsd_entries(connection: ftplib.FTP, path: str) -> list[dict[str, Any]]:
    """``MLSD`` of a directory (``ftplib.error_perm`` when ``path`` is not one)."""
    return [
        entry(path, name, facts)
        for name, facts in connection.mlsd(path)
        if facts.get("type") in {"file", "dir"}
    ]


def list_entries(connection: ftplib.FTP, path: str) -> list[dict[str, Any]]:
    """``LIST`` of a directory, parsed as ``ls -l`` output (fsspec's parser)."""
    connection.cwd(path)  # LIST of a file would list the file: make sure it is a directory first
    return [entry(path, name, facts) for name, facts in _mlsd2(connection, path)]


def mlst_entry(connection: ftplib.FTP, path: str) -> dict[str, Any]:
    """One ``MLST`` on the control connection: the facts of ``path`` without a data connection."""
    reply = connection.sendcmd(f"MLST {path}")
    for line in reply.splitlines()[1:]:
        if line.startswith(" "):
            facts_text, _, _name = line[1:].partition(" ")
            pairs = (fact.split("=", 1) for fact in facts_text.rstrip(";").split(";") if "=" in fact)
            facts = {key.lower(): value for key, value in pairs}
            if facts.get("type", "").lower() in {"cdir", "pdir"}:
                facts["type"] = "dir"
            return entry(posixpath.dirname(path) or "/", posixpath.basename(path), facts)
    raise ftplib.error_proto(f"unexpected MLST reply {reply!r}")
