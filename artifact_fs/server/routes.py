"""MLflow's artifact REST API (reference §3.1), under ``/api/2.0`` and ``/ajax-api/2.0``.

Every handler validates its path before touching storage, talks to storage only through the
destination's :class:`~artifact_fs.store.ArtifactStore` (MLflow's list and delete rules live there,
once) or its root's generic presign hooks, and keeps nothing between requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import posixpath
import tarfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any

from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from artifact_fs import integrity
from artifact_fs.content_headers import content_disposition, guess_mime_type
from artifact_fs.integrity import DigestMismatchError
from artifact_fs.server import batch, completion, safety
from artifact_fs.server.config import ServerConfig
from artifact_fs.server.responses import (
    MULTIPART_UNSUPPORTED_MESSAGE,
    ArtifactServerError,
    body_mismatch,
    response_for_exception,
)
from artifact_fs.server.transfer import (
    RangeNotSatisfiableError,
    checkable,
    cut_short,
    file_state,
    parse_range,
    read_stream,
    read_whole,
    stream_version,
    upload_digests,
    write_stream,
)
from artifact_fs.store import ArtifactStore, FileInfo

logger = logging.getLogger("artifact_fs.server")
Handler = Callable[[Request], Awaitable[Response]]
MAX_PARTS = 10_000
MAX_JSON_BODY = 4 * 1024 * 1024
"""A complete request of 10,000 parts with presigned URLs fits; anything larger is not ours."""
MAX_JSON_DEPTH = 32


def _nesting(raw: bytes) -> int:
    """How deep brackets nest (strings skipped), counted before parsing so nothing recurses on it."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


class AnyPathConvertor(Convertor[str]):
    """Like Starlette's ``path``, but also matching decoded control characters (``%0a``), so such
    paths reach the safety checks and get MLflow's 400 instead of a bare 404."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("artifact_path", AnyPathConvertor())


def _mlflow_errors(handler: Handler) -> Handler:
    """Answer every failure with MLflow's JSON error shape and status."""

    @functools.wraps(handler)
    async def wrapper(request: Request) -> Response:
        try:
            return await handler(request)
        except ClientDisconnect:
            logger.warning(
                "%s %s: the client hung up before the request body ended", request.method, request.url.path
            )
            return Response(status_code=400)  # nobody reads it
        except Exception as exc:  # noqa: BLE001 - every error becomes MLflow's JSON error response
            return response_for_exception(exc, _redacted(request))

    return wrapper


def _redacted(request: Request) -> tuple[str, ...]:
    """The destination's location on this machine: error messages never show it."""
    store: ArtifactStore | None = getattr(request.app.state, "store", None)
    if store is None or not store.root_path.startswith("/"):
        return ()
    return tuple({store.root_path.rstrip("/"), os.path.realpath(store.root_path)} - {""})


def _context(request: Request) -> tuple[ArtifactStore, ServerConfig]:
    return request.app.state.store, request.app.state.config


def _refuse_proxied_bytes(config: ServerConfig) -> None:
    if config.presigned_only:
        raise ArtifactServerError(
            "PERMISSION_DENIED",
            "This server runs with --artifacts-presigned-only: artifact bytes are not proxied. "
            "Use presigned multipart uploads and presigned downloads.",
        )


def _fresh(store: ArtifactStore, path: str) -> None:
    """Drop cached listings: another worker or replica may have changed the store since."""
    store.fs.invalidate_cache(path)


def _refuse_escaping(store: ArtifactStore, path: str) -> None:
    """A path that resolves outside the destination (a symlink) is a 400, not a silent no-op."""
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        store.fs.info(path)


# -- files ------------------------------------------------------------------------------------------


def _etags(header: str) -> set[str]:
    return {tag.strip() for tag in header.split(",")}


_VersionStream = tuple[AsyncIterator[list[bytes]], asyncio.AbstractEventLoop]
"""One GET of the version a handle opened, and the event loop it runs on."""


