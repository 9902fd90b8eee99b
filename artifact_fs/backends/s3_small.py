"""Small S3 requests on presigned URLs: botocore signs them, aiohttp sends them.

A GET or PUT of a small object through botocore's client costs about 0.65 ms of CPU on top of the
transfer (endpoint rules, serialisation, event hooks, response parsing), which s3fs and boto3 pay as
well; for a tree of small files it is most of the client's time. The same client's
``generate_presigned_url`` (botocore's public presigner: the client's credentials, endpoint,
addressing style, region and signature version; asked once per bucket, :class:`BucketSigning`) plus
one aiohttp request costs about 0.2 ms. So a
small file's GET (the first range of every download), a small PUT (a file sent in one request, a
digest record) and a record's read take this path.

Everything unusual goes back to the SDK, which stays the one place for retries and error answers:

* an answer other than 2xx is asked again through botocore's client, whose retries and error
  translation (:mod:`artifact_fs.errors`) then apply (a missing record, which downloads ask for
  objects other tools wrote, is ``FileNotFoundError`` at once, from the same error table);
* a transport failure (reset, timeout) is retried through the SDK too, and this filesystem stops
  using the path, as it does after an answer that says the store refuses presigned requests
  (400, 403, 405, 501), except a ``BadDigest``, which refuses one damaged body, not the path;
* requests that need headers of their own (SSE-C keys, requester pays, expected bucket owner, upload
  arguments other than Content-Type, Content-Encoding and metadata, conditional creates, versions),
  a proxy, or a client configured with its own ``proxies`` are never sent this way.

``presigned_small_requests=False`` on the filesystem turns the path off.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import hashlib
import hmac
import logging
import os
import ssl
import weakref
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import aiohttp
import botocore.auth
import botocore.httpsession
import yarl
from botocore.utils import percent_encode
from fsspec.asyn import sync

from artifact_fs import errors
from artifact_fs.backends.ranged_download import ResponseBody
from artifact_fs.backends.s3_options import parse_timestamp
from artifact_fs.backends.s3_upload import content_md5
from artifact_fs.policy import stall_bounded_sockets

logger = logging.getLogger(__name__)

EXPIRES_IN = 900
"""Seconds a URL stays valid: it is used at once, so only clock skew needs room."""
PUT_ARGUMENTS = frozenset({"ContentType", "ContentEncoding", "Metadata"})
"""Upload arguments a presigned PUT carries (as the signed headers they become)."""
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
REFUSED = frozenset({400, 403, 405, 501})
"""Answers meaning the store does not take these requests (an unsupported signature, a policy)."""
MISMATCHED_BODY = frozenset({"BadDigest"})
"""Error codes of a 400 that refuses this one body (its bytes do not match the checksum it carried:
damaged on the way), not the path: the SDK sends it again and the path stays on."""
STREAMED_PIECE = 1024 * 1024
"""A body larger than this goes in pieces of this size, each written once the socket has taken the
last: aiohttp joins a ``bytes`` body to the request's head, and asyncio's transport (before Python
3.12) keeps a copy of what the socket did not take at once; slices of a ``memoryview`` are copied by
neither. Measured on a 256 MiB upload in 16 MiB parts: 0.17-0.25 s of the sender's CPU as ``bytes``,
0.07 s in pieces."""
HTTP_NOT_FOUND = 404
HTTP_RANGE_NOT_SATISFIABLE = 416
CHECK_HEADERS = {"ContentMD5": "Content-MD5", "ChecksumCRC32C": "x-amz-checksum-crc32c"}
"""The header a part's checksum parameter is sent as."""
SIGNED_HEADERS = {"ContentType": "Content-Type", "ContentEncoding": "Content-Encoding", **CHECK_HEADERS}
"""Parameters a presigned URL signs as these headers (``Metadata`` as ``x-amz-meta-*``)."""
QUERY_PARAMETERS = {"UploadId": "uploadId", "PartNumber": "partNumber"}
"""Parameters a presigned URL carries in its query string."""
SIGV4_QUERY = frozenset(
    {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders"}
    | {"X-Amz-Signature", "X-Amz-Security-Token"}
)
PROBE_KEY = "probe"
SIGV4_ALGORITHM = "AWS4-HMAC-SHA256"
SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
"""The payload hash of a presigned URL: the body is not signed (its checksum header is)."""


@dataclass(frozen=True)
class BucketSigning:
    """What every SigV4 presigned URL of one bucket shares, taken from one URL botocore presigned:
    the bucket's address up to its keys (endpoint, addressing style) and the signing region.

    botocore's ``generate_presigned_url`` costs about 200 us, most of it resolving the endpoint and
    serialising the request, which are the same for every key of a bucket; its ``S3SigV4QueryAuth``
    alone costs 66-80 us (a request object, the host parsed from the URL again, the signing key derived
    again: four HMACs). So :meth:`SmallRequests._url` asks botocore once per bucket and signs each
    URL here, with AWS's SigV4 query-string algorithm (the canonical request of the method, the
    key's path, the query, the signed headers and ``UNSIGNED-PAYLOAD``; the signing key derived
    once a day): about 20 us, and the same URL as botocore's, byte for byte with the clock stopped
    (``tests/test_s3_small_signing.py``). The time is botocore's clock.
    """

    base: str
    region: str

    @functools.cached_property
    def _address(self) -> tuple[str, str]:
        """The path of the bucket's address and the ``host`` header SigV4 signs (the port unless
        it is the scheme's own, an IPv6 address in brackets), as botocore derives them."""
        parts = urlsplit(self.base)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if parts.port is not None and parts.port != {"http": 80, "https": 443}.get(parts.scheme):
            host = f"{host}:{parts.port}"
        return parts.path, host

    @classmethod
    def of(cls, probe_url: str) -> BucketSigning | None:
        """From a presigned GET of :data:`PROBE_KEY`; ``None`` unless it is plain SigV4 for S3 (an
        S3 Express session, SigV2 and unsigned URLs keep botocore's presigner)."""
        parts = urlsplit(probe_url)
        query = parse_qs(parts.query, keep_blank_values=True)
        scope = query.get("X-Amz-Credential", [""])[0].split("/")
        plain = set(query) <= SIGV4_QUERY and query.get("X-Amz-Algorithm") == ["AWS4-HMAC-SHA256"]
        if not plain or len(scope) != 5 or scope[3:] != ["s3", "aws4_request"]:
            return None
        if parts.fragment or not parts.path.endswith("/" + PROBE_KEY):
            return None
        base = f"{parts.scheme}://{parts.netloc}{parts.path[: -len(PROBE_KEY)]}"
        return cls(base=base, region=scope[2])

    def sign(self, credentials: Any, method: str, key: str, params: Mapping[str, Any]) -> str | None:
        """The presigned URL of ``method`` on ``key`` with ``params``; ``None`` for parameters
        :func:`request_fields` does not know."""
        fields = request_fields(params)
        if fields is None:
            return None
        headers, query = fields
        path, host = self._address
        signed_headers = {name.lower(): " ".join(value.split()) for name, value in headers.items()}
        signed_headers["host"] = host
        names = sorted(signed_headers)
        stamp = _now().strftime(SIGV4_TIMESTAMP)
        scope = f"{stamp[:8]}/{self.region}/s3/aws4_request"
        authorising = [
            ("X-Amz-Algorithm", SIGV4_ALGORITHM),
            ("X-Amz-Credential", f"{credentials.access_key}/{scope}"),
            ("X-Amz-Date", stamp),
            ("X-Amz-Expires", str(EXPIRES_IN)),
            ("X-Amz-SignedHeaders", ";".join(names)),
        ]
        if credentials.token is not None:
            authorising.append(("X-Amz-Security-Token", credentials.token))
        fields_encoded = [(_encoded(name), _encoded(value)) for name, value in [*query.items(), *authorising]]
        key_path = percent_encode(key, safe="/~")
        canonical = "\n".join(
            [
                method,
                path + key_path,
                "&".join(f"{name}={value}" for name, value in sorted(fields_encoded)),
                "".join(f"{name}:{signed_headers[name]}\n" for name in names),
                ";".join(names),
                UNSIGNED_PAYLOAD,
            ]
        )
        to_sign = "\n".join([SIGV4_ALGORITHM, stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        signing_key = _signing_key(credentials.secret_key, stamp[:8], self.region)
        signature = hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
        query_string = "&".join(f"{name}={value}" for name, value in fields_encoded)
        return f"{self.base}{key_path}?{query_string}&X-Amz-Signature={signature}"


def _now() -> datetime.datetime:
    """botocore's signing clock (``botocore.auth.get_current_datetime``, which its presigner reads),
    or UTC now where botocore has none."""
    clock = getattr(botocore.auth, "get_current_datetime", None)
    return clock() if clock is not None else datetime.datetime.now(datetime.UTC)


def _encoded(text: str) -> str:
    """A query field's name or value as SigV4 encodes it (RFC 3986: only ``-._~`` left as they are)."""
    return percent_encode(text, safe="-_.~")


@functools.lru_cache(maxsize=32)
def _signing_key(secret: str, day: str, region: str) -> bytes:
    """SigV4's signing key of ``day`` (``YYYYMMDD``) for S3 in ``region``: four HMACs, once a day."""
    key = f"AWS4{secret}".encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def request_fields(params: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]] | None:
    """The headers and query fields a presigned request carries for ``params`` (:data:`SIGNED_HEADERS`,
    ``Metadata`` as ``x-amz-meta-*``, :data:`QUERY_PARAMETERS`); ``None`` for any other parameter."""
    headers: dict[str, str] = {}
    query: dict[str, str] = {}
    for name, value in params.items():
        if name in SIGNED_HEADERS:
            headers[SIGNED_HEADERS[name]] = str(value)
        elif name in QUERY_PARAMETERS:
            query[QUERY_PARAMETERS[name]] = str(value)
        elif name == "Metadata":
            headers.update({f"x-amz-meta-{meta}": str(text) for meta, text in value.items()})
        else:
            return None
    return headers, query


def _answer(response: aiohttp.ClientResponse) -> dict[str, Any]:
    """The fields of botocore's ``get_object`` answer that the download reads."""
    headers = response.headers
    return {
        "ContentLength": int(headers.get("Content-Length") or 0),
        "ContentRange": headers.get("Content-Range"),
        "ETag": headers.get("ETag"),
        "Metadata": _metadata(headers),
        "Body": ResponseBody(response),
    }


def _metadata(headers: Mapping[str, str]) -> dict[str, str]:
    """An object's user metadata (``x-amz-meta-*``), named as botocore names it (lower case)."""
    return {
        name[len("x-amz-meta-") :].lower(): value
        for name, value in headers.items()
        if name.lower().startswith("x-amz-meta-")
    }


def _error_code(body: bytes) -> str | None:
    try:
        return ElementTree.fromstring(body).findtext("Code")
    except ElementTree.ParseError:
        return None


class SmallRequests:
    """The presigned path of one :class:`~artifact_fs.backends.s3.ArtifactS3FileSystem`."""

    def __init__(self, fs: Any) -> None:
        self._fs = weakref.ref(fs)  # the filesystem holds this object: no cycle
        self.enabled = self._usable(fs)
        self.proven = False
        """Whether the store has answered a presigned request (other than refusing it)."""
        self._sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
            weakref.WeakKeyDictionary()
        )
        self._trials: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._signing: dict[str, BucketSigning | None] = {}

    @property
    def fs(self) -> Any:
        return self._fs()

    @staticmethod
    def _usable(fs: Any) -> bool:
        if not getattr(fs, "presigned_small_requests", True) or fs.version_aware:
            return False
        if fs.req_kw or fs.s3_additional_kwargs:  # arguments every request carries (SSE-C, payer, owner)
            return False
        if (fs.config_kwargs or {}).get("proxies") or any(os.environ.get(name) for name in PROXY_VARIABLES):
            return False
        endpoint = fs.client_kwargs.get("endpoint_url") or getattr(fs, "endpoint_url", None)
        return not endpoint or str(endpoint).startswith(("http://", "https://"))

    # -- the HTTP session, one per event loop ---------------------------------------------------------
    async def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            client = await self.fs.set_session()
            config = client.meta.config
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=max(int(config.max_pool_connections or 10), 64),
                    ssl=self._ssl(client),
                    **_sockets(config.read_timeout),
                ),
                timeout=aiohttp.ClientTimeout(
                    sock_connect=config.connect_timeout, sock_read=config.read_timeout
                ),
                trust_env=False,  # proxies keep the SDK path (above); never ~/.netrc credentials
                auto_decompress=False,  # the object's bytes, as botocore returns them
                skip_auto_headers=("Content-Type",),
            )
            self._sessions[loop] = session
            weakref.finalize(self.fs, _close, loop, session)
        return session

    def _ssl(self, client: Any) -> ssl.SSLContext | bool:
        if not str(client.meta.endpoint_url).startswith("https://"):
            return True
        verify = self.fs.client_kwargs.get("verify")
        if verify is False:
            return False
        if not isinstance(verify, str):
            verify = self.fs.session.get_config_variable("ca_bundle") or botocore.httpsession.get_cert_path(
                True
            )
        return ssl.create_default_context(cafile=verify)

    def _off(self, why: str) -> None:
        if self.enabled:
            logger.debug("presigned small requests off for %s: %s", self.fs.client_kwargs, why)
        self.enabled = False

    async def _url(
        self, method: str, operation: str, bucket: str, key: str, params: Mapping[str, Any] | None = None
    ) -> yarl.URL:
        """``operation``'s presigned URL: signed here (:class:`BucketSigning`) where the bucket's
        URLs are plain SigV4, else by botocore's ``generate_presigned_url``."""
        client = await self.fs.set_session()
        if bucket not in self._signing:
            probe = await client.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": PROBE_KEY}, ExpiresIn=EXPIRES_IN
            )
            self._signing[bucket] = BucketSigning.of(str(probe))
        signing = self._signing[bucket]
        credentials = await _frozen_credentials(client) if signing is not None else None
        if signing is not None and credentials is not None:
            url = signing.sign(credentials, method, key, params or {})
            if url is not None:
                return yarl.URL(url, encoded=True)
        url = await client.generate_presigned_url(
            operation, Params={"Bucket": bucket, "Key": key, **(params or {})}, ExpiresIn=EXPIRES_IN
        )
        return yarl.URL(url, encoded=True)

    # -- requests: None means "ask the SDK" -------------------------------------------------------------
    async def get(self, bucket: str, key: str, **request: Any) -> Mapping[str, Any] | None:
        """``get_object``'s answer (``Range`` and ``IfMatch`` as headers), or ``None``."""
        headers = {}
        if "Range" in request:
            headers["Range"] = request.pop("Range")
        if "IfMatch" in request:
            headers["If-Match"] = request.pop("IfMatch")
        if request:
            return None
        response = await self._send("GET", "get_object", bucket, key, headers=headers)
        if response is not None and response.status == HTTP_RANGE_NOT_SATISFIABLE and "Range" in headers:
            response.release()  # an empty object: S3 refuses any range on it
            response = await self._send("GET", "get_object", bucket, key)
        if response is None:
            return None
        if response.status in (200, 206):
            return _answer(response)
        await _drained(response)
        return None

    async def head(self, bucket: str, key: str) -> dict[str, Any] | None:
        """``info`` of an object as s3fs shapes a ``head_object`` answer, with its ``Metadata``
        (a carried record); ``None`` when the SDK should ask (a missing object or a directory
        included: s3fs then looks for a prefix)."""
        response = await self._send("HEAD", "head_object", bucket, key)
        if response is None:
            return None
        await _drained(response)
        if response.status != 200:
            return None
        headers = response.headers
        return {
            "ETag": headers.get("ETag", ""),
            "LastModified": parse_timestamp(headers["Last-Modified"]) if "Last-Modified" in headers else "",
            "size": int(headers.get("Content-Length") or 0),
            "name": f"{bucket}/{key}",
            "type": "file",
            "StorageClass": headers.get("x-amz-storage-class", "STANDARD"),
            "VersionId": headers.get("x-amz-version-id"),
            "ContentType": headers.get("Content-Type"),
            "Metadata": _metadata(headers),
        }

    async def read_range(
        self, bucket: str, key: str, start: int, stop: int, etag: str | None
    ) -> bytes | None:
        """Bytes ``start`` to ``stop`` of the object (pinned to ``etag`` when given), or ``None``
        when the SDK should read them (:meth:`get`'s ``None``, a changed object's 412 included,
        which the SDK then reports; or anything but a ranged answer of exactly that length)."""
        body = await self._ranged_body(bucket, key, start, stop, etag)
        if body is None:
            return None
        try:
            data = bytes(await body.read())
        except (TimeoutError, aiohttp.ClientError):
            return None  # a cut body: the SDK asks again (and retries)
        finally:
            body.close()
        return data if len(data) == stop - start else None

    async def read_range_into(
        self, bucket: str, key: str, start: int, view: memoryview, etag: str | None
    ) -> bool:
        """:meth:`read_range` of ``len(view)`` bytes written into ``view`` as they arrive (no joined
        copy); ``False`` where :meth:`read_range` answers ``None`` (``view`` then holds no promise)."""
        body = await self._ranged_body(bucket, key, start, start + len(view), etag)
        if body is None:
            return False
        try:
            return await body.readinto(view) == len(view)
        except (TimeoutError, aiohttp.ClientError, ValueError):
            return False  # a cut or overlong body: the SDK asks again (and retries)
        finally:
            body.close()

    async def _ranged_body(self, bucket: str, key: str, start: int, stop: int, etag: str | None) -> Any:
        """The body of a ranged (206) answer for bytes ``start`` to ``stop``, or ``None``."""
        request = {"Range": f"bytes={start}-{stop - 1}", **({"IfMatch": etag} if etag else {})}
        answer = await self.get(bucket, key, **request)
        if answer is None:
            return None
        if not answer["ContentRange"]:  # a 200: the store ignored the range
            answer["Body"].close()
            return None
        return answer["Body"]

    async def cat(self, bucket: str, key: str) -> bytes | None:
        """A whole small object, ``FileNotFoundError`` if it does not exist, or ``None``."""
        response = await self._send("GET", "get_object", bucket, key)
        if response is None:
            return None
        if response.status != 200:
            body = await _drained(response)
            if response.status != HTTP_NOT_FOUND:
                return None
            raise errors.http_error(
                HTTP_NOT_FOUND,
                method="GET",
                url=str(response.url),
                error_code=_error_code(body),
                message=f"no object {key!r} in bucket {bucket!r}",
                path=f"{bucket}/{key}",
            )
        try:
            return bytes(await response.read())
        except (TimeoutError, aiohttp.ClientError) as exc:
            self._off(repr(exc))
            return None
        finally:
            response.release()

    async def put(self, bucket: str, key: str, data: bytes, arguments: Mapping[str, Any]) -> bool:
        """Send ``data`` as the object in one PUT; ``False`` when the SDK should send it."""
        if not self.enabled or not set(arguments) <= PUT_ARGUMENTS:
            return False
        # The store checks the body it received (botocore would send a CRC on AWS): a signed header.
        arguments = {**arguments, "ContentMD5": content_md5(data)}
        fields = request_fields(arguments)
        if fields is None:
            return False
        headers = fields[0]
        body = _body(data, headers)
        response = await self._send("PUT", "put_object", bucket, key, arguments, headers=headers, data=body)
        if response is None:
            return False
        await _drained(response)
        return response.status == 200

    async def upload_part(
        self, bucket: str, key: str, data: bytes, *, upload_id: str, number: int, check: tuple[str, str]
    ) -> str | None:
        """Send one part of a multipart upload (``check``: its checksum as the ``upload_part``
        parameter and value, :func:`.s3_upload.part_check`); its ETag, or ``None`` when the SDK
        should send it."""
        name, value = check
        params = {"UploadId": upload_id, "PartNumber": number, name: value}
        fields = request_fields({name: value})
        if fields is None:
            return None
        headers = fields[0]
        body = _body(data, headers)
        response = await self._send("PUT", "upload_part", bucket, key, params, headers=headers, data=body)
        if response is None:
            return None
        await _drained(response)
        etag = response.headers.get("ETag")
        return etag if response.status == 200 and etag else None

    async def _send(
        self,
        method: str,
        operation: str,
        bucket: str,
        key: str,
        params: Mapping[str, Any] | None = None,
        **request: Any,
    ) -> aiohttp.ClientResponse | None:
        """One presigned request, its answer unread; ``None`` when the SDK should send it. Until a
        store has answered one, they go one at a time: a store refusing them costs one request, not
        one per transfer in flight."""
        if not self.enabled:
            return None
        if self.proven:
            return await self._request(method, operation, bucket, key, params=params, request=request)
        loop = asyncio.get_running_loop()
        async with self._trials.setdefault(loop, asyncio.Lock()):
            if not self.enabled:
                return None
            return await self._request(method, operation, bucket, key, params=params, request=request)

    async def _request(
        self,
        method: str,
        operation: str,
        bucket: str,
        key: str,
        *,
        params: Mapping[str, Any] | None,
        request: Mapping[str, Any],
    ) -> aiohttp.ClientResponse | None:
        try:
            session = await self._session()
            url = await self._url(method, operation, bucket, key, params)
            response = await session.request(method, url, **request)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            self._off(repr(exc))
            return None
        if response.status in REFUSED:
            code = _error_code(await _drained(response))
            if code not in MISMATCHED_BODY:
                self._off(f"HTTP {response.status} {code}")
            return None
        self.proven = True
        return response


