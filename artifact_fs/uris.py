"""Every artifact URI form MLflow accepts, parsed once into one value.

``parse(uri)`` validates a URI the way MLflow's artifact-repository registry would accept it and
returns an :class:`ArtifactURI`. Everything downstream (settings, backends, store, server, CLI)
takes the parsed value, never the raw string. Credentials never appear in ``str()`` or in error
messages; :meth:`ArtifactURI.to_string` with ``reveal=True`` gives the exact input back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlparse, urlsplit

# scheme -> backend module name (artifact_fs.backends.<name>)
BACKEND_FOR_SCHEME: dict[str, str] = {
    "": "local",
    "file": "local",
    "s3": "s3",
    "gs": "gcs",
    "wasbs": "azure",
    "abfss": "azure",
    "ftp": "ftp",
    "sftp": "sftp",
    "hdfs": "hdfs",
    "viewfs": "hdfs",
    "http": "mlflow_artifacts",
    "https": "mlflow_artifacts",
    "mlflow-artifacts": "mlflow_artifacts",
    "runs": "runs",
    "models": "models",
}
SUPPORTED_SCHEMES: tuple[str, ...] = tuple(sorted(s for s in BACKEND_FOR_SCHEME if s))

# Hints for schemes people reach for that MLflow does not register.
_SCHEME_HINTS = {
    "wasb": "MLflow registers only 'wasbs' (TLS); use wasbs://<container>@<account>.blob.core.windows.net/<path>",
    "abfs": "MLflow registers only 'abfss' (TLS); use abfss://<filesystem>@<account>.dfs.core.windows.net/<path>",
    "s3a": "use s3://<bucket>/<path>",
    "s3n": "use s3://<bucket>/<path>",
    "gcs": "use gs://<bucket>/<path>",
    "az": "use wasbs://<container>@<account>.blob.core.windows.net/<path>",
    "dbfs": "Databricks storage is out of scope for artifact_fs",
}

_AZURE_BLOB_HOST = re.compile(
    r"^(?P<account>[A-Za-z0-9]+)\.blob\.core\.(?:windows\.net|chinacloudapi\.cn|usgovcloudapi\.net)$"
)
_AZURE_DFS_HOST = re.compile(r"^(?P<account>[^.]+)\.(?P<suffix>.+)$")
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:([\\/]|$)")
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*):")
_PASSWORD_IN_NETLOC = re.compile(r"^(?P<user>[^:@/]*):(?P<password>[^@/]*)@")

MLFLOW_ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"
LOGGED_MODEL_ID = re.compile(r"^m-[0-9a-f]{32}$")
"""MLflow 3's logged-model ids (``m-`` and a uuid4 in hex): the one single-segment model spec."""
MODELS_URI_FORMS = (
    "expected models:/<model_id>, models:/<name>/<version>, models:/<name>/latest, "
    "models:/<name>/<stage> or models:/<name>@<alias>, optionally followed by /<artifact path>"
)


def redact(uri: str) -> str:
    """``uri`` with any password replaced by ``***``; safe to put in messages and logs."""
    match = _SCHEME.match(uri)
    if not match or not uri[match.end() :].startswith("//"):
        return uri
    start = match.end() + 2
    rest = uri[start:]
    netloc_end = len(rest)
    for separator in "/?#":
        index = rest.find(separator)
        if index != -1:
            netloc_end = min(netloc_end, index)
    netloc = rest[:netloc_end]
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{hostport}"
    return uri[:start] + netloc + rest[netloc_end:]


def _reject(uri: str, reason: str) -> ValueError:
    return ValueError(f"Invalid artifact URI {redact(uri)!r}: {reason}")