@dataclass(frozen=True)
class _Body:
    """A body still to read: ``length`` bytes from ``start``; a whole one is checked against ``expected``."""

    status: int
    headers: dict[str, str]
    start: int
    length: int
    expected: integrity.Digest | None


def _answer(path: str, method: str, asked: Headers, info: Mapping[str, Any]) -> Response | _Body:
    """What a GET or HEAD of the version ``info`` describes gets: a complete answer, or a body to read.

    ``If-Match`` (412 when the artifact changed) lets a client resume or continue ranged reads of
    the version it started with.
    """
    state = file_state(info)
    headers = {
        "Content-Type": guess_mime_type(path),
        "Content-Disposition": content_disposition(path),
        "X-Content-Type-Options": "nosniff",
        "Accept-Ranges": "bytes",
        "ETag": state.etag,
    }
    if isinstance(info.get("digest"), str):
        headers["Repr-Digest"] = info["digest"]
    if_match = asked.get("if-match")
    if if_match and not _etags(if_match) & {state.etag, "*"}:
        return JSONResponse(
            {"error_code": "RESOURCE_CONFLICT", "message": f"'{path}' changed: it no longer has that ETag"},
            status_code=412,
            headers={"ETag": state.etag},
        )
    if_none_match = asked.get("if-none-match")
    if if_none_match and _etags(if_none_match) & {state.etag, "*"}:
        return Response(status_code=304, headers={"ETag": state.etag})
    byte_range = None
    if_range = asked.get("if-range")
    if if_range is None or if_range.strip() == state.etag:
        try:
            byte_range = parse_range(asked.get("range"), state.size)
        except RangeNotSatisfiableError:
            return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{state.size}"})
    start, end, status = 0, state.size - 1, 200
    if byte_range is not None:
        start, end = byte_range
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{state.size}"
    length = end - start + 1
    headers["Content-Length"] = str(length)
    if method == "HEAD" or length == 0:
        return Response(status_code=status, headers=headers)
    # A whole body is checked against its recorded digest as it is sent; ranges are not hashed.
    return _Body(status, headers, start, length, checkable(info) if byte_range is None else None)


def _open_answer(
    store: ArtifactStore, path: str, method: str, asked: Headers, chunk: int
) -> Response | tuple[_Body, IO[bytes] | _VersionStream]:
    """Open, answer and, for a body of at most one chunk, read it: one worker-thread call per
    small GET. A larger body comes back with what streams it: one GET of that version on the
    store's loop where the store has one (:meth:`ArtifactStore.version_stream`), else the open
    handle, read chunk by chunk."""
    handle, info = store.open_version(path, block_size=chunk, cache_type="none")
    streamed = False
    try:
        answer = _answer(path, method, asked, info)
        if not isinstance(answer, _Body):
            return answer
        if answer.length > chunk:
            version = store.version_stream(path, info, answer.start, answer.length, chunk)
            if version is not None:
                return answer, version
            streamed = True  # the stream closes the handle
            return answer, handle
        try:
            data = read_whole(handle, path, answer.start, answer.length, expected=answer.expected)
        except OSError as exc:  # damaged, or changed under us: as a streamed body would be, cut short
            return StreamingResponse(cut_short(path, exc), status_code=answer.status, headers=answer.headers)
        return Response(data, status_code=answer.status, headers=answer.headers)
    finally:
        if not streamed:
            handle.close()


@_mlflow_errors
async def download_artifact(request: Request) -> Response:
    """One version per response: headers and body come from one opened handle (and, on an object
    store, one GET pinned to the version that handle opened).

    A body of at most one chunk is read in the call that opened the file; a larger one is streamed,
    reading exactly the bytes it sends.
    """
    store, config = _context(request)
    _refuse_proxied_bytes(config)
    path = safety.file_path(request.path_params["path"])
    chunk = config.download_chunk_size
    answer = await run_in_threadpool(_open_answer, store, path, request.method, request.headers, chunk)
    if isinstance(answer, Response):
        return answer
    body, source = answer
    if isinstance(source, tuple):
        stream = stream_version(*source, path, body.length, expected=body.expected)
    else:
        stream = read_stream(source, path, body.start, body.length, chunk, expected=body.expected)
    return StreamingResponse(stream, status_code=body.status, headers=body.headers)


