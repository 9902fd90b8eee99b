"""SFTP options from URIs and the environment: host-key policy, ssh config, password warning."""

from __future__ import annotations

import errno
import warnings
from pathlib import Path

import asyncssh
import pytest

from artifact_fs import errors, uris
from artifact_fs.backends import sftp, sftp_timeouts


def options_for(uri: str, environ: dict[str, str] | None = None, **overrides: object) -> sftp.SFTPOptions:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sftp.PasswordInURIWarning)
        return sftp.options(
            uris.parse(uri), environ if environ is not None else {"HOME": "/nonexistent"}, **overrides
        )


def test_host_defaults_to_localhost_and_port_and_user_are_left_to_ssh_config() -> None:
    options = options_for("sftp:///tmp/artifacts")
    assert options["host"] == "localhost"
    assert "port" not in options and "username" not in options
    assert sftp.fs_path(uris.parse("sftp://h"), options) == "/"


def test_uri_user_and_port_are_used() -> None:
    options = options_for("sftp://alice@example.com:2222/data")
    assert (options["username"], options["port"]) == ("alice", 2222)
    assert sftp.fs_path(uris.parse("sftp://alice@example.com:2222/data"), options) == "/data"


def test_a_password_in_the_uri_warns_without_revealing_it() -> None:
    with pytest.warns(sftp.PasswordInURIWarning) as caught:
        options = sftp.options(uris.parse("sftp://bob:s%40cret@example.com/x"), {"HOME": "/nonexistent"})
    assert options["password"] == "s@cret"  # percent-decoded
    assert "cret" not in str(caught[0].message)


def test_an_explicit_password_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sftp.options(uris.parse("sftp://bob@example.com/x"), {"HOME": "/nonexistent"}, password="p")


def test_host_keys_are_checked_by_default_against_asyncssh_defaults() -> None:
    arguments = sftp.connect_arguments(options_for("sftp://example.com/x"))
    assert arguments["known_hosts"] == ()  # ~/.ssh/known_hosts or the config's UserKnownHostsFile


def test_known_hosts_from_the_environment(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("")
    options = options_for("sftp://example.com/x", {"ARTIFACT_FS_SFTP_KNOWN_HOSTS": str(known), "HOME": "/x"})
    assert sftp.connect_arguments(options)["known_hosts"] == str(known)


def test_a_missing_known_hosts_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ssh-keyscan"):
        sftp.connect_arguments(options_for("sftp://example.com/x", known_hosts=str(tmp_path / "none")))


def test_the_opt_out_turns_checking_off() -> None:
    options = options_for("sftp://example.com/x", {"ARTIFACT_FS_SFTP_CHECK_HOST_KEY": "false", "HOME": "/x"})
    assert sftp.connect_arguments(options)["known_hosts"] is None


def test_opting_out_while_naming_a_known_hosts_file_is_contradictory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="contradict"):
        sftp.connect_arguments(options_for("sftp://h/x", check_host_key=False, known_hosts=str(tmp_path)))


def test_the_users_ssh_config_is_read_from_the_given_home(tmp_path: Path) -> None:
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text("Host alias\n  HostName 127.0.0.1\n")
    options = options_for("sftp://alias/x", {"HOME": str(tmp_path)})
    assert sftp.connect_arguments(options)["config"] == [str(tmp_path / ".ssh" / "config")]


def test_an_explicit_ssh_config_must_exist(tmp_path: Path) -> None:
    options = options_for("sftp://h/x", {"ARTIFACT_FS_SFTP_CONFIG": str(tmp_path / "nope"), "HOME": "/x"})
    with pytest.raises(ValueError, match="does not exist"):
        sftp.connect_arguments(options)


def test_the_connect_timeout_comes_from_the_transfer_policy_and_an_explicit_one_wins() -> None:
    from artifact_fs.policy import TransferPolicy

    assert options_for("sftp://h/x")["connect_timeout"] == TransferPolicy().connect_timeout
    assert options_for("sftp://h/x", policy=TransferPolicy(connect_timeout=4.0))["connect_timeout"] == 4.0
    assert options_for("sftp://h/x", connect_timeout=9.0)["connect_timeout"] == 9.0


def test_no_transfer_timeout_by_default_as_with_mlflows_pysftp() -> None:
    assert options_for("sftp://h/x")["transfer_timeout"] is None
    assert sftp_timeouts.keepalive_arguments(None) == {}


def test_the_transfer_timeout_comes_from_mlflows_variable() -> None:
    environ = {"HOME": "/nonexistent", "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "60"}
    assert options_for("sftp://h/x", environ)["transfer_timeout"] == 60
    environ["MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT"] = "-1"
    assert options_for("sftp://h/x", environ)["transfer_timeout"] is None
    assert options_for("sftp://h/x", environ, transfer_timeout=5)["transfer_timeout"] == 5


def test_keepalives_give_up_after_the_transfer_timeout_of_silence() -> None:
    arguments = sftp_timeouts.keepalive_arguments(60)
    interval, probes = arguments["keepalive_interval"], arguments["keepalive_count_max"]
    assert (probes + 1) * interval == pytest.approx(60)  # asyncssh drops the connection then
    assert interval < 60  # so data arriving within the timeout always restarts the wait


def test_a_stall_error_is_a_builtin_timeout_naming_path_and_variable() -> None:
    error = sftp_timeouts.stall_error("read", "/a/b.bin", "example.com", 30)
    assert type(error) is TimeoutError and error.errno == errno.ETIMEDOUT
    assert error.filename == "/a/b.bin"
    assert "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT" in str(error) and "30" in str(error)


def test_only_a_keepalive_drop_counts_as_a_stall() -> None:
    watch = sftp_timeouts.ConnectionWatch()
    assert not watch.stalled
    watch.connection_lost(asyncssh.ConnectionLost("Connection lost"))
    assert not watch.stalled
    watch.connection_lost(asyncssh.ConnectionLost("Server not responding to keepalive"))
    assert watch.stalled


def test_fsspec_timeout_wrapper_is_unwrapped_to_the_loops_timeout_error() -> None:
    from fsspec.exceptions import FSTimeoutError

    stalled = sftp_timeouts.stall_error("write", "/x", "h", 1)

    def hidden() -> None:
        raise FSTimeoutError from stalled

    with pytest.raises(TimeoutError) as caught:
        errors.reporting_timeouts(hidden)()
    assert caught.value is stalled

    def fsspecs_own() -> None:
        raise FSTimeoutError("sync(timeout=...) expired")

    with pytest.raises(FSTimeoutError):
        errors.reporting_timeouts(fsspecs_own)()
