"""FTP options from URIs and the environment: MLflow's defaults, decoding, TLS checks, reply codes."""

from __future__ import annotations

import ftplib
import ssl

import pytest

from artifact_fs import uris
from artifact_fs.backends import ftp


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
    translated = ftp.translate(error, "read", "/a/b")
    assert type(translated) is expected
    assert translated.__cause__ is error
    assert "/a/b" in str(translated)


def test_a_directory_that_is_not_empty_is_enotempty() -> None:
    import errno

    translated = ftp.translate(ftplib.error_perm("550 Directory not empty."), "rmdir", "/d")
    assert translated.errno == errno.ENOTEMPTY


def test_an_untrusted_certificate_says_how_to_fix_it() -> None:
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_message = "self-signed certificate"
    translated = ftp.translate(error, "login to", "h:21")
    assert isinstance(translated, PermissionError)
    assert "ca_file" in str(translated) and "tls_verify=False" in str(translated)
