"""What presigned download URLs ask the store to send back, shared by every store that signs them.

A presigned GET is fetched by the MLflow client straight from the store, so the store, not our
server, must answer as an attachment named after the artifact, just as the server's own route does.
"""

from __future__ import annotations

from artifact_fs.content_headers import content_disposition


def attachment_disposition(name: str) -> str:
    """The server's ``Content-Disposition`` without the ASCII fallback, as MLflow presigns it."""
    return content_disposition(name, ascii_fallback=False)
