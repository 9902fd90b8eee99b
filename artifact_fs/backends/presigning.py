"""What presigned download URLs ask the store to send back, shared by every store that signs them.

A presigned GET is fetched by the MLflow client straight from the store, so the store, not our
server, must answer as an attachment named after the artifact, just as the server's own route does.
"""

from __future__ import annotations

import urllib.parse


def attachment_disposition(name: str) -> str:
    """``attachment`` with the file name; RFC 5987 ``filename*`` when it is not plain ASCII."""
    if name.isascii() and name.isprintable() and '"' not in name and "\\" not in name:
        return f'attachment; filename="{name}"'
    return f"attachment; filename*=UTF-8''{urllib.parse.quote(name, safe='')}"
