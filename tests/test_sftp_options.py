"""SFTP options from URIs and the environment: host-key policy, ssh config, password warning."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from artifact_fs import uris
from artifact_fs.backends import sftp


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
