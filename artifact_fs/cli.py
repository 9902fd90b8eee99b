"""The ``artifact-fs`` command: MLflow's artifact operations on any artifact URI.

Exit codes: 0 success; 1 the operation failed (one line on stderr naming the redacted URI);
2 bad usage or bad input (an invalid URI, artifact path or option).
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, TypeVar

import click

import artifact_fs
from artifact_fs import backends, progress, settings, uris
from artifact_fs.store import ArtifactStore, FileInfo

F = TypeVar("F", bound=Callable[..., Any])

STREAM_CHUNK_SIZE = 1024 * 1024
"""Bytes per read when ``cat`` streams an artifact (MLflow's ARTIFACT_STREAM_CHUNK_SIZE)."""
MESSAGE_LIMIT = 2000


class ArtifactFsGroup(click.Group):
    """The command group; ``serve`` is loaded only when asked for, from the server package.

    ``artifact-fs --help`` and every other command keep working when the server's optional
    dependencies (or the server package itself) are missing; ``serve`` then explains what to install.
    """

    LAZY = {
        "serve": ("artifact_fs.server.cli", "serve", "Run the MLflow-compatible artifact server."),
        "gc": ("artifact_fs.gc.command", "gc", "Permanently delete what MLflow marked deleted."),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *sorted(self.LAZY)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.LAZY:
            return super().get_command(ctx, cmd_name)
        module_name, attribute, summary = self.LAZY[cmd_name]
        try:
            module = __import__(module_name, fromlist=[attribute])
            command = getattr(module, attribute)
        except Exception as exc:  # noqa: BLE001 - a broken optional command must not break --help
            return _unavailable(cmd_name, summary, exc)
        if not isinstance(command, click.Command):
            return _unavailable(cmd_name, summary, TypeError(f"{module_name}.{attribute} is not a command"))
        return command


def _unavailable(name: str, summary: str, reason: BaseException) -> click.Command:
    missing = getattr(reason, "name", None)
    if isinstance(reason, ModuleNotFoundError) and missing and not missing.startswith("artifact_fs"):
        hint = f"it needs the package {missing!r}: pip install 'artifact-fs[server]'"
    elif isinstance(reason, ModuleNotFoundError):
        hint = "this installation of artifact-fs does not include it"
    else:
        hint = f"it failed to load ({type(reason).__name__}: {reason})"
    help_text = f"{summary} (unavailable: {hint})"

    def refuse() -> None:
        raise click.UsageError(f"the {name!r} command is unavailable: {hint}")

    return click.Command(name, callback=refuse, help=help_text, short_help=help_text)


def _describe(exc: BaseException) -> str:
    """One line for an error: ``OSError``s without their ``[Errno N]`` prefix."""
    text = str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror if exc.filename is None else f"{exc.strerror}: {exc.filename!r}"
    return " ".join(text.split()) or type(exc).__name__


def _fail(uri: str, exc: BaseException) -> NoReturn:
    message = _describe(exc)
    if len(message) > MESSAGE_LIMIT:
        message = message[: MESSAGE_LIMIT - 3] + "..."
    click.echo(f"artifact-fs: error: {uris.redact(uri)}: {type(exc).__name__}: {message}", err=True)
    sys.exit(1)


def reports_errors(function: F) -> F:
    """Turn errors into the CLI's exit codes: ``ValueError`` is bad input (2), ``OSError`` failure (1)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        uri = str(kwargs.get("uri", ""))
        try:
            result = function(*args, **kwargs)
            sys.stdout.flush()  # a reader that went away is found here, not at interpreter exit
            return result
        except click.exceptions.Exit:
            raise
        except click.ClickException:
            raise
        except BrokenPipeError:
            _end_quietly_on_closed_pipe()
        except ValueError as exc:  # includes InvalidArtifactPathError (also a PermissionError)
            raise click.UsageError(f"{uris.redact(uri)}: {_describe(exc)}") from exc
        except (OSError, ImportError) as exc:
            _fail(uri, exc)

    return wrapper  # type: ignore[return-value]


def _end_quietly_on_closed_pipe() -> NoReturn:
    """``artifact-fs ls ... | head``: the reader left; stop as a command killed by SIGPIPE does."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # so the final flush at exit cannot fail again
    sys.exit(128 + signal.SIGPIPE)


def _parse_option(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, Any]:
    """``-o key=value`` pairs; values that parse as JSON (``true``, ``3``, ``{...}``) are typed."""
    result: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not of the form key=value (e.g. -o anon=true)")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        result[key.strip()] = value
    return result


def storage_options(function: F) -> F:
    return click.option(
        "-o",
        "--option",
        "options",
        multiple=True,
        callback=_parse_option,
        metavar="KEY=VALUE",
        help="Storage option for the backend (repeatable); wins over MLflow's environment variables.",
    )(function)


def _store(uri: str, options: dict[str, Any]) -> ArtifactStore:
    """The store for ``uri``; ``-o`` names the backend does not take are refused, the valid ones listed."""
    if options:
        backend = uris.parse(uri).backend
        valid = backends.option_names(backend)
        unknown = sorted(set(options) - valid) if valid else []
        if unknown:
            raise click.UsageError(
                f"unknown storage option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for the "
                f"{backend} backend; valid options: {', '.join(sorted(valid))}"
            )
    return ArtifactStore(uri, **options)


@click.group(cls=ArtifactFsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(artifact_fs.__version__, "-V", "--version", prog_name="artifact-fs")
def main() -> None:
    """Read and write MLflow artifacts on any store MLflow supports.

    URIs are MLflow artifact URIs: s3://bucket/path, gs://bucket/path,
    wasbs://container@account.blob.core.windows.net/path, abfss://..., ftp://, sftp://,
    hdfs://, http(s)://host/api/2.0/mlflow-artifacts/artifacts/..., mlflow-artifacts:/...,
    runs:/<run_id>/..., models:/<model_id>, models:/<name>/<version>, models:/<name>@<alias>,
    or a local path. Configuration comes from MLflow's environment variables
    (MLFLOW_S3_ENDPOINT_URL, AZURE_STORAGE_CONNECTION_STRING, ...) and -o options.

    \b
    Examples:
      artifact-fs log ./model s3://bucket/0/abc/artifacts --artifact-path model
      artifact-fs ls s3://bucket/0/abc/artifacts --recursive
      artifact-fs download s3://bucket/0/abc/artifacts model --dst ./out
      artifact-fs cat s3://bucket/0/abc/artifacts model/MLmodel
      artifact-fs rm s3://bucket/0/abc/artifacts model/old.pkl
    """
    settings.exit_if_environment_is_invalid("artifact-fs")  # one clear line before any work


def _walk(store: ArtifactStore, path: str, recursive: bool) -> Iterator[FileInfo]:
    for info in store.list_artifacts(path):
        yield info
        if recursive and info.is_dir:
            yield from _walk(store, info.path, recursive)


@main.command("ls")
@click.argument("uri")
@click.argument("artifact_path", required=False, default="")
@click.option("-r", "--recursive", is_flag=True, help="List every level below, not only direct children.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of {path, is_dir, file_size}.")
@storage_options
@reports_errors
def list_command(
    uri: str, artifact_path: str, recursive: bool, as_json: bool, options: dict[str, Any]
) -> None:
    """List artifacts under URI (optionally under ARTIFACT_PATH inside it).

    Paths are relative to URI; directories end with '/'. A file or a missing path lists nothing.

    \b
    Examples:
      artifact-fs ls ./mlartifacts/0/abc/artifacts
      artifact-fs ls s3://bucket/0/abc/artifacts model -r --json
    """
    store = _store(uri, options)
    infos = _walk(store, artifact_path, recursive)
    if as_json:
        click.echo(json.dumps([info.to_dict() for info in infos]))
        return
    for info in infos:
        if info.is_dir:
            click.echo(f"{'-':>12}  {info.path}/")
        else:
            size = "" if info.file_size is None else str(info.file_size)
            click.echo(f"{size:>12}  {info.path}")


@main.command("log")
@click.argument("local_path", type=click.Path(exists=True))
@click.argument("uri")
@click.option("-p", "--artifact-path", default=None, help="Directory inside URI to log under.")
@storage_options
@reports_errors
def log_command(local_path: str, uri: str, artifact_path: str | None, options: dict[str, Any]) -> None:
    """Upload LOCAL_PATH to URI: a file by its name, a directory's contents (MLflow's log_artifacts).

    \b
    Examples:
      artifact-fs log model.pkl s3://bucket/0/abc/artifacts -p model
      artifact-fs log ./outputs s3://bucket/0/abc/artifacts
    """
    store = _store(uri, options)
    with progress.progress_bar("upload") as bar:
        if os.path.isdir(local_path):
            store.log_artifacts(local_path, artifact_path, callback=bar)
        else:
            store.log_artifact(local_path, artifact_path, callback=bar)


@main.command("download")
@click.argument("uri")
@click.argument("artifact_path", required=False, default="")
@click.option(
    "-d",
    "--dst",
    "dst",
    type=click.Path(file_okay=False),
    default=None,
    help="Existing local directory to download into (default: a new temporary directory).",
)
@storage_options
@reports_errors
def download_command(uri: str, artifact_path: str, dst: str | None, options: dict[str, Any]) -> None:
    """Download ARTIFACT_PATH (default: everything) from URI; print the local path.

    \b
    Examples:
      artifact-fs download s3://bucket/0/abc/artifacts --dst ./out
      artifact-fs download s3://bucket/0/abc/artifacts model/MLmodel --dst .
    """
    store = _store(uri, options)
    with progress.progress_bar("download") as bar:
        local = store.download_artifacts(artifact_path or None, dst, callback=bar)
    click.echo(local)


@main.command("rm")
@click.argument("uri")
@click.argument("artifact_path", required=False, default="")
@click.option("-y", "--yes", is_flag=True, help="Confirm deleting everything under URI (no ARTIFACT_PATH).")
@storage_options
@reports_errors
def remove_command(uri: str, artifact_path: str, yes: bool, options: dict[str, Any]) -> None:
    """Delete ARTIFACT_PATH (a file or a directory, recursively) under URI.

    Without ARTIFACT_PATH the whole root is deleted, which needs --yes. A missing path is not
    an error (as MLflow's delete_artifacts).

    \b
    Examples:
      artifact-fs rm s3://bucket/0/abc/artifacts model/old.pkl
      artifact-fs rm s3://bucket/0/abc/artifacts --yes
    """
    if not artifact_path and not yes:
        raise click.UsageError(f"this deletes every artifact under {uris.redact(uri)}; add --yes to confirm")
    store = _store(uri, options)
    store.delete_artifacts(artifact_path or None)


@main.command("cat")
@click.argument("uri")
@click.argument("artifact_path")
@storage_options
@reports_errors
def cat_command(uri: str, artifact_path: str, options: dict[str, Any]) -> None:
    """Write the bytes of the artifact ARTIFACT_PATH under URI to stdout.

    \b
    Example:
      artifact-fs cat s3://bucket/0/abc/artifacts model/MLmodel
    """
    store = _store(uri, options)
    store.file_info(artifact_path)  # a directory or a missing file is an error on every backend
    with store.open(artifact_path, "rb") as source:
        while chunk := source.read(STREAM_CHUNK_SIZE):
            click.echo(chunk, nl=False)  # bytes go to the binary stdout, also under CliRunner


if __name__ == "__main__":  # pragma: no cover
    main()