@dataclass(frozen=True)
class ArtifactURI:
    """One parsed artifact location.

    ``scheme`` is lower-cased and ``""`` for a plain local path (POSIX, relative or a Windows
    drive path). ``username``/``password`` are percent-decoded; ``path`` and ``query`` are kept
    exactly as written.
    """

    scheme: str
    path: str
    host: str | None = None
    port: int | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    query: str = ""
    has_authority: bool = False
    """True when the URI had ``//`` after the scheme (``file:///x`` versus ``file:/x``)."""
    netloc: str = field(default="", repr=False)
    """The authority exactly as written (may hold a password; never shown)."""

    # -- derived views ------------------------------------------------------------------------
    @property
    def backend(self) -> str:
        """Name of the backend module that serves this URI (``local``, ``s3``, ``azure``...)."""
        return BACKEND_FOR_SCHEME[self.scheme]

    @property
    def is_local(self) -> bool:
        return self.backend == "local"

    @property
    def bucket(self) -> str:
        """Bucket (S3, GCS) or container / filesystem (Azure) name."""
        if self.scheme in {"wasbs", "abfss"}:
            return self.username or ""
        return self.host or ""

    @property
    def key(self) -> str:
        """Object key prefix inside the bucket, without a leading slash."""
        return self.path.lstrip("/")

    @property
    def account(self) -> str | None:
        """Azure storage account name."""
        if self.scheme == "wasbs" and self.host:
            match = _AZURE_BLOB_HOST.match(self.host)
            return match.group("account") if match else None
        if self.scheme == "abfss" and self.host:
            return self.host.split(".", 1)[0]
        return None

    @property
    def run_id(self) -> str | None:
        """The run id of a ``runs:/<run_id>/<path>`` URI."""
        if self.scheme != "runs":
            return None
        return self.path.lstrip("/").split("/", 1)[0]

    @property
    def run_relative_path(self) -> str:
        """The artifact path after the run id of a ``runs:/`` URI (may be empty)."""
        parts = self.path.lstrip("/").split("/", 1)
        return parts[1] if len(parts) > 1 else ""

    @property
    def model(self) -> ModelReference | None:
        """What a ``models:/`` URI names (a logged model, a registry version or alias)."""
        if self.scheme != "models":
            return None
        return split_models_path(self.path)[0]

    @property
    def model_relative_path(self) -> str:
        """The artifact path after the model spec of a ``models:/`` URI (may be empty)."""
        return split_models_path(self.path)[1] if self.scheme == "models" else ""

    @property
    def local_path(self) -> str:
        """The filesystem path of a local URI, percent-decoded for ``file:`` forms."""
        if self.scheme == "":
            return self.path
        return unquote(self.path)

    # -- formatting ---------------------------------------------------------------------------
    def to_string(self, *, reveal: bool = False) -> str:
        """The canonical URI; the password appears only when ``reveal`` is true."""
        if self.scheme == "":
            return self.path
        netloc = self.netloc
        if not reveal and self.password is not None:
            netloc = _PASSWORD_IN_NETLOC.sub(lambda m: f"{m.group('user')}:***@", netloc)
        text = f"{self.scheme}:"
        if self.has_authority:
            text += f"//{netloc}"
        text += self.path
        if self.query:
            text += f"?{self.query}"
        return text

    def __str__(self) -> str:
        return self.to_string()

    def with_path(self, path: str) -> ArtifactURI:
        """The same location with another path (used to qualify roots)."""
        return _replace(self, path=path)


@dataclass(frozen=True)
class ModelReference:
    """The model a ``models:/`` URI names: a logged model id, or a registered name with one of a
    version, an alias, a stage, or nothing (the latest version)."""

    model_id: str | None = None
    name: str | None = None
    version: str | None = None
    alias: str | None = None
    stage: str | None = None

    @property
    def is_logged_model(self) -> bool:
        return self.model_id is not None

    @property
    def spec(self) -> str:
        """The path form of the reference (``m-...``, ``name/3``, ``name@alias``, ``name/latest``)."""
        if self.model_id is not None:
            return self.model_id
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return f"{self.name}/{self.version or self.stage or 'latest'}"

    def __str__(self) -> str:
        return f"models:/{self.spec}"


