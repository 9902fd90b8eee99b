"""The ``artifact-fs`` command: MLflow's artifact operations on any artifact URI.

Exit codes: 0 success; 1 the operation failed (one line on stderr naming the redacted URI), or
``verify`` found a damaged, digest-less or unreadable file; 2 bad usage or bad input (an invalid URI,
artifact path or option).
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import click
from fsspec.callbacks import DEFAULT_CALLBACK
from tqdm import tqdm

import artifact_fs
from artifact_fs import backends, integrity, progress, settings, uris
from artifact_fs.store import ArtifactStore, FileInfo

F = TypeVar("F", bound=Callable[..., Any])

STREAM_CHUNK_SIZE = 1024 * 1024
"""Bytes per read when ``cat`` streams an artifact (MLflow's ARTIFACT_STREAM_CHUNK_SIZE)."""
MESSAGE_LIMIT = 2000
VERIFY_CHUNK_SIZE = 8 * 1024 * 1024
"""Bytes per read when ``verify`` re-reads a file: one request each on object stores, no read-ahead."""


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


def _walk(store: ArtifactStore, path: str, recursive: bool, *, digests: bool = False) -> Iterator[FileInfo]:
    for info in store.list_artifacts(path, digests=digests):
        yield info
        if recursive and info.is_dir:
            yield from _walk(store, info.path, recursive, digests=digests)


@main.command("ls")
@click.argument("uri")
@click.argument("artifact_path", required=False, default="")
@click.option("-r", "--recursive", is_flag=True, help="List every level below, not only direct children.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of {path, is_dir, file_size}.")
@click.option(
    "-l", "--long", "long_format", is_flag=True, help="Also show each file's recorded digest ('-' if none)."
)
@storage_options
@reports_errors
def list_command(
    *,
    uri: str,
    artifact_path: str,
    recursive: bool,
    as_json: bool,
    long_format: bool,
    options: dict[str, Any],
) -> None:
    """List artifacts under URI (optionally under ARTIFACT_PATH inside it).

    Paths are relative to URI; directories end with '/'. A file or a missing path lists nothing.
    --long adds each file's digest (RFC 9530, e.g. sha-256=:...:), one lookup per file where the
    store keeps digests apart from its listing.

    \b
    Examples:
      artifact-fs ls ./mlartifacts/0/abc/artifacts
      artifact-fs ls s3://bucket/0/abc/artifacts model -r --json
      artifact-fs ls s3://bucket/0/abc/artifacts -r --long
    """
    store = _store(uri, options)
    infos = _walk(store, artifact_path, recursive, digests=long_format)
    if as_json:
        click.echo(json.dumps([_listed(info, long_format) for info in infos]))
        return
    if long_format:
        listed = list(infos)
        width = max((len(info.digest or "-") for info in listed), default=1)
        for info in listed:
            digest = "-" if info.is_dir or not info.digest else info.digest
            click.echo(f"{_size_column(info)}  {digest:<{width}}  {info.path}{'/' if info.is_dir else ''}")
        return
    for info in infos:
        click.echo(f"{_size_column(info)}  {info.path}{'/' if info.is_dir else ''}")


def _size_column(info: FileInfo) -> str:
    size = "-" if info.is_dir else "" if info.file_size is None else str(info.file_size)
    return f"{size:>12}"


def _listed(info: FileInfo, long_format: bool) -> dict[str, Any]:
    """One ``ls --json`` entry: MLflow's keys; with ``--long`` each file's ``digest`` (or ``null``)."""
    entry = info.to_dict()
    entry.pop("digest", None)
    if long_format and not info.is_dir:
        entry["digest"] = info.digest
    return entry


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

    When the artifact has a recorded digest, the bytes are checked as they stream and the last
    chunk is written only if they match; otherwise the command fails (exit 1) naming the artifact.

    \b
    Example:
      artifact-fs cat s3://bucket/0/abc/artifacts model/MLmodel
    """
    store = _store(uri, options)
    store.file_info(artifact_path)  # a directory or a missing file is an error on every backend
    source, info = store.open_version(artifact_path)
    expected = integrity.Record.parse(info["digest"]).quick if info.get("digest") else None
    hasher = integrity.Hasher(expected.algorithm) if expected is not None else None
    with source:
        withheld = b""
        while chunk := source.read(STREAM_CHUNK_SIZE):
            click.echo(withheld, nl=False)  # bytes go to the binary stdout, also under CliRunner
            if hasher is not None:
                hasher.update(chunk)
            withheld = chunk
    if hasher is not None:
        integrity.check(artifact_path, expected, hasher.digest())
    click.echo(withheld, nl=False)


# -- verify ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    """What ``verify`` found for one file."""

    path: str
    status: str
    """``ok``, ``recorded`` (with ``--record``), ``damaged``, ``no-digest`` or ``unreadable``."""
    expected: integrity.Digest | None = None
    actual: integrity.Digest | None = None
    error: str | None = None

    STATUSES = ("ok", "recorded", "damaged", "no-digest", "unreadable")

    def line(self) -> str | None:
        """The line printed for a problem (``None`` for a file that checks)."""
        if self.status == "damaged":
            return f"DAMAGED {self.path}: expected {self.expected}, got {self.actual}"
        if self.status == "no-digest":
            return f"NO DIGEST {self.path}" + (f": {self.error}" if self.error else "")
        if self.status == "unreadable":
            return f"UNREADABLE {self.path}: {self.error}"
        return None


def _verify_file(store: ArtifactStore, path: str, record: bool, bar: progress.FileProgress) -> Verdict:
    """Re-read one file in full and compare it with its recorded digest (or record one)."""
    try:
        handle, info = store.open_version(path, block_size=VERIFY_CHUNK_SIZE, cache_type="none")
        with handle:
            recorded = integrity.Record.parse(info["digest"]) if info.get("digest") else None
            if recorded is None and not record:
                return Verdict(path, "no-digest")
            algorithms = [d.algorithm for d in recorded.digests] if recorded else integrity.RECORDED
            computed = integrity.read_digests(handle, algorithms, VERIFY_CHUNK_SIZE, bar.relative_update)
        actual = integrity.Record(tuple(computed.values()))
        if recorded is None:
            store.root.record_digest(path, actual)
            if store.root.recorded_digest(path) != actual:
                return Verdict(path, "no-digest", error="the store did not keep it (see the warning above)")
            return Verdict(path, "recorded", actual=actual.identity)
        for expected in recorded.digests:  # every recorded digest must hold, not only one
            got = actual.get(expected.algorithm)
            if got is not None and got.value != expected.value:
                return Verdict(path, "damaged", expected, got)
        return Verdict(path, "ok", recorded.identity, actual.identity)
    except integrity.DigestMismatchError as exc:  # a backend that checks whole reads itself
        return Verdict(path, "damaged", exc.expected, exc.actual)
    except Exception as exc:  # noqa: BLE001 - one file's failure is reported, the others still checked
        return Verdict(path, "unreadable", error=f"{type(exc).__name__}: {_describe(exc)}")
    finally:
        bar.finish()


def _files_to_verify(store: ArtifactStore, artifact_path: str) -> list[FileInfo]:
    """Every file under ARTIFACT_PATH; ARTIFACT_PATH itself when it names a file."""
    files = [info for info in store.walk(artifact_path) if not info.is_dir]
    if files or not artifact_path:
        return files
    try:
        info = store.file_info(artifact_path)
    except IsADirectoryError:
        return []  # an empty directory
    size = info.get("size")
    return [FileInfo(artifact_path, False, None if size is None else int(size))]


def _summary(verdicts: list[Verdict], total_bytes: int, record: bool) -> str:
    counts = {status: sum(v.status == status for v in verdicts) for status in Verdict.STATUSES}
    text = (
        f"verified {len(verdicts)} file{'s' if len(verdicts) != 1 else ''} ({total_bytes} bytes): "
        f"{counts['ok'] + counts['recorded']} ok, {counts['damaged']} damaged, "
        f"{counts['no-digest']} without a digest, {counts['unreadable']} unreadable"
    )
    recorded = counts["recorded"]
    return text + (f"; {recorded} digest{'s' if recorded != 1 else ''} recorded" if record else "")


def _report(verdicts: list[Verdict], total_bytes: int) -> dict[str, Any]:
    """``verify --json``: counts, and every file that did not check, by kind."""
    ordered = sorted(verdicts, key=lambda verdict: verdict.path)

    def paths(status: str) -> list[str]:
        return [v.path for v in ordered if v.status == status]

    return {
        "files": len(verdicts),
        "bytes": total_bytes,
        "ok": sum(v.status in {"ok", "recorded"} for v in verdicts),
        "recorded": paths("recorded"),
        "damaged": [
            {"path": v.path, "expected": str(v.expected), "actual": str(v.actual)}
            for v in ordered
            if v.status == "damaged"
        ],
        "no_digest": paths("no-digest"),
        "unreadable": [{"path": v.path, "error": v.error} for v in ordered if v.status == "unreadable"],
    }


@main.command("verify")
@click.argument("uri")
@click.argument("artifact_path", required=False, default="")
@click.option(
    "--record", is_flag=True, help="Record a digest for files that have none (they then count as ok)."
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object: counts and every file that failed."
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary line; problems only.")
@storage_options
@reports_errors
def verify_command(
    *, uri: str, artifact_path: str, record: bool, as_json: bool, quiet: bool, options: dict[str, Any]
) -> None:
    """Re-read every file under URI (or ARTIFACT_PATH) and check it against its recorded digest.

    One line per file that does not check: DAMAGED (its bytes differ from the digest recorded at
    upload), NO DIGEST (logged without one, e.g. by MLflow itself; --record adds it), UNREADABLE;
    then a summary. Files are read concurrently, in full. Exit status 0 when every file checks,
    1 when any is damaged, digest-less or unreadable (or the root cannot be listed), 2 bad usage.

    \b
    Examples:
      artifact-fs verify s3://bucket/0/abc/artifacts
      artifact-fs verify s3://bucket/0/abc/artifacts model --record
    """
    store = _store(uri, options)
    if not store.root.digests_enabled:
        raise click.UsageError("ARTIFACT_FS_DIGESTS=false turns digests off; unset it to verify")
    files = _files_to_verify(store, artifact_path)
    total_bytes = sum(info.file_size or 0 for info in files)
    verdicts: list[Verdict] = []
    callback = DEFAULT_CALLBACK if quiet else progress.progress_bar("verify")
    with callback, ThreadPoolExecutor(max_workers=store.max_workers, thread_name_prefix="verify") as pool:
        transfer = progress.TransferProgress(callback, total_bytes)
        futures = [
            pool.submit(_verify_file, store, info.path, record, transfer.for_file(info.file_size))
            for info in files
        ]
        try:
            for future in as_completed(futures):
                verdict = future.result()
                verdicts.append(verdict)
                line = verdict.line()
                if line is not None and not as_json:
                    with tqdm.external_write_mode():  # the line above the bar, never through it
                        click.echo(line)
        except BaseException:  # Ctrl-C or a closed pipe: stop after the files being read now
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    if as_json:
        click.echo(json.dumps(_report(verdicts, total_bytes)))
    elif not quiet:
        click.echo(_summary(verdicts, total_bytes, record))
    sys.stdout.flush()
    if any(verdict.status not in {"ok", "recorded"} for verdict in verdicts):
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