@_mlflow_errors
async def upload_artifact(request: Request) -> Response:
    """A body that fits one upload batch is opened, written, committed and its parent's cached
    listing dropped in one worker-thread call; a larger one is written batch by batch."""
    store, config = _context(request)
    _refuse_proxied_bytes(config)
    path = safety.file_path(request.path_params["path"])
    expected = upload_digests(request.headers)
    uploads = getattr(request.app.state, "uploads", None)
    try:
        stored = await write_stream(
            store,
            path,
            request.stream(),
            config.upload_batch_size,
            uploads,
            expected_digests=expected,
            then=functools.partial(_fresh, store, posixpath.dirname(path)),
        )
    except DigestMismatchError as exc:
        raise body_mismatch(path, exc) from exc
    headers = {"Repr-Digest": stored.digest.header()} if stored.digest is not None else None
    return JSONResponse({}, headers=headers)


@_mlflow_errors
async def delete_artifact(request: Request) -> Response:
    store, _ = _context(request)
    path = safety.artifact_path(request.path_params["path"])
    if not path:
        raise ArtifactServerError(
            "INVALID_PARAMETER_VALUE", "Refusing to delete the whole artifact destination; name a path in it."
        )
    await run_in_threadpool(_refuse_escaping, store, path)
    await run_in_threadpool(store.delete_artifacts, path)
    await run_in_threadpool(_fresh, store, posixpath.dirname(path))
    return JSONResponse({})


def _listed(info: FileInfo) -> dict[str, Any]:
    """One entry of MLflow's list response: the basename, and a size for non-empty files.

    ``digest`` (RFC 9530, ``sha-256=:…:``) is an extra field where the store's listing carries one
    without a lookup per file; MLflow's clients ignore fields they do not know.
    """
    item: dict[str, Any] = {"path": posixpath.basename(info.path), "is_dir": info.is_dir}
    if not info.is_dir and info.file_size:
        item["file_size"] = info.file_size
    if not info.is_dir and info.digest:
        item["digest"] = info.digest
    return item


@_mlflow_errors
async def list_artifacts(request: Request) -> Response:
    store, _ = _context(request)
    path = safety.artifact_path(request.query_params.get("path"))
    files = [_listed(info) for info in await run_in_threadpool(store.list_artifacts, path)]
    return JSONResponse({"files": files} if files else {})


