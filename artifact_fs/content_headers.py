"""The headers an artifact travels with: MLflow's MIME type and an attachment ``Content-Disposition``.

One place for both, because three senders need them alike: the server's download route, the HTTP
client's uploads (``Content-Type``) and presigned S3/GCS downloads, which the store itself answers.
"""

from __future__ import annotations

import mimetypes
import posixpath
import re
import unicodedata
import urllib.parse

TEXT_EXTENSIONS = frozenset({
    "txt", "log", "err", "cfg", "conf", "cnf", "cf", "ini", "properties", "prop", "hocon", "toml", "yaml",
    "yml", "xml", "json", "js", "py", "py3", "csv", "tsv", "md", "rst", "ipynb", "MLmodel", "mlproject",
})  # fmt: skip
"""MLflow's ``get_text_extensions()`` (mlflow/utils/mime_type_utils.py), served as ``text/plain``.

An extension-less name is matched whole (``MLmodel``, ``mlproject``); matching is case-sensitive, as
in MLflow. Everything else comes from the stdlib ``mimetypes`` table.
"""

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 9110 token: sent without quotes
_ATTR_CHARS = "!#$&+-.^_`|~"  # RFC 5987 attr-char besides letters and digits (as Werkzeug quotes)


def guess_mime_type(file_name: str) -> str:
    """MLflow's ``_guess_mime_type``: its text names as ``text/plain``, else ``mimetypes``, else binary."""
    name = posixpath.basename(file_name)
    extension = posixpath.splitext(name)[1].lstrip(".") or name
    if extension in TEXT_EXTENSIONS:
        return "text/plain"
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


def _quoted(value: str) -> str:
    if _TOKEN.match(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def content_disposition(file_name: str, *, ascii_fallback: bool = True) -> str:
    """``attachment`` named after the file's base name (RFC 6266).

    A printable ASCII name goes in ``filename`` (quoted only when it is not a token); any other name
    in RFC 5987 ``filename*=UTF-8''...``. With ``ascii_fallback`` an ASCII approximation is sent in
    ``filename`` too, as MLflow's server (Werkzeug's ``send_file``) does; presigned URLs, which carry
    the header in their signed query string, send ``filename*`` alone as MLflow does.
    """
    name = posixpath.basename(file_name)
    if name.isascii() and name.isprintable():
        return f"attachment; filename={_quoted(name)}"
    encoded = f"filename*=UTF-8''{urllib.parse.quote(name, safe=_ATTR_CHARS)}"
    if not ascii_fallback:
        return f"attachment; {encoded}"
    simple = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    simple = "".join(char for char in simple if char.isprintable()) or "download"
    return f"attachment; filename={_quoted(simple)}; {encoded}"
