"""MLflow's environment variables (and the provider ones it relies on), with MLflow's parsing.

Each variable is a :class:`Setting`: its name, default and parser in one place. ``get(environ)``
returns the default when the variable is unset and raises ``ValueError`` naming the variable and
the bad value when it cannot be parsed, exactly as MLflow's ``_EnvironmentVariable`` does
(booleans accept only true/false/1/0 in any case; an empty string is *set* and therefore invalid).
``is_set`` tests presence, which MLflow uses for client-side overrides.

Precedence everywhere: an explicit keyword argument wins over the environment, which wins over the
default (:func:`pick`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
Environ = Mapping[str, str]

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


def _environ(environ: Environ | None) -> Environ:
    return os.environ if environ is None else environ


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One environment variable: name, default, parser and what it is for."""

    name: str
    default: T
    parser: Callable[[str], T]
    doc: str = ""

    def is_set(self, environ: Environ | None = None) -> bool:
        """Presence, not truthiness (``MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD=false`` is set)."""
        return self.name in _environ(environ)

    def raw(self, environ: Environ | None = None) -> str | None:
        return _environ(environ).get(self.name)

    def get(self, environ: Environ | None = None) -> T:
        """The parsed value, or the default when unset; ``ValueError`` naming the variable if bad."""
        raw = self.raw(environ)
        if raw is None:
            return self.default
        try:
            return self.parser(raw)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"Invalid value {raw!r} for environment variable {self.name}: {exc}") from exc


def pick(explicit: T | None, setting: Setting[T], environ: Environ | None = None) -> T:
    """Explicit keyword argument, else the environment, else the default."""
    return explicit if explicit is not None else setting.get(environ)


# -- parsers -----------------------------------------------------------------------------------
def parse_bool(text: str) -> bool:
    """MLflow's boolean rule: only true/false/1/0, any case."""
    lowered = text.lower()  # no stripping: MLflow refuses " true" too
    if lowered in {"true", "1"}:
        return True
    if lowered in {"false", "0"}:
        return False
    raise ValueError("expected one of true, false, 1, 0 (any case)")


def parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError("expected an integer") from None


def parse_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError("expected a number") from None


def parse_str(text: str) -> str:
    return text


def parse_json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"expected a JSON object, got invalid JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got a JSON {type(value).__name__}")
    return value


def parse_key_value_pairs(text: str) -> dict[str, str]:
    """MLflow's ``k=v,k2=v2`` form (``MLFLOW_PYARROW_EXTRA_CONF``).

    A pair without ``=`` or with an empty key (``a=1,``, ``=v``) is an error, as in MLflow. Unlike
    MLflow, a value may itself hold ``=`` (split at the first one): Hadoop keys such as ViewFS mount
    tables take URIs with query strings.
    """
    result: dict[str, str] = {}
    if not text:
        return result
    for pair in text.split(","):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"the pair {pair!r} is not key=value (expected key=value,key2=value2)")
        result[key] = value
    return result