def split_models_path(path: str) -> tuple[ModelReference, str]:
    """Split the path of a ``models:/`` URI into the model it names and the artifact path inside.

    MLflow's own split (``ModelsArtifactRepository.split_models_uri``): a first segment with ``@``
    is ``<name>@<alias>``, else the first two segments are ``<name>/<version|stage|latest>``. MLflow
    reads a lone segment as a logged-model id; with an artifact path after it, only a segment shaped
    like MLflow 3's ids (``m-`` + 32 hex digits) is one, since registered names may not contain
    ``/`` but may look like anything else. ``ValueError`` for anything else.
    """
    segments = path.lstrip("/").split("/")
    first = segments[0]
    if not first.strip():
        raise ValueError(f"the URI names no model; {MODELS_URI_FORMS}")
    if "@" in first:
        name, _, alias = first.rpartition("@")
        if not name.strip() or not alias.strip():
            raise ValueError(f"{first!r} is neither <name>@<alias> nor a model id; {MODELS_URI_FORMS}")
        return ModelReference(name=name, alias=alias), "/".join(segments[1:]).strip("/")
    if len(segments) == 1 or not "/".join(segments[1:]).strip("/") or LOGGED_MODEL_ID.match(first):
        return ModelReference(model_id=first), "/".join(segments[1:]).strip("/")
    suffix = segments[1]
    if not suffix.strip():
        raise ValueError(f"{path!r} has an empty version after the model name; {MODELS_URI_FORMS}")
    relative = "/".join(segments[2:]).strip("/")
    if suffix.isdigit():
        return ModelReference(name=first, version=suffix), relative
    if suffix.lower() == "latest":
        return ModelReference(name=first), relative
    return ModelReference(name=first, stage=suffix), relative


def _replace(uri: ArtifactURI, **changes: object) -> ArtifactURI:
    from dataclasses import replace

    return replace(uri, **changes)  # type: ignore[arg-type]


def parse(uri: str | ArtifactURI) -> ArtifactURI:
    """Parse and validate ``uri``; raise ``ValueError`` naming the (redacted) URI and the problem."""
    if isinstance(uri, ArtifactURI):
        return uri
    if not isinstance(uri, str):
        raise TypeError(f"artifact URI must be a string, not {type(uri).__name__}")
    if not uri.strip():
        raise ValueError("Invalid artifact URI '': the URI is empty")
    if "\x00" in uri:
        raise _reject(uri, "it contains a NUL character")
    if _WINDOWS_DRIVE.match(uri):
        return ArtifactURI(scheme="", path=uri)
    match = _SCHEME.match(uri)
    if not match:
        if "#" in uri:
            raise _reject(uri, "a local path may not contain a '#' fragment")
        return ArtifactURI(scheme="", path=uri)
    scheme = match.group("scheme").lower()
    if scheme not in BACKEND_FOR_SCHEME:
        hint = _SCHEME_HINTS.get(scheme)
        supported = ", ".join(SUPPORTED_SCHEMES)
        message = f"unknown scheme {scheme!r}; supported schemes are {supported}, or a plain local path"
        raise _reject(uri, f"{message} ({hint})" if hint else message)

    split = urlsplit(uri, allow_fragments=True)
    if split.fragment or uri.endswith("#"):
        raise _reject(uri, "fragments ('#...') are not allowed in artifact locations")
    proxied = scheme in {"http", "https", "mlflow-artifacts"}
    if urlparse(uri).params or (proxied and ";" in split.path):
        raise _reject(uri, "';' path parameters are not allowed in artifact locations")
    if proxied and ".." in _fully_unquote(split.path).split("/"):
        raise _reject(uri, "'..' segments are not allowed in the path of a proxied artifact location")
    if ".." in _fully_unquote(split.query).split("/") or ".." in _fully_unquote(split.query):
        raise _reject(uri, "the query string may not contain '..'")
    has_authority = uri[match.end() :].startswith("//")
    try:
        port = split.port
    except ValueError as exc:
        raise _reject(uri, f"the port is not a number between 0 and 65535 ({exc})") from exc
    username = unquote(split.username) if split.username is not None else None
    password = unquote(split.password) if split.password is not None else None
    parsed = ArtifactURI(
        scheme=scheme,
        path=split.path,
        host=split.hostname,
        port=port,
        username=username,
        password=password,
        query=split.query,
        has_authority=has_authority,
        netloc=split.netloc,
    )
    _validate_scheme_specific(uri, parsed)
    return parsed