# -- presigned transfers ----------------------------------------------------------------------------
async def _json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object: at most ``MAX_JSON_BODY`` bytes and ``MAX_JSON_DEPTH`` levels."""
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_JSON_BODY:
            raise ValueError(f"the request body is larger than {MAX_JSON_BODY} bytes")
    if _nesting(bytes(raw)) > MAX_JSON_DEPTH:
        raise ValueError(f"the request body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ValueError("the request body must be a JSON object")
    return body


def _multipart_target(request: Request, body: dict[str, Any]) -> str:
    store, _ = _context(request)
    directory = safety.artifact_path(request.path_params.get("path", ""))
    name = safety.multipart_file_name(body.get("path"))
    if not store.root.supports_multipart_upload:
        raise ArtifactServerError("NOT_IMPLEMENTED", f"{MULTIPART_UNSUPPORTED_MESSAGE} ({store.uri.backend})")
    return posixpath.join(directory, name) if directory else name


def _upload_id(body: dict[str, Any]) -> str | None:
    """The store's upload id; ``None`` is valid (Azure's Put Block uploads have none)."""
    upload_id = body.get("upload_id")
    if upload_id is not None and not isinstance(upload_id, str):
        raise ValueError("'upload_id' must be a string")
    return upload_id


@_mlflow_errors
async def create_multipart_upload(request: Request) -> Response:
    store, _ = _context(request)
    body = await _json_body(request)
    path = _multipart_target(request, body)
    num_parts = body.get("num_parts", 1)
    if isinstance(num_parts, bool) or not isinstance(num_parts, int) or not 1 <= num_parts <= MAX_PARTS:
        raise ValueError(f"'num_parts' must be an integer from 1 to {MAX_PARTS}, got {num_parts!r}")
    result = await run_in_threadpool(store.root.call_hook, "create_multipart_upload", path, num_parts)
    reply: dict[str, Any] = {}
    if result.get("upload_id") is not None:
        reply["upload_id"] = result["upload_id"]
    credentials = []
    for credential in result.get("credentials", []):
        item: dict[str, Any] = {"url": credential["url"], "part_number": int(credential["part_number"])}
        if credential.get("headers"):
            item["headers"] = dict(credential["headers"])
        credentials.append(item)
    reply["credentials"] = credentials
    return JSONResponse(reply)


def _parts(body: dict[str, Any]) -> list[dict[str, Any]]:
    parts = body.get("parts")
    if not isinstance(parts, list) or not parts:
        raise ValueError("'parts' is required: a list of {part_number, etag, url}")
    checked = []
    for part in parts:
        if not isinstance(part, dict) or isinstance(part.get("part_number"), bool):
            raise ValueError(f"invalid part {part!r}")
        number = part.get("part_number")
        if not isinstance(number, int) or not 1 <= number <= MAX_PARTS:
            raise ValueError(f"invalid part_number in {part!r}")
        checked.append({"part_number": number, "etag": str(part.get("etag") or ""), "url": part.get("url")})
    return checked


@_mlflow_errors
async def complete_multipart_upload(request: Request) -> Response:
    store, _ = _context(request)
    body = await _json_body(request)
    path = _multipart_target(request, body)
    parts = _parts(body)
    upload_id = _upload_id(body)
    claimed = completion.claimed_digest(body)  # a malformed claim is a 400 before anything completes
    await run_in_threadpool(store.root.call_hook, "complete_multipart_upload", path, upload_id, parts)
    await run_in_threadpool(_fresh, store, posixpath.dirname(path))
    if not store.root.digests_enabled:
        return JSONResponse({})
    try:  # the parts never passed here: read the completed file back once, record it, check the claim
        record = await run_in_threadpool(completion.record_completed, store, path, claimed)
    except DigestMismatchError as exc:
        raise body_mismatch(path, exc) from exc
    finally:
        await run_in_threadpool(_fresh, store, posixpath.dirname(path))
    return JSONResponse({}, headers={"Repr-Digest": record.header()})


@_mlflow_errors
async def abort_multipart_upload(request: Request) -> Response:
    store, _ = _context(request)
    body = await _json_body(request)
    path = _multipart_target(request, body)
    await run_in_threadpool(store.root.call_hook, "abort_multipart_upload", path, _upload_id(body))
    return JSONResponse({})


@_mlflow_errors
async def presigned_download(request: Request) -> Response:
    store, config = _context(request)
    path = safety.file_path(request.path_params["path"])
    if not store.root.supports_presigned_download:
        raise ArtifactServerError(
            "NOT_IMPLEMENTED",
            f"Presigned download is not supported for the current artifact repository ({store.uri.backend})",
        )
    info = await run_in_threadpool(store.file_info, path)
    digest = await run_in_threadpool(store.root.recorded_digest, path, info)
    result = await run_in_threadpool(
        store.root.call_hook, "presigned_download_url", path, config.presigned_url_ttl
    )
    reply: dict[str, Any] = {"url": result["url"], "headers": dict(result.get("headers") or {})}
    if result.get("file_size") is not None:
        reply["file_size"] = int(result["file_size"])
    if digest is not None:  # an extra field MLflow's clients ignore; artifact_fs's checks the bytes
        reply["digest"] = digest.header()
    return JSONResponse(reply)


@_mlflow_errors
async def batch_download(request: Request) -> Response:
    """Many small files as one tar stream (:mod:`artifact_fs.server.batch`)."""
    store, config = _context(request)
    _refuse_proxied_bytes(config)
    paths = batch.requested_paths(await _json_body(request))
    return StreamingResponse(batch.tar_stream(store, paths), media_type="application/x-tar")


@_mlflow_errors
async def batch_upload(request: Request) -> Response:
    """Many small files from one tar stream (:mod:`artifact_fs.server.batch`)."""
    store, config = _context(request)
    _refuse_proxied_bytes(config)
    uploads = getattr(request.app.state, "uploads", None)
    body = batch.BodyReader(request.stream())
    try:
        refresh = functools.partial(_fresh, store)
        unpacked = await run_in_threadpool(batch.unpack, store, body, uploads, refresh)
    except tarfile.TarError as exc:
        raise ValueError(f"the body is not a complete tar archive: {exc}") from exc
    return JSONResponse(unpacked.answer())


# -- discovery --------------------------------------------------------------------------------------
def server_info(store: ArtifactStore, config: ServerConfig) -> dict[str, Any]:
    """MLflow's server-info keys, each saying exactly what this server does.

    ``workspaces_enabled`` is False: this server has no workspace store and does not scope paths by
    the ``X-MLFLOW-WORKSPACE`` header. A workspace-mode tracking server whose artifact root is this
    server already puts each workspace's experiments under ``workspaces/<ws>/<experiment id>``, and
    those are ordinary paths here (docs/server.md, "Workspaces").
    """
    root = store.root
    uploads = root.supports_multipart_upload and (config.proxy_multipart_upload or config.presigned_only)
    downloads = root.supports_presigned_download and (
        config.proxy_multipart_download or config.presigned_only
    )
    return {
        "store_type": None,
        "workspaces_enabled": False,
        "trace_archival_enabled": False,
        "multipart_uploads_enabled": uploads,
        "multipart_downloads_enabled": downloads,
        "artifact_serving_enabled": True,
        "artifacts_presigned_only": config.presigned_only,
        "presigned_upload_run_id_supported": False,
        "presigned_upload_model_id_supported": False,
        "model_artifact_presigned_downloads_supported": False,
        "features_enabled": {},
        # artifact_fs's own routes (MLflow's clients ignore the key); none when bytes are not proxied
        "artifact_fs": {} if config.presigned_only else batch.advertised(),
    }


async def get_server_info(request: Request) -> Response:
    store, config = _context(request)
    return JSONResponse(server_info(store, config))


async def health(request: Request) -> Response:
    return Response("OK", media_type="text/plain")


def routes() -> list[BaseRoute]:
    """Every route, under both of MLflow's prefixes."""
    table: list[BaseRoute] = []
    for prefix in ("/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts"):
        table += [
            Route(f"{prefix}/artifacts", list_artifacts, methods=["GET"]),
            Route(f"{prefix}/artifacts/{{path:artifact_path}}", download_artifact, methods=["GET", "HEAD"]),
            Route(f"{prefix}/artifacts/{{path:artifact_path}}", upload_artifact, methods=["PUT"]),
            Route(f"{prefix}/artifacts/{{path:artifact_path}}", delete_artifact, methods=["DELETE"]),
            Route(f"{prefix}/presigned/{{path:artifact_path}}", presigned_download, methods=["GET"]),
            Route(f"{prefix}/{batch.PATH}", batch_download, methods=["POST"]),
            Route(f"{prefix}/{batch.UPLOAD_PATH}", batch_upload, methods=["POST"]),
        ]
        for action, handler in (
            ("create", create_multipart_upload),
            ("complete", complete_multipart_upload),
            ("abort", abort_multipart_upload),
        ):
            # MLflow needs a non-empty directory segment (issue #11268); the root works here too.
            table.append(Route(f"{prefix}/mpu/{action}/{{path:artifact_path}}", handler, methods=["POST"]))
            table.append(Route(f"{prefix}/mpu/{action}", handler, methods=["POST"]))
    for prefix in ("/api/3.0", "/ajax-api/3.0"):
        table.append(Route(f"{prefix}/mlflow/server-info", get_server_info, methods=["GET"]))
    table.append(Route("/health", health, methods=["GET"]))
    return table
