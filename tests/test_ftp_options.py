"""FTP options from URIs and the environment: MLflow's defaults, decoding, TLS checks, reply codes."""

from __future__ import annotations

import ftplib
import ssl

import pytest

from artifact_fs import errors, uris
from artifact_fs.backends import ftp
from artifact_fs.policy import TransferPolicy


def options_for(uri: str, environ: dict[str, str] | None = None, **overrides: object) -> ftp.FTPOptions:
    return ftp.options(uris.parse(uri), environ or {}, **overrides)


def test_mlflow_defaults_host_port_and_path() -> None:
    options = options_for("ftp:///")
    assert (options["host"], options["port"]) == ("localhost", 21)
    assert ftp.fs_path(uris.parse("ftp://example.com"), options) == "/"


def test_no_user_is_anonymous() -> None:
    options = options_for("ftp://example.com/artifacts")
    assert options["username"] is None and options["password"] is None


def test_user_and_password_are_percent_decoded() -> None:
    options = options_for("ftp://us%40er:p%40ss%3Aw%2Fd%25@example.com:2121/a")
    assert options["username"] == "us@er"
    assert options["password"] == "p@ss:w/d%"
    assert options["port"] == 2121


def test_the_path_is_kept_as_written() -> None:
    uri = uris.parse("ftp://example.com/runs/with%20space/")
    assert ftp.fs_path(uri, options_for(str(uri))) == "/runs/with%20space"


def test_passive_mode_and_no_tls_by_default() -> None:
    options = options_for("ftp://example.com/a")
    assert options["passive"] is True
    assert options["tls"] is False
    assert options["tls_verify"] is True


def test_tls_settings_from_the_environment() -> None:
    environ = {"ARTIFACT_FS_FTP_TLS": "true", "ARTIFACT_FS_FTP_TLS_CA_FILE": "/ca.pem"}
    options = options_for("ftp://example.com/a", environ)
    assert options["tls"] is True and options["ca_file"] == "/ca.pem"
    options = options_for("ftp://example.com/a", {**environ, "ARTIFACT_FS_FTP_TLS_VERIFY": "false"})
    assert options["tls_verify"] is False


def test_explicit_options_win_over_the_environment() -> None:
    options = options_for("ftp://u:p@example.com/a", {"ARTIFACT_FS_FTP_TLS": "true"}, tls=False, password="x")
    assert options["tls"] is False and options["password"] == "x"


def test_bad_tls_variable_names_the_variable() -> None:
    with pytest.raises(ValueError, match="ARTIFACT_FS_FTP_TLS"):
        options_for("ftp://example.com/a", {"ARTIFACT_FS_FTP_TLS": "yes"})


def test_implicit_tls_protocol_names_are_refused() -> None:
    with pytest.raises(ValueError, match="explicit FTPS"):
        options_for("ftp://example.com/a", tls="tlsv1_2")


def test_a_ca_file_without_tls_is_refused() -> None:
    with pytest.raises(ValueError, match="TLS is off"):
        options_for("ftp://example.com/a", ca_file="/ca.pem")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ftplib.error_perm("530 Authentication failed."), PermissionError),
        (ftplib.error_perm("550 No such file or directory."), FileNotFoundError),
        (ftplib.error_perm("550 File exists."), FileExistsError),
        (ftplib.error_perm("550 Not enough privileges."), PermissionError),
        (ftplib.error_perm("550 SSL/TLS required on the control channel."), PermissionError),
        (ftplib.error_temp("421 Too many connections."), ConnectionError),
        (EOFError(), ConnectionError),
        (ConnectionRefusedError(111, "Connection refused"), ConnectionRefusedError),
    ],
)
def test_ftp_replies_become_builtin_errors(error: BaseException, expected: type[OSError]) -> None:
    translated = errors.translate(error, "/a/b", action="FTP read")
    assert type(translated) is expected
    assert translated.__cause__ is error
    assert "FTP read '/a/b' failed" in str(translated)


def test_a_directory_that_is_not_empty_is_enotempty() -> None:
    import errno

    translated = errors.translate(ftplib.error_perm("550 Directory not empty."), "/d", action="FTP rmdir")
    assert translated.errno == errno.ENOTEMPTY


def test_an_untrusted_certificate_says_how_to_fix_it() -> None:
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_message = "self-signed certificate"
    translated = errors.translate(error, "h:21", action="FTP login to")
    assert isinstance(translated, PermissionError)
    assert "ca_file" in str(translated) and "tls_verify=False" in str(translated)
    assert not errors.is_retryable(translated)


def test_translating_turns_a_certificate_failure_into_permission_error() -> None:
    """``SSLCertVerificationError`` is a ``ValueError`` too; the table's row wins over the pass-through."""
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_message = "self-signed certificate"
    with pytest.raises(PermissionError, match="certificate is not trusted"), errors.translating("h:21"):
        raise error


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        *((ftplib.error_temp(f"{code} try later"), True) for code in sorted(errors.FTP_TRANSIENT_REPLIES)),
        (ftplib.error_perm("530 Login incorrect."), False),
        (ftplib.error_perm("550 No such file."), False),
        (ftplib.error_perm("553 File name not allowed."), False),
        (EOFError(), True),
    ],
)
def test_transient_replies_are_retryable_and_permanent_ones_are_not(
    error: BaseException, retryable: bool
) -> None:
    assert errors.is_retryable(errors.translate(error, "/a", action="FTP read")) is retryable


def test_a_dropped_connection_is_a_retryable_connection_error() -> None:
    translated = errors.translate(EOFError(), "/a", action="FTP list")
    assert isinstance(translated, ConnectionError)
    assert "closed the connection" in str(translated)


TRANSFER_TIMEOUT = "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT"


def test_timeouts_come_from_the_transfer_policy() -> None:
    options = options_for("ftp://example.com/a", {TRANSFER_TIMEOUT: "7"})
    assert options["timeout"] == 7.0
    assert options["connect_timeout"] == TransferPolicy().connect_timeout
    assert options_for("ftp://example.com/a", {TRANSFER_TIMEOUT: "-1"})["timeout"] is None
    assert options_for("ftp://example.com/a")["timeout"] == ftp.DEFAULT_TIMEOUT
    policy = TransferPolicy(connect_timeout=3.0)
    assert options_for("ftp://example.com/a", policy=policy)["connect_timeout"] == 3.0


def test_an_explicit_timeout_wins_and_bounds_connecting_too() -> None:
    options = options_for("ftp://example.com/a", {TRANSFER_TIMEOUT: "7"}, timeout=2.5)
    assert options["timeout"] == options["connect_timeout"] == 2.5


def test_a_non_positive_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="positive number of seconds"):
        options_for("ftp://example.com/a", connect_timeout=0)
