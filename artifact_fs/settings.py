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
import sys
from collections.abc import Callable, Iterator, Mapping
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
    """One environment variable: name, default, parser and what it is for.

    ``secret`` variables (passwords, tokens) never have their value repeated in an error message.
    """

    name: str
    default: T
    parser: Callable[[str], T]
    doc: str = ""
    secret: bool = False

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
            shown = "(not shown: it holds credentials)" if self.secret else repr(raw)
            raise ValueError(f"Invalid value {shown} for environment variable {self.name}: {exc}") from exc


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
MLFLOW_REGISTRY_URI = string(
    "MLFLOW_REGISTRY_URI", None, "Where models:/<name>/... URIs resolve (default: the tracking URI)."
)
MLFLOW_WORKSPACE = string(
    "MLFLOW_WORKSPACE", None, "Workspace of runs:/ and models:/ lookups (sent as X-MLFLOW-WORKSPACE)."
)
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


def _parse_checksum_when(text: str) -> str:
    if text not in {"when_supported", "when_required"}:
        raise ValueError("expected when_supported or when_required")
    return text


AWS_REQUEST_CHECKSUM_CALCULATION = Setting(
    "AWS_REQUEST_CHECKSUM_CALCULATION",
    None,  # type: ignore[arg-type]
    _parse_checksum_when,
    "S3 flexible checksums on uploads: botocore's when_supported on AWS, when_required elsewhere "
    "(parts then carry Content-MD5); when_supported makes parts carry CRC32C on any store.",
)
AWS_RESPONSE_CHECKSUM_VALIDATION = Setting(
    "AWS_RESPONSE_CHECKSUM_VALIDATION",
    None,  # type: ignore[arg-type]
    _parse_checksum_when,
    "botocore's checking of S3's flexible checksums on downloads: when_supported on AWS, "
    "when_required elsewhere.",
)
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
GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT = boolean(
    "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT",
    False,
    "gcsfs's experimental zonal/HNS bucket support; artifact_fs sets it to false unless it is set.",
)
HOME = string("HOME", None, "Home directory: ~/.mlflow/credentials and ~/.ssh/config are read from it.")

# botocore's credential chain: the S3 backend keys its cached filesystems on these (never logged).
AWS_ACCESS_KEY_ID = string("AWS_ACCESS_KEY_ID", None, "S3 access key (botocore's credential chain).")
AWS_SECRET_ACCESS_KEY = string("AWS_SECRET_ACCESS_KEY", None, "S3 secret key (botocore's credential chain).")
AWS_SESSION_TOKEN = string("AWS_SESSION_TOKEN", None, "Temporary S3 credentials' session token.")
AWS_SECURITY_TOKEN = string("AWS_SECURITY_TOKEN", None, "Older name of AWS_SESSION_TOKEN.")
AWS_DEFAULT_PROFILE = string("AWS_DEFAULT_PROFILE", None, "Older name of AWS_PROFILE.")
AWS_SHARED_CREDENTIALS_FILE = string(
    "AWS_SHARED_CREDENTIALS_FILE", None, "Credentials file instead of ~/.aws/credentials."
)
AWS_CONFIG_FILE = string("AWS_CONFIG_FILE", None, "Config file instead of ~/.aws/config.")
AWS_ROLE_ARN = string("AWS_ROLE_ARN", None, "Role assumed with a web identity token.")
AWS_WEB_IDENTITY_TOKEN_FILE = string(
    "AWS_WEB_IDENTITY_TOKEN_FILE", None, "Web identity token file (EKS, GitHub Actions OIDC)."
)
AWS_CREDENTIAL_SETTINGS: tuple[Setting[str | None], ...] = (
    AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY,
    AWS_SESSION_TOKEN,
    AWS_SECURITY_TOKEN,
    AWS_PROFILE,
    AWS_DEFAULT_PROFILE,
    AWS_SHARED_CREDENTIALS_FILE,
    AWS_CONFIG_FILE,
    AWS_ROLE_ARN,
    AWS_WEB_IDENTITY_TOKEN_FILE,
)
"""What botocore reads to find credentials, so a change of any of them means other credentials."""


# -- 2. artifact_fs's own variables (ARTIFACT_FS_*), where MLflow has none ------------------------------
def parse_user_password(entry: str) -> tuple[str, str]:
    """One ``user:password`` entry (the password may hold ``:``); ``ValueError`` without echoing it."""
    user, sep, password = entry.strip().partition(":")
    if not sep or not user or not password:
        raise ValueError("expected user:password")
    return user, password


def _parse_users(text: str) -> dict[str, str]:
    users: dict[str, str] = {}
    for number, entry in enumerate(text.split(","), 1):
        if not entry.strip():
            continue
        try:
            user, password = parse_user_password(entry)
        except ValueError:
            raise ValueError(f"entry {number} is not user:password (expected user:pw,user2:pw2)") from None
        users[user] = password
    return users


