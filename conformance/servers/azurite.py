"""Azurite, the Azure Blob emulator (blob service only), pinned by ``azurite/package-lock.json``.

``scripts/install/30-azurite.sh`` runs ``npm ci`` here. The node entry point is started directly (not
through ``npx``) so the process we hold is the server. ``--skipApiVersionCheck`` because the Python SDK
sends a newer ``x-ms-version`` than Azurite 3.35 knows; ``--disableTelemetry`` or it calls out to
Application Insights; ``--loose`` to ignore headers it does not implement.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from conformance.servers.launcher import ServerProcess, ServerStartError, http_any

HERE = Path(__file__).resolve().parent / "azurite"
ACCOUNT = "devstoreaccount1"
# Azurite's published development key (not a secret: it is in Microsoft's documentation).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_entry() -> Path:
    entry = HERE / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
    if not entry.exists():
        raise ServerStartError(
            f"Azurite is not installed at {entry.parent}; run scripts/install/30-azurite.sh "
            "(scripts/test-all.sh does)"
        )
    return entry


def start_azurite(log_dir: Path, data_dir: Path) -> ServerProcess:
    """Start Azurite's blob service on a free port with on-disk data in ``data_dir``."""
    node = shutil.which("node")
    if node is None:
        raise ServerStartError("node is not on PATH; Azurite needs Node.js >= 18")
    entry = azurite_entry()

    def command(ports: dict[str, int]) -> list[str]:
        return [
            node,
            str(entry),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(ports["port"]),
            "--location",
            str(data_dir),
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
            "--disableProductStyleUrl",
        ]

    server = ServerProcess(
        name="azurite",
        command=command,
        ready=lambda ports: http_any(f"http://127.0.0.1:{ports['port']}/{ACCOUNT}?comp=list"),
        log_dir=log_dir,
        timeout=60,
    )
    return server.start()


def endpoint(server: ServerProcess) -> str:
    return f"http://127.0.0.1:{server.port}/{ACCOUNT}"


def connection_string(server: ServerProcess) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint={endpoint(server)};"
    )