def parse_comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def in_range(parser: Callable[[str], int], low: int, high: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = parser(text)
        if not low <= value <= high:
            raise ValueError(f"{what} must be between {low} and {high}, got {value}")
        return value

    return parse


def multiple_of(parser: Callable[[str], int], unit: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = parser(text)
        if value <= 0 or value % unit:
            raise ValueError(f"{what} must be a positive multiple of {unit} bytes, got {value}")
        return value

    return parse


def boolean(name: str, default: bool, doc: str = "") -> Setting[bool]:
    return Setting(name, default, parse_bool, doc)


def integer(name: str, default: Any, doc: str = "") -> Setting[Any]:
    return Setting(name, default, parse_int, doc)


def string(name: str, default: str | None = None, doc: str = "") -> Setting[str | None]:
    return Setting(name, default, parse_str, doc)


# -- derived parsers for the rules MLflow (and the stores) impose ------------------------------------
GCS_CHUNK_UNIT = 256 * KIB
S3_MIN_PART, S3_MAX_PART = 5 * MIB, 5 * GIB


def _parse_gcs_chunk(text: str) -> int:
    return multiple_of(parse_int, GCS_CHUNK_UNIT, "a GCS chunk size")(text)


def _parse_s3_part(text: str) -> int:
    return in_range(parse_int, S3_MIN_PART, S3_MAX_PART, "a multipart chunk size")(text)


def _parse_positive_int(text: str) -> int:
    value = parse_int(text)
    if value <= 0:
        raise ValueError(f"expected a positive integer, got {value}")
    return value


def _parse_non_negative_int(text: str) -> int:
    value = parse_int(text)
    if value < 0:
        raise ValueError(f"expected an integer >= 0, got {value}")
    return value


def _parse_timeout(text: str) -> int:
    """Seconds; ``-1`` means no timeout (MLflow's GCS rule), other negatives are errors."""
    value = parse_int(text)
    if value < -1 or value == 0:
        raise ValueError(f"expected a positive number of seconds or -1 for none, got {value}")
    return value


def _parse_addressing_style(text: str) -> str:
    if text not in {"auto", "virtual", "path"}:
        raise ValueError("expected one of auto, virtual, path")
    return text


def _parse_signature_version(text: str) -> str:
    return text


def _capped(parser: Callable[[str], Any], cap: float) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = parser(text)
        if value < 0 or value > cap:
            raise ValueError(f"must be between 0 and {cap}, got {value}")
        return value

    return parse


# -- 1.1 artifact-store variables -------------------------------------------------------------------
MLFLOW_S3_ENDPOINT_URL = string("MLFLOW_S3_ENDPOINT_URL", None, "S3-compatible endpoint for every S3 call.")
MLFLOW_S3_IGNORE_TLS = boolean(
    "MLFLOW_S3_IGNORE_TLS", False, "Disable TLS verification for S3 and presigned URLs."
)
MLFLOW_S3_UPLOAD_EXTRA_ARGS = Setting(
    "MLFLOW_S3_UPLOAD_EXTRA_ARGS",
    None,
    parse_json_object,
    "JSON object merged into every S3 upload's ExtraArgs.",
)
MLFLOW_S3_EXPECTED_BUCKET_OWNER = string(
    "MLFLOW_S3_EXPECTED_BUCKET_OWNER", None, "ExpectedBucketOwner sent on every S3 call."
)
MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE = Setting(
    "MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE", "auto", _parse_addressing_style, "botocore s3 addressing_style."
)
MLFLOW_EXPERIMENTAL_S3_SIGNATURE_VERSION = Setting(
    "MLFLOW_EXPERIMENTAL_S3_SIGNATURE_VERSION",
    "s3v4",
    _parse_signature_version,
    "'unsigned' for anonymous buckets.",
)
MLFLOW_GCS_DOWNLOAD_CHUNK_SIZE = Setting(
    "MLFLOW_GCS_DOWNLOAD_CHUNK_SIZE", None, _parse_gcs_chunk, "GCS download chunk size (multiple of 256 KiB)."
)
MLFLOW_GCS_UPLOAD_CHUNK_SIZE = Setting(
    "MLFLOW_GCS_UPLOAD_CHUNK_SIZE", None, _parse_gcs_chunk, "GCS upload chunk size (multiple of 256 KiB)."
)
MLFLOW_GCS_DEFAULT_TIMEOUT = Setting(
    "MLFLOW_GCS_DEFAULT_TIMEOUT",
    None,
    _parse_timeout,
    "Deprecated; use MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT.",
)
MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT = Setting(
    "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT",
    None,
    _parse_timeout,
    "Transfer timeout in seconds; -1 for none.",
)
MLFLOW_KERBEROS_TICKET_CACHE = string("MLFLOW_KERBEROS_TICKET_CACHE", None, "HDFS Kerberos ticket cache.")
MLFLOW_KERBEROS_USER = string("MLFLOW_KERBEROS_USER", None, "HDFS user.")
MLFLOW_PYARROW_EXTRA_CONF = Setting(
    "MLFLOW_PYARROW_EXTRA_CONF", None, parse_key_value_pairs, "HDFS extra_conf as k=v,k2=v2."
)
MLFLOW_ENABLE_MULTIPART_UPLOAD = boolean(
    "MLFLOW_ENABLE_MULTIPART_UPLOAD", True, "Cloud repositories: presigned multipart upload for large files."
)
MLFLOW_ENABLE_MULTIPART_DOWNLOAD = boolean(
    "MLFLOW_ENABLE_MULTIPART_DOWNLOAD", True, "Cloud repositories: parallel ranged download for large files."
)
MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE = Setting(
    "MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE",
    500 * MIB,
    _parse_non_negative_int,
    "Proxied multipart upload only from this size (bytes).",
)
MLFLOW_MULTIPART_DOWNLOAD_MINIMUM_FILE_SIZE = Setting(
    "MLFLOW_MULTIPART_DOWNLOAD_MINIMUM_FILE_SIZE",
    500 * MIB,
    _parse_non_negative_int,
    "Parallel ranged download only from this size (bytes).",
)
MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE = Setting(
    "MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", 10 * MIB, _parse_s3_part, "Part size, 5 MiB to 5 GiB (S3's limits)."
)
MLFLOW_MULTIPART_DOWNLOAD_CHUNK_SIZE = Setting(
    "MLFLOW_MULTIPART_DOWNLOAD_CHUNK_SIZE",
    100 * MIB,
    _parse_positive_int,
    "Range size for parallel downloads (bytes).",
)
MLFLOW_DOWNLOAD_CHUNK_TIMEOUT = Setting(
    "MLFLOW_DOWNLOAD_CHUNK_TIMEOUT", 300, _parse_positive_int, "Timeout per ranged chunk (seconds)."
)
MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD = boolean(
    "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD",
    False,
    "Server: advertise proxied MPU. Client: if set, overrides the server.",
)
MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD = boolean(
    "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD",
    False,
    "Server: advertise presigned downloads. Client: if set, overrides.",
)
MLFLOW_ARTIFACTS_PRESIGNED_ONLY = boolean(
    "MLFLOW_ARTIFACTS_PRESIGNED_ONLY",
    False,
    "Server refuses proxied byte transfer; clients must use presigned URLs.",
)
MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS = Setting(
    "MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS",
    300,
    in_range(parse_int, 1, 604800, "a presigned URL TTL"),
    "TTL of presigned GET URLs the server mints (1..604800).",
)
MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR = boolean(
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", True, "Show tqdm progress bars for transfers."
)
MLFLOW_ARTIFACT_LOCATION_MAX_LENGTH = Setting(
    "MLFLOW_ARTIFACT_LOCATION_MAX_LENGTH", 2048, _parse_positive_int, "Longest accepted artifact location."
)
MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES: Setting[list[str]] = Setting(
    "MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES",
    [],
    parse_comma_list,
    "Server SSRF policy: host-addressed schemes allowed anywhere.",
)
MLFLOW_ARTIFACTS_DESTINATION = string(
    "MLFLOW_ARTIFACTS_DESTINATION", "./mlartifacts", "The artifact server's destination store."
)
MLFLOW_DEFAULT_ARTIFACT_ROOT = string(
    "MLFLOW_DEFAULT_ARTIFACT_ROOT", None, "Default artifact root for new experiments."
)

# -- 1.2 HTTP client variables (proxied artifact traffic) --------------------------------------------
MLFLOW_TRACKING_URI = string("MLFLOW_TRACKING_URI", None, "Where mlflow-artifacts: and runs: URIs resolve.")
MLFLOW_HTTP_REQUEST_TIMEOUT = Setting(
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
    120,
    _parse_positive_int,
    "Timeout of every proxied HTTP request (seconds).",
)
MLFLOW_HTTP_REQUEST_MAX_RETRIES = Setting(
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES", 7, _capped(parse_int, 10), "Retries, capped at 10 as in MLflow."
)
MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR = Setting(
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", 2, _capped(parse_int, 120), "Backoff factor, capped at 120."
)
MLFLOW_HTTP_REQUEST_BACKOFF_JITTER = Setting(
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", 1.0, parse_float, "Random jitter added to the retry backoff."
)
MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER = boolean(
    "MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER", True, "Honour Retry-After on 429/503."
)
MLFLOW_HTTP_POOL_CONNECTIONS = Setting(
    "MLFLOW_HTTP_POOL_CONNECTIONS", 10, _parse_positive_int, "HTTP connection pools kept."
)
MLFLOW_HTTP_POOL_MAXSIZE = Setting(
    "MLFLOW_HTTP_POOL_MAXSIZE", 10, _parse_positive_int, "Connections per HTTP pool."
)
MLFLOW_ALLOW_HTTP_REDIRECTS = boolean("MLFLOW_ALLOW_HTTP_REDIRECTS", True, "Follow HTTP redirects.")
MLFLOW_TRACKING_USERNAME = string(
    "MLFLOW_TRACKING_USERNAME", None, "Basic auth user (wins over ~/.mlflow/credentials)."
)
MLFLOW_TRACKING_PASSWORD = string("MLFLOW_TRACKING_PASSWORD", None, "Basic auth password.")
MLFLOW_TRACKING_TOKEN = string(
    "MLFLOW_TRACKING_TOKEN", None, "Bearer token, used when username+password are not both set."
)
MLFLOW_TRACKING_INSECURE_TLS = boolean(
    "MLFLOW_TRACKING_INSECURE_TLS", False, "Turn TLS verification off (exclusive with the server cert path)."
)
MLFLOW_TRACKING_SERVER_CERT_PATH = string(
    "MLFLOW_TRACKING_SERVER_CERT_PATH", None, "CA bundle to verify the tracking/artifact server."
)
MLFLOW_TRACKING_CLIENT_CERT_PATH = string(
    "MLFLOW_TRACKING_CLIENT_CERT_PATH", None, "Client certificate for mutual TLS."
)

# -- 1.3 provider variables MLflow relies on ---------------------------------------------------------
AWS_DEFAULT_REGION = string(
    "AWS_DEFAULT_REGION", None, "Region for S3 (set it rather than a client region for moto)."
)
AWS_CA_BUNDLE = string(
    "AWS_CA_BUNDLE", None, "CA bundle for S3 TLS (never together with MLFLOW_S3_IGNORE_TLS)."
)
AWS_PROFILE = string("AWS_PROFILE", None, "Profile in ~/.aws/credentials.")
AZURE_STORAGE_CONNECTION_STRING = string(
    "AZURE_STORAGE_CONNECTION_STRING", None, "Azure credential, precedence 1."
)
AZURE_STORAGE_ACCESS_KEY = string(
    "AZURE_STORAGE_ACCESS_KEY", None, "Azure account key, precedence 2 (then DefaultAzureCredential)."
)
AZURE_STORAGE_SAS_TOKEN = string("AZURE_STORAGE_SAS_TOKEN", None, "ADLS (abfss) SAS token.")
STORAGE_EMULATOR_HOST = string(
    "STORAGE_EMULATOR_HOST", None, "GCS emulator endpoint (google-cloud-storage and gcsfs honour it)."
)
GOOGLE_APPLICATION_CREDENTIALS = string(
    "GOOGLE_APPLICATION_CREDENTIALS", None, "GCS service-account key; anonymous access when no credentials."
)

ALL: tuple[Setting[Any], ...] = tuple(
    value for value in list(globals().values()) if isinstance(value, Setting)
)
"""Every setting, for documentation and validation (``validate_environment``)."""


def validate_environment(environ: Environ | None = None) -> None:
    """Parse every set variable now, so a bad value fails at start-up, not mid-transfer."""
    for setting in ALL:
        setting.get(environ)


def http_tls_verify(environ: Environ | None = None) -> bool | str:
    """requests' ``verify`` from MLflow's tracking TLS variables; both set at once is an error."""
    insecure = MLFLOW_TRACKING_INSECURE_TLS.get(environ)
    ca_path = MLFLOW_TRACKING_SERVER_CERT_PATH.get(environ)
    if insecure and ca_path:
        raise ValueError(
            "MLFLOW_TRACKING_INSECURE_TLS and MLFLOW_TRACKING_SERVER_CERT_PATH cannot both be set: "
            "either trust a CA bundle or turn verification off"
        )
    if insecure:
        return False
    return ca_path or True


def s3_tls_verify(environ: Environ | None = None) -> bool | str | None:
    """boto's ``verify`` as MLflow sets it: False when ignoring TLS, else the CA bundle or the default.

    ``MLFLOW_S3_IGNORE_TLS=true`` together with ``AWS_CA_BUNDLE`` is contradictory and refused.
    """
    ignore = MLFLOW_S3_IGNORE_TLS.get(environ)
    bundle = AWS_CA_BUNDLE.get(environ)
    if ignore and bundle:
        raise ValueError(
            "MLFLOW_S3_IGNORE_TLS=true and AWS_CA_BUNDLE are both set: either verify against the CA "
            "bundle or turn verification off, not both"
        )
    if ignore:
        return False
    return bundle or None


def transfer_timeout(default: float | None, environ: Environ | None = None) -> float | None:
    """``MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT`` in seconds (``-1`` -> no timeout), else ``default``."""
    value = MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT.get(environ)
    if value is None:
        return default
    return None if value == -1 else float(value)