async def _frozen_credentials(client: Any) -> Any:
    """The credentials the client signs with, refreshed when due (aiobotocore's own); ``None`` if
    the client has none or botocore no longer offers them (then botocore presigns)."""
    try:
        credentials = client._get_credentials()  # botocore's client accessor (private, guarded)
    except AttributeError:
        return None
    if credentials is None:
        return None
    frozen = credentials.get_frozen_credentials()
    return await frozen if asyncio.iscoroutine(frozen) else frozen


def _body(data: bytes, headers: dict[str, str]) -> Any:
    """A request body: ``data`` itself, or its :data:`STREAMED_PIECE` pieces with the length in
    ``headers`` (aiohttp would otherwise send an iterated body chunked)."""
    if len(data) <= STREAMED_PIECE:
        return data
    headers["Content-Length"] = str(len(data))
    return _pieces(memoryview(data))


async def _pieces(view: memoryview) -> AsyncIterator[memoryview]:
    for start in range(0, len(view), STREAMED_PIECE):
        yield view[start : start + STREAMED_PIECE]


def _sockets(read_timeout: float | None) -> dict[str, Any]:
    """The connector's sockets: a body the store stops reading fails after the read timeout."""
    factory = stall_bounded_sockets(read_timeout)
    return {"socket_factory": factory} if factory else {}


async def _drained(response: aiohttp.ClientResponse) -> bytes:
    """The (short) body of an answer not passed on, its connection back in the pool."""
    try:
        return await response.read()
    except (TimeoutError, aiohttp.ClientError):
        return b""
    finally:
        response.release()


def _close(loop: asyncio.AbstractEventLoop, session: aiohttp.ClientSession) -> None:
    """Close a session when its filesystem goes (s3fs closes its client the same way)."""
    if session.closed:
        return
    if loop.is_running() and not loop.is_closed():
        try:
            sync(loop, session.close, timeout=0.1)
            return
        except Exception:  # noqa: BLE001 - the loop is going away: nothing left to close on it
            pass
    connector = session.connector
    if connector is not None:
        connector._close()