def _fully_unquote(text: str) -> str:
    for _ in range(10):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    return text


def _validate_scheme_specific(uri: str, parsed: ArtifactURI) -> None:
    scheme = parsed.scheme
    if scheme == "file":
        if parsed.host not in (None, "", "localhost"):
            raise _reject(uri, "a file: URI may not name a remote host; use file:///<absolute path>")
        if parsed.username or parsed.port:
            raise _reject(uri, "a file: URI may not carry credentials or a port")
    elif scheme in {"s3", "gs"}:
        if not parsed.host:
            raise _reject(uri, f"expected {scheme}://<bucket>/<path>: the bucket name is missing")
        if parsed.username is not None or parsed.port is not None:
            raise _reject(
                uri,
                f"expected {scheme}://<bucket>/<path>; credentials and endpoints belong in "
                "the environment (e.g. MLFLOW_S3_ENDPOINT_URL), not in the artifact URI",
            )
    elif scheme == "wasbs":
        if not parsed.username or not parsed.host or not _AZURE_BLOB_HOST.match(parsed.host):
            raise _reject(
                uri,
                "WASBS URI must be of the form "
                "wasbs://<container>@<account>.blob.core.windows.net/<path> "
                "(or .blob.core.chinacloudapi.cn / .blob.core.usgovcloudapi.net), "
                "with an alphanumeric account name",
            )
        if parsed.password is not None or parsed.port is not None:
            raise _reject(uri, "a wasbs URI may not carry a password or a port")
    elif scheme == "abfss":
        if not parsed.username or not parsed.host or not _AZURE_DFS_HOST.match(parsed.host):
            raise _reject(
                uri,
                "ABFSS URI must be of the form abfss://<filesystem>@<account>.dfs.core.windows.net/<path>",
            )
        if parsed.password is not None:
            raise _reject(uri, "an abfss URI may not carry a password")
    elif scheme in {"http", "https"}:
        if not parsed.host:
            raise _reject(
                uri, f"expected {scheme}://<host>[:<port>]/.../api/2.0/mlflow-artifacts/artifacts/..."
            )
    elif scheme == "mlflow-artifacts":
        if parsed.has_authority and parsed.netloc:
            if parsed.host and parsed.host.isdigit() and parsed.port is None:
                raise _reject(
                    uri,
                    f"the mlflow-artifacts URI was supplied with a port number: {parsed.host}, "
                    "but no host was defined",
                )
            if parsed.username is not None:
                raise _reject(uri, "credentials belong in MLFLOW_TRACKING_USERNAME/PASSWORD, not the URI")
    elif scheme == "runs":
        if parsed.has_authority and parsed.netloc:
            raise _reject(uri, "Not a proper runs:/ URI; expected runs:/<run_id>/<path> (one slash)")
        if not parsed.path.startswith("/") or not parsed.run_id:
            raise _reject(uri, "Not a proper runs:/ URI; expected runs:/<run_id>/<path> with a run id")
    elif scheme == "models":
        if parsed.has_authority and parsed.netloc:
            raise _reject(
                uri,
                f"Not a proper models:/ URI (Databricks profile forms are not supported); {MODELS_URI_FORMS}",
            )
        if not parsed.path.startswith("/"):
            raise _reject(uri, f"Not a proper models:/ URI; {MODELS_URI_FORMS}")
        try:
            split_models_path(parsed.path)
        except ValueError as exc:
            raise _reject(uri, f"Not a proper models:/ URI: {exc}") from None
    elif scheme in {"ftp", "sftp", "hdfs", "viewfs"}:
        if parsed.has_authority and parsed.netloc and not parsed.host:
            raise _reject(uri, f"expected {scheme}://[user[:password]@]host[:port]/path")
    else:  # pragma: no cover - every scheme in BACKEND_FOR_SCHEME is handled above
        raise _reject(uri, f"no validation rule for scheme {scheme!r}")
