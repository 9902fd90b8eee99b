"""Azure on Azurite: ``wasbs://`` with a connection string, ``abfss://`` with a SAS token.

Both URIs name the real account host (``devstoreaccount1.blob.core.windows.net`` /
``devstoreaccount1.dfs.core.windows.net``); the connection string or ``account_url`` points the client
at Azurite. Azurite speaks only the Blob API, which is also what adlfs uses for ``abfss``, so both
schemes run the whole suite with the same capabilities.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from artifact_fs.backends import azure
from conformance.harness import BackendSpec, BackendUnderTest
from conformance.servers import azurite
from conformance.servers.launcher import ServerProcess

CONTAINER = "artifacts"

WASBS = BackendSpec(id="azure-wasbs", mark="azure", capabilities=azure.CAPABILITIES)
ABFSS = BackendSpec(id="azure-abfss", mark="azure", capabilities=azure.CAPABILITIES)
SPECS = [WASBS, ABFSS]


@pytest.fixture(scope="session")
def azurite_server(server_log_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    from azure.storage.blob import BlobServiceClient

    server = azurite.start_azurite(server_log_dir, tmp_path_factory.mktemp("azurite-data"))
    try:
        client = BlobServiceClient.from_connection_string(azurite.connection_string(server))
        client.create_container(CONTAINER)
        yield server
    finally:
        server.stop()


def account_sas() -> str:
    """An account SAS for everything, the form an ``AZURE_STORAGE_SAS_TOKEN`` takes."""
    from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

    return generate_account_sas(
        azurite.ACCOUNT,
        azurite.ACCOUNT_KEY,
        resource_types=ResourceTypes(service=True, container=True, object=True),
        permission=AccountSasPermissions(
            read=True, write=True, delete=True, list=True, add=True, create=True, update=True
        ),
        expiry=datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1),
    )


def _details(server: ServerProcess) -> dict[str, Any]:
    return {
        "server": server,
        "connection_string": azurite.connection_string(server),
        "endpoint": azurite.endpoint(server),
        "container": CONTAINER,
    }


@pytest.fixture(scope="session")
def backend_azure_wasbs(azurite_server: ServerProcess) -> BackendUnderTest:
    connection_string = azurite.connection_string(azurite_server)
    return BackendUnderTest(
        spec=WASBS,
        root_url=f"wasbs://{CONTAINER}@{azurite.ACCOUNT}.blob.core.windows.net/suite",
        storage_options={"connection_string": connection_string},
        environ={"AZURE_STORAGE_CONNECTION_STRING": connection_string},
        details=_details(azurite_server),
    )


@pytest.fixture(scope="session")
def backend_azure_abfss(azurite_server: ServerProcess) -> BackendUnderTest:
    sas = account_sas()
    return BackendUnderTest(
        spec=ABFSS,
        root_url=f"abfss://{CONTAINER}@{azurite.ACCOUNT}.dfs.core.windows.net/suite",
        storage_options={"sas_token": sas, "account_url": azurite.endpoint(azurite_server)},
        environ={"AZURE_STORAGE_SAS_TOKEN": sas},
        details={**_details(azurite_server), "sas_token": sas},
    )