ARTIFACT_FS_FTP_TLS = boolean(
    "ARTIFACT_FS_FTP_TLS", False, "FTP: use explicit TLS (AUTH TLS, PROT P) on control and data."
)
ARTIFACT_FS_FTP_TLS_CA_FILE = string(
    "ARTIFACT_FS_FTP_TLS_CA_FILE", None, "FTPS: PEM file of CAs that sign the server certificate."
)
ARTIFACT_FS_FTP_TLS_VERIFY = boolean(
    "ARTIFACT_FS_FTP_TLS_VERIFY", True, "FTPS: verify the server certificate and host name."
)
ARTIFACT_FS_SFTP_KNOWN_HOSTS = string(
    "ARTIFACT_FS_SFTP_KNOWN_HOSTS", None, "SFTP: known_hosts file to check host keys against."
)
ARTIFACT_FS_SFTP_CHECK_HOST_KEY = boolean(
    "ARTIFACT_FS_SFTP_CHECK_HOST_KEY", True, "SFTP: false turns host-key checking off (unsafe)."
)
ARTIFACT_FS_SFTP_CONFIG = string(
    "ARTIFACT_FS_SFTP_CONFIG", None, "SFTP: OpenSSH client config file instead of ~/.ssh/config."
)
ARTIFACT_FS_SERVER_USERS: Setting[dict[str, str]] = Setting(
    "ARTIFACT_FS_SERVER_USERS",
    {},
    _parse_users,
    "Server: basic-auth users as user:password,user2:password2.",
    secret=True,
)
ARTIFACT_FS_SERVER_USERS_FILE = string(
    "ARTIFACT_FS_SERVER_USERS_FILE", None, "Server: file of user:password or user:pbkdf2_sha256$... lines."
)
ARTIFACT_FS_SERVER_TOKENS: Setting[list[str]] = Setting(
    "ARTIFACT_FS_SERVER_TOKENS",
    [],
    parse_comma_list,
    "Server: accepted bearer tokens, comma-separated.",
    secret=True,
)
ARTIFACT_FS_SERVER_TOKENS_FILE = string(
    "ARTIFACT_FS_SERVER_TOKENS_FILE", None, "Server: file of accepted bearer tokens, one per line."
)


class _EverySetting:
    """Every :class:`Setting` defined in this module, found when iterated (so blocks below count too)."""

    def __iter__(self) -> Iterator[Setting[Any]]:
        return iter([value for value in list(globals().values()) if isinstance(value, Setting)])

    def __len__(self) -> int:
        return len(list(iter(self)))


ALL = _EverySetting()
"""Every setting, for documentation and validation (``validate_environment``)."""


def validate_environment(environ: Environ | None = None) -> None:
    """Parse every set variable now, so a bad value fails at start-up, not mid-transfer.

    Raises one ``ValueError`` whose message is one line: each bad variable, its value (unless it holds
    credentials) and what is expected, joined by ``; ``. Pairs MLflow refuses together count too.
    """
    env = _environ(environ)
    problems: dict[str, None] = {}
    checks: list[Callable[[Environ], object]] = [setting.get for setting in ALL]
    for check in (*checks, http_tls_verify, s3_tls_verify):
        try:
            check(env)
        except ValueError as exc:
            problems[" ".join(str(exc).split())] = None  # one line, each problem once
    if problems:
        raise ValueError("; ".join(problems))


def exit_if_environment_is_invalid(program: str, environ: Environ | None = None, status: int = 2) -> None:
    """For command-line entry points: a bad variable is one line on stderr and exit ``status``.

    Call it first, before any work, e.g. ``settings.exit_if_environment_is_invalid("artifact-fs")``.
    """
    try:
        validate_environment(environ)
    except ValueError as exc:
        print(f"{program}: error: {exc}", file=sys.stderr)
        raise SystemExit(status) from None


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


# -- HDFS (backends/hdfs): the engine choice, and what libhdfs and hdfs-native read ------------------
HDFS_ENGINES = ("auto", "hdfs-native", "pyarrow")


def _parse_hdfs_engine(text: str) -> str:
    if text not in HDFS_ENGINES:
        raise ValueError(f"expected one of {HDFS_ENGINES}")
    return text


ARTIFACT_FS_HDFS_ENGINE = Setting(
    "ARTIFACT_FS_HDFS_ENGINE", "auto", _parse_hdfs_engine, "HDFS engine: auto, pyarrow or hdfs-native."
)
HADOOP_CONF_DIR = string("HADOOP_CONF_DIR", None, "Hadoop configuration directory (core-site.xml).")
HADOOP_HOME = string("HADOOP_HOME", None, "Hadoop installation: etc/hadoop, lib/native, bin/hadoop.")
HADOOP_USER_NAME = string("HADOOP_USER_NAME", None, "HDFS user under simple authentication.")
ARROW_LIBHDFS_DIR = string("ARROW_LIBHDFS_DIR", None, "Directory holding libhdfs.so for pyarrow.")
JAVA_HOME = string("JAVA_HOME", None, "JDK whose libjvm.so libhdfs loads.")
CLASSPATH = string("CLASSPATH", None, "Hadoop's client jars for libhdfs's JVM.")
PATH = string("PATH", None, "Where the 'hadoop' command is looked up.")


# -- HDFS Kerberos (backends/hdfs/kerberos.py): what the Kerberos libraries and libhdfs's JVM read -----
KRB5CCNAME = string("KRB5CCNAME", None, "Default Kerberos ticket cache (else /tmp/krb5cc_UID).")
KRB5_CONFIG = string("KRB5_CONFIG", None, "Kerberos configuration file (krb5.conf).")
LIBHDFS_OPTS = string("LIBHDFS_OPTS", None, "Options of the JVM libhdfs starts.")


# -- Integrity (artifact_fs/integrity.py, issue #18) -------------------------------------------------
ARTIFACT_FS_DIGESTS = boolean(
    "ARTIFACT_FS_DIGESTS",
    True,
    "Record a SHA-256 digest of every artifact at upload and check whole-file reads against it.",
)
