"""``artifact-fs gc``: ``mlflow gc``'s options and meaning, on every store, safe to re-run.

Exit status: 0 when everything selected was collected (or, with ``--dry-run``, could be); 1 when any
resource failed or an explicitly named id was refused (all others are still collected); 2 bad usage.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import IO, Any

import click

from artifact_fs.gc.collector import Settings, collect, parse_age
from artifact_fs.gc.report import Report
from artifact_fs.policy import TransferPolicy


def _ids(value: str | None) -> list[str] | None:
    return [part.strip() for part in value.split(",") if part.strip()] if value else None


def _default_backend_store() -> str:
    """MLflow's default: ``./mlruns`` when it exists (a file store, which gc cannot prune), else mlflow.db."""
    if os.path.isdir("mlruns"):
        raise click.UsageError(
            "./mlruns is a file backend store; artifact-fs gc prunes databases: pass --backend-store-uri"
        )
    return "sqlite:///mlflow.db"


@click.command("gc", short_help="Permanently delete deleted runs, experiments and logged models.")
@click.option(
    "--older-than",
    default=None,
    help="Only what was deleted at least this long ago (#d#h#m#s, e.g. 1d2h3m4s).",
)
@click.option(
    "--backend-store-uri",
    metavar="URI",
    default=None,
    help="SQLAlchemy URL of MLflow's backend store (default: sqlite:///mlflow.db).",
)
@click.option(
    "--artifacts-destination",
    envvar="MLFLOW_ARTIFACTS_DESTINATION",
    metavar="URI",
    default=None,
    help="The tracking server's --artifacts-destination: mlflow-artifacts: roots are deleted there directly.",
)
@click.option("--run-ids", default=None, help="Comma-separated runs to delete (each must be deleted).")
@click.option(
    "--experiment-ids",
    default=None,
    help="Comma-separated experiments to delete, with their runs (with --orphans/--uploads: where to look).",
)
@click.option("--logged-model-ids", default=None, help="Comma-separated logged models to delete.")
@click.option(
    "--tracking-uri",
    default=lambda: os.environ.get("MLFLOW_TRACKING_URI"),
    help="Tracking server through which mlflow-artifacts: roots are deleted without --artifacts-destination.",
)
@click.option("--workspace", envvar="MLFLOW_WORKSPACE", default=None, help="Only this workspace's resources.")
@click.option("--all-workspaces", is_flag=True, help="Every workspace (the default when none is chosen).")
@click.option(
    "--dry-run", is_flag=True, help="Print what would go, with object counts and bytes; delete nothing."
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write one JSON line per root, experiment, orphan or upload handled.",
)
@click.option("--orphans", is_flag=True, help="Find run and model roots the backend store does not know.")
@click.option("--yes", is_flag=True, help="With --orphans: delete them (otherwise they are only listed).")
@click.option(
    "--grace", default="1d", show_default=True, help="With --orphans: keep anything written this recently."
)
@click.option(
    "--uploads",
    is_flag=True,
    help="Abort incomplete multipart uploads and remove temporary uploads older than --older-than.",
)
@click.pass_context
def gc(ctx: click.Context, **options: Any) -> None:
    """Permanently delete runs, experiments and logged models in the ``deleted`` lifecycle stage.

    Artifacts go first, on whatever store each root lives; a row goes only when its root is empty.
    """
    from artifact_fs.gc.backend_store import BackendStore

    workspace = options["workspace"]
    if options["all_workspaces"]:
        if workspace and ctx.get_parameter_source("workspace") == click.core.ParameterSource.COMMANDLINE:
            raise click.UsageError("--workspace and --all-workspaces cannot be used together")
        workspace = None
    if options["uploads"] and not options["older_than"]:
        raise click.UsageError("--uploads needs --older-than (how old an unfinished upload must be)")
    try:
        grace_ms = parse_age(options["grace"])
        settings = Settings(
            older_than=options["older_than"],
            run_ids=_ids(options["run_ids"]),
            experiment_ids=_ids(options["experiment_ids"]),
            logged_model_ids=_ids(options["logged_model_ids"]),
            artifacts_destination=options["artifacts_destination"],
            tracking_uri=options["tracking_uri"],
            dry_run=options["dry_run"],
            max_workers=TransferPolicy.from_environ(os.environ).thread_workers,
            environ=os.environ,
        )
        settings.older_than_ms  # noqa: B018 - validates --older-than before anything is read
        store = BackendStore(options["backend_store_uri"] or _default_backend_store(), workspace=workspace)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    except ImportError as exc:
        raise click.ClickException(str(exc)) from exc
    with contextlib.ExitStack() as stack:
        stream: IO[str] | None = None
        if options["report_path"]:
            stream = stack.enter_context(open(options["report_path"], "a", encoding="utf-8"))
        report = Report(stream)
        stack.callback(store.dispose)
        _run(store, settings, report, options, grace_ms)
    for outcome in report.outcomes:
        if options["dry_run"] or outcome.status != "deleted":
            detail = f" ({outcome.reason})" if outcome.reason else ""
            size = f" {outcome.objects} objects, {outcome.bytes} bytes" if outcome.objects else ""
            click.echo(f"{outcome.kind} {outcome.id}: {outcome.status.replace('_', ' ')}{size}{detail}")
    click.echo(("dry run: " if options["dry_run"] else "") + report.summary())
    if report.failed:
        click.echo(f"artifact-fs gc: {len(report.failed)} could not be collected (see above)", err=True)
        sys.exit(1)


def _run(store: Any, settings: Settings, report: Report, options: dict[str, Any], grace_ms: int) -> None:
    from artifact_fs.gc import maintenance

    if options["orphans"] or options["uploads"]:
        if options["orphans"]:
            maintenance.collect_orphans(store, settings, report, grace_ms=grace_ms, yes=options["yes"])
        if options["uploads"]:
            maintenance.collect_uploads(store, settings, report, older_than_ms=settings.older_than_ms)
        return
    from tqdm import tqdm

    with tqdm(unit="root", desc="gc", disable=None, file=sys.stderr, delay=0.5) as bar:
        collect(store, settings, report, progress=bar)
