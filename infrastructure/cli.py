"""The ``mlops`` command line: one entry point for every stage."""

from __future__ import annotations

import importlib.metadata
import platform
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from infrastructure.config.settings import MlopsSettings
from shared.errors import ConfigError, GateFailedError, MlopsError

if TYPE_CHECKING:
    from application.validation.validate_model import ValidationResult
    from domain.evaluation.classification import ClassificationReport
    from infrastructure.bootstrap import Container

app = typer.Typer(
    name="mlops",
    help="bento-mlops: train, validate, promote and serve models with MLflow and BentoML.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()

REPORTED_PACKAGES = (
    "bento-mlops",
    "bentoml",
    "mlflow",
    "scikit-learn",
    "torch",
    "transformers",
    "peft",
    "numpy",
    "pandas",
    "pydantic",
)


@app.callback()
def _root() -> None:
    """bento-mlops: train, validate, promote and serve models with MLflow and BentoML."""


def _installed_version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


@app.command()
def info() -> None:
    """Print package versions, the torch device that would be used and the settings in effect."""
    from infrastructure.ml.device import describe_device

    settings = MlopsSettings()
    versions = Table(title="Packages", show_header=True)
    versions.add_column("package")
    versions.add_column("version")
    versions.add_row("python", platform.python_version())
    for name in REPORTED_PACKAGES:
        versions.add_row(name, _installed_version(name))
    console.print(versions)
    console.print(f"[bold]Device:[/bold] {describe_device()}")
    effective = Table(title="Settings (env prefix MLOPS_)", show_header=True)
    effective.add_column("setting")
    effective.add_column("value")
    for key, value in settings.describe().items():
        effective.add_row(key, value)
    console.print(effective)


ThresholdOption = Annotated[
    float | None,
    typer.Option(min=0.0, max=1.0, help="gate threshold (default: the one it was trained under)"),
]


@contextmanager
def _user_errors() -> Iterator[None]:
    """Project errors become one red line and an exit code, never a stack trace."""
    try:
        yield
    except GateFailedError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from error
    except MlopsError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error


def _actor(command: str) -> str:
    """Who ran a CLI command, for the audit log: the OS user and host."""
    import getpass
    import socket

    return f"{getpass.getuser()}@{socket.gethostname()} ({command})"


def _container() -> Container:
    from infrastructure.bootstrap import bootstrap

    return bootstrap()


def _report_table(title: str, report: ClassificationReport) -> Table:
    table = Table(title=title)
    table.add_column("class")
    for column in ("precision", "recall", "f1", "support"):
        table.add_column(column, justify="right")
    for name, row in report.per_class.items():
        table.add_row(
            name, f"{row.precision:.3f}", f"{row.recall:.3f}", f"{row.f1:.3f}", str(row.support)
        )
    table.add_row(
        "macro avg",
        f"{report.macro_precision:.3f}",
        f"{report.macro_recall:.3f}",
        f"{report.macro_f1:.3f}",
        str(report.samples),
    )
    table.add_row(
        "weighted avg",
        f"{report.weighted_precision:.3f}",
        f"{report.weighted_recall:.3f}",
        f"{report.weighted_f1:.3f}",
        str(report.samples),
    )
    table.caption = f"accuracy {report.accuracy:.4f}"
    return table


@app.command()
def train(
    config: Annotated[Path, typer.Argument(help="job config YAML, e.g. configs/iris.yaml")],
) -> None:
    """Train the candidates of a job config, register the best as `challenger`, store it in BentoML.

    Exits 1 when the best model is below the config's gate (it stays registered as challenger,
    and `champion` does not move).
    """
    from infrastructure.config.job_config import job_kind, load_tabular_job

    with _user_errors():
        if job_kind(config) == "text":
            _train_text(config)
            return
        job = load_tabular_job(config)
        container = _container()
        with console.status("starting") as status:
            say: Callable[[str], None] = lambda message: status.update(message)  # noqa: E731
            outcome = container.run_tabular_training(job, progress=say)
    for warning in outcome.warnings:
        console.print(f"[yellow]data quality:[/yellow] {warning}")
    summary = Table(
        title=f"{job.registered_model_name}: candidates ({job.selection_metric} selects)"
    )
    summary.add_column("candidate")
    for column in ("accuracy", "macro_f1", "weighted_f1", "fit s"):
        summary.add_column(column, justify="right")
    for result in outcome.candidates:
        metrics = result.report.metrics()
        marker = " *" if result is outcome.winner else ""
        summary.add_row(
            result.name + marker,
            f"{metrics['accuracy']:.4f}",
            f"{metrics['macro_f1']:.4f}",
            f"{metrics['weighted_f1']:.4f}",
            f"{result.fit_seconds:.2f}",
        )
    console.print(summary)
    console.print(
        f"dataset {outcome.fingerprint.short} ({outcome.fingerprint.rows} rows) | "
        f"run {outcome.run_id} | registered {job.registered_model_name} "
        f"v{outcome.registered.version} @challenger | bentoml {outcome.stored_tag}"
    )
    colour = "green" if outcome.gate.passed else "red"
    console.print(f"[{colour}]{outcome.gate.describe()}[/{colour}]")
    if not outcome.gate.passed:
        raise typer.Exit(1)


def _show_progress(status: Any, message: str) -> None:
    status.update(message)
    console.log(message)


def _train_text(config: Path) -> None:
    from infrastructure.config.job_config import load_text_job

    job = load_text_job(config)
    container = _container()
    workdir = container.settings.home / "finetune" / job.registered_model_name
    with console.status("starting") as status:
        outcome = container.run_text_training(
            job, workdir, progress=lambda message: _show_progress(status, message)
        )
    console.print(_report_table(f"{job.registered_model_name}: test split", outcome.report))
    fit = outcome.fit
    console.print(
        f"{fit.steps} steps on {fit.device} in {fit.train_seconds:.1f} s "
        f"({fit.samples_per_second:.1f} samples/s, best step {fit.best_step}"
        f"{', stopped early' if fit.stopped_early else ''}); peak memory "
        f"{fit.peak_memory_mb:.0f} MB; trainable {fit.trainable_parameters:,} of "
        f"{fit.total_parameters:,} parameters; checkpoints (best, last) in {workdir}"
    )
    behaviour = outcome.behaviour.metrics()
    if behaviour:
        console.print("behaviour: " + ", ".join(f"{k} {v:.2f}" for k, v in behaviour.items()))
    console.print(
        f"rows {outcome.rows} | run {outcome.run_id} | registered "
        f"{job.registered_model_name} v{outcome.registered.version} @challenger | "
        f"bentoml {outcome.stored_tag}"
    )
    colour = "green" if outcome.gate.passed else "red"
    console.print(f"[{colour}]{outcome.gate.describe()}[/{colour}]")
    if not outcome.gate.passed:
        raise typer.Exit(1)


def _print_validation(result: ValidationResult) -> None:
    info = result.version
    console.print(
        _report_table(f"{info.name} v{info.version} on its held-out split", result.report)
    )
    colour = "green" if result.gate.passed else "red"
    console.print(f"[{colour}]{result.gate.describe()}[/{colour}]")


@app.command()
def validate(
    model: Annotated[str, typer.Argument(help="registered model name")],
    alias: Annotated[str | None, typer.Option(help="alias to validate")] = None,
    version: Annotated[
        str | None, typer.Option(help="version to validate (overrides alias)")
    ] = None,
    threshold: ThresholdOption = None,
) -> None:
    """Re-evaluate a version on the held-out split kept with its run; exit 1 below the gate."""
    from application.validation.validate_model import validate_model

    with _user_errors():
        result = validate_model(_container().registry, model, alias, version, threshold)
    _print_validation(result)
    if not result.gate.passed:
        raise typer.Exit(1)


@app.command()
def promote(
    model: Annotated[str, typer.Argument(help="registered model name")],
    version: Annotated[
        str | None, typer.Option(help="version to promote (default: challenger)")
    ] = None,
    threshold: ThresholdOption = None,
) -> None:
    """Move `champion` (MLflow alias and BentoML label) to a version, only if it passes the gate."""
    from application.registry.lifecycle import promote as promote_version

    with _user_errors():
        container = _container()
        before = container.registry.get_by_alias(model, "champion")
        event = {"actor": _actor("mlops promote"), "model": model, "action": "promote"}
        try:
            result = promote_version(container.registry, container.store, model, version, threshold)
        except MlopsError as error:
            container.audit.append(
                {
                    **event,
                    "before": before.version if before else None,
                    "after": version,
                    "outcome": f"refused: {error}",
                }
            )
            raise
        container.audit.append(
            {**event, "before": result.previous, "after": result.version, "outcome": "promoted"}
        )
    _print_validation(result.validation)
    previous = f" (was v{result.previous})" if result.previous else ""
    console.print(f"[green]{model} champion -> v{result.version}{previous}[/green]")


@app.command()
def rollback(model: Annotated[str, typer.Argument(help="registered model name")]) -> None:
    """Return `champion` to the previous champion."""
    from application.registry.lifecycle import rollback as rollback_champion

    with _user_errors():
        container = _container()
        moved_from, moved_to = rollback_champion(container.registry, container.store, model)
        container.audit.append(
            {
                "actor": _actor("mlops rollback"),
                "model": model,
                "action": "rollback",
                "before": moved_from,
                "after": moved_to,
                "outcome": "rolled back",
            }
        )
    console.print(f"[green]{model} champion v{moved_from} -> v{moved_to}[/green]")


@app.command()
def alias(
    model: Annotated[str, typer.Argument(help="registered model name")],
    name: Annotated[str, typer.Argument(help="alias, e.g. shadow (champion moves by promote)")],
    version: Annotated[str, typer.Argument(help="registered version to point it at")],
) -> None:
    """Point an alias other than champion (e.g. `shadow`) at a version, in MLflow and the store."""
    if name == "champion":
        console.print("[red]error:[/red] champion moves only through `mlops promote` (gated)")
        raise typer.Exit(2)
    with _user_errors():
        container = _container()
        info = container.registry.get_version(model, version)
        before = container.registry.get_by_alias(model, name)
        container.store.mark_alias(model, name, info.version)
        container.registry.set_alias(model, name, info.version)
        container.audit.append(
            {
                "actor": _actor("mlops alias"),
                "model": model,
                "action": f"alias.{name}",
                "before": before.version if before else None,
                "after": info.version,
                "outcome": "set",
            }
        )
    console.print(f"[green]{model} {name} -> v{info.version}[/green]")


@app.command()
def canary(
    model: Annotated[str, typer.Argument(help="registered model name")],
    url: Annotated[str, typer.Option(help="the running service")] = "http://127.0.0.1:3000",
    config: Annotated[
        Path | None, typer.Option(help="canary config YAML (default: configs/canary.yaml values)")
    ] = None,
    interval: Annotated[float | None, typer.Option(help="seconds between analyses")] = None,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="MLOPS_API_KEY", help="an admin key for the service's admin API"),
    ] = None,
) -> None:
    """Step the challenger's traffic up, compare it with the champion at each step, then
    promote it or set its weight back to 0. Exit 0 promoted, 1 rolled back, 3 inconclusive."""
    from pydantic import ValidationError

    from domain.serving.canary import CanaryConfig
    from infrastructure.config.job_config import format_validation_error, read_yaml_mapping

    class Progress:
        def append(self, event: Any) -> None:
            details = {k: v for k, v in event.items() if k not in ("at", "actor", "model")}
            console.print(f"[cyan]{details.pop('action')}[/cyan] {details}")

    with _user_errors():
        values: dict[str, Any] = read_yaml_mapping(config) if config else {}
        if interval is not None:
            values["interval_s"] = interval
        try:
            settings = CanaryConfig.model_validate(values)
        except ValidationError as error:
            raise ConfigError(format_validation_error(error, str(config or "--interval"))) from None
        outcome = _container().run_canary(
            model, url, settings, progress=Progress(), api_key=api_key
        )
    colour = {"promoted": "green", "rolled_back": "red", "inconclusive": "yellow"}[outcome.status]
    console.print(f"[{colour}]{model}: {outcome.status}[/{colour}] {outcome.message}")
    raise typer.Exit(outcome.exit_code)


@app.command()
def models(model: Annotated[str, typer.Argument(help="registered model name")]) -> None:
    """List a model's registered versions with metrics, aliases and BentoML tags."""
    with _user_errors():
        container = _container()
        versions = container.registry.list_versions(model)
        stored = container.store.list_tags(model)
    if not versions:
        console.print(f"no versions registered for {model!r}")
        raise typer.Exit(1)
    table = Table(title=model)
    for column in (
        "version",
        "aliases",
        "accuracy",
        "macro_f1",
        "candidate",
        "gate",
        "bentoml tag",
    ):
        table.add_column(column)
    for info in versions:
        table.add_row(
            info.version,
            ", ".join(info.aliases),
            f"{info.metrics['accuracy']:.4f}" if "accuracy" in info.metrics else "",
            f"{info.metrics['macro_f1']:.4f}" if "macro_f1" in info.metrics else "",
            info.tags.get("candidate", ""),
            info.tags.get("gate.passed", ""),
            stored.get(info.version, ""),
        )
    console.print(table)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def serve(
    context: typer.Context,
    target: Annotated[
        str,
        typer.Argument(
            help="what `bentoml serve` takes: a service import path "
            "(infrastructure.serving.entrypoints.tabular:TabularClassifier) or a Bento tag"
        ),
    ],
) -> None:
    """`bentoml serve TARGET` and its options, with a Prometheus folder of this server's own.

    Use it wherever several servers share one BentoML store (`make serve` starts two):
    with plain `bentoml serve`, the one started last empties the others' metric files."""
    from infrastructure.serving.launch import serve as serve_target

    raise typer.Exit(serve_target(target, context.args))


@app.command()
def score(
    model: Annotated[str, typer.Argument(help="registered model name")],
    source: Annotated[
        Path, typer.Argument(metavar="INPUT", help=".csv, .tsv, .jsonl or .parquet file")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="scored file (.csv, .tsv, .jsonl, .parquet)")
    ],
    alias: Annotated[str, typer.Option(help="score with the version this alias names")] = (
        "champion"
    ),
    version: Annotated[
        str | None, typer.Option(help="score with this registered version instead")
    ] = None,
    chunk_rows: Annotated[
        int | None, typer.Option(min=1, help="rows per chunk (default 50,000; text 1,024)")
    ] = None,
    text_column: Annotated[str, typer.Option(help="text models: the column to score")] = "text",
    restart: Annotated[
        bool, typer.Option(help="discard the parts of an interrupted run instead of resuming")
    ] = False,
) -> None:
    """Score a whole file offline with the service's validation and answer fields.

    Rows that fail validation go to OUTPUT's rejects file (`<name>.rejects.<ext>`) with the
    field and the problem; the rest are scored. Interrupted, the same command resumes."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from infrastructure.batch.file_scoring import ScoringRequest

    request = ScoringRequest(
        model, source, output, alias, version, chunk_rows, text_column, restart
    )
    with (
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[count]}"),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=console,
        ) as bar,
        _user_errors(),
    ):
        task = bar.add_task("loading the model", total=None, count="", rate="")
        total = 0

        def started(tag: str, rows: int) -> None:
            nonlocal total
            total = rows
            bar.update(task, description=f"scoring with {tag}", total=rows)

        def advanced(progress: Any) -> None:
            bar.update(
                task,
                completed=progress.rows,
                count=f"{progress.rows:,}/{total:,} rows",
                rate=f"{progress.rows_per_second:,.0f} rows/s, {progress.rejected:,} rejected",
            )

        try:
            result = _container().score_file(request, started, advanced)
        except KeyboardInterrupt:
            console.print(
                "[yellow]interrupted: the chunks written are kept; run the same command "
                "again to resume[/yellow]"
            )
            raise typer.Exit(130) from None
    progress = result.progress
    resumed = (
        f" ({progress.resumed_rows:,} done by an earlier run)" if progress.resumed_rows else ""
    )
    console.print(
        f"{result.rows:,} rows{resumed}: {result.scored:,} scored -> {result.output}, "
        f"{result.rejected:,} rejected -> {result.rejects}"
    )
    console.print(
        f"model {result.tag} (version {result.version}); {progress.rows_per_second:,.0f} rows/s "
        f"over {progress.seconds:.1f} s, {progress.model_seconds:.1f} s of it in the model"
    )


monitor_app = typer.Typer(
    help="Reports and datasets from the services' shared prediction log.",
    no_args_is_help=True,
)
app.add_typer(monitor_app, name="monitor")

DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def _seconds(text: str, option: str) -> float:
    """``90s``, ``30m``, ``24h``, ``7d``. Four units: a parsing library would be heavier
    than the function."""
    unit = DURATION_UNITS.get(text[-1:].lower())
    try:
        value = float(text[:-1]) if unit else float("nan")
    except ValueError:
        value = float("nan")
    if unit is None or not value >= 0:
        raise ConfigError(f"{option}: {text!r} is not a duration like 30m, 24h or 7d")
    return value * unit


def _window(since: str, until: str | None) -> tuple[float, float]:
    import time

    end = time.time() - (_seconds(until, "--until") if until else 0.0)
    return end - _seconds(since, "--since"), end


LogUrl = Annotated[
    str,
    typer.Option(
        "--log-url",
        envvar="MLOPS_PREDICTION_LOG_URL",
        help="the services' PREDICTION_LOG_URL (default: SQLite under MLOPS_HOME)",
    ),
]


@monitor_app.command("report")
def monitor_report(
    model: Annotated[str, typer.Argument(help="registered model name")],
    since: Annotated[str, typer.Option(help="window length, back from --until")] = "24h",
    until: Annotated[str | None, typer.Option(help="how long ago the window ends")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="folder (default: MLOPS_HOME/reports/...)")
    ] = None,
    max_drifted_share: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.2,
    min_accuracy: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.8,
    min_labels: Annotated[int, typer.Option(min=1)] = 100,
    mlflow: Annotated[bool, typer.Option(help="log the files to each version's run")] = True,
    log_url: LogUrl = "",
) -> None:
    """Drift, predictions, accuracy and latency per version and variant over a window;
    HTML + PNG + JSON, logged to MLflow. Exit 1 when drift or accuracy crosses a threshold."""
    import time

    from application.monitoring.monitor_report import ReportThresholds

    with _user_errors():
        start, end = _window(since, until)
        container = _container()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(end))
        folder = output or container.settings.home / "reports" / f"{model}-{stamp}"
        thresholds = ReportThresholds(
            max_drifted_share=max_drifted_share, min_accuracy=min_accuracy, min_labels=min_labels
        )
        report, files, runs = container.monitor_report(
            model, start, end, thresholds, folder, log_url, to_mlflow=mlflow
        )
    table = Table(title=f"{model}: {report.records} predictions")
    for column in ("variant", "version", "predictions", "labels", "accuracy", "drifted"):
        table.add_column(column)
    for group in report.groups:
        drifted = (
            ", ".join(d.feature for d in group.drift.features if d.drifted) or "none"
            if group.drift
            else group.drift_note or ""
        )
        table.add_row(
            group.variant,
            group.version,
            str(group.predictions),
            str(group.labelled),
            "" if group.accuracy is None else f"{group.accuracy:.3f}",
            drifted,
        )
    console.print(table)
    console.print(f"report: {files[1]}")
    for version, run in runs.items():
        console.print(f"logged to MLflow run {run} (version {version})")
    for flag in report.flags:
        console.print(f"[red]{flag}[/red]")
    if not report.records:
        console.print(f"no predictions of {model!r} in the log for that window")
    raise typer.Exit(1 if report.flags else 0)


@monitor_app.command("export")
def monitor_export(
    model: Annotated[str, typer.Argument(help="registered model name")],
    output: Annotated[Path, typer.Option("--output", "-o", help=".csv, .tsv, .jsonl, .parquet")],
    since: Annotated[str, typer.Option(help="window length, back from --until")] = "30d",
    until: Annotated[str | None, typer.Option(help="how long ago the window ends")] = None,
    labelled_only: Annotated[
        bool, typer.Option("--labelled-only/--all", help="only predictions with feedback")
    ] = True,
    log_url: LogUrl = "",
) -> None:
    """Served predictions (with their feedback labels) as a dataset a training config reads."""
    with _user_errors():
        start, end = _window(since, until)
        rows = _container().export_predictions(model, start, end, output, labelled_only, log_url)
    console.print(f"{rows} rows -> {output}")


keys_app = typer.Typer(
    help="API keys for the services (roles: predict, admin).", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")

KeysFile = Annotated[
    Path | None,
    typer.Option(
        "--file",
        envvar="MLOPS_SERVE_API_KEYS_FILE",
        help="key file the services read (default: MLOPS_HOME/api_keys.json)",
    ),
]


def _key_store(container: Container, file: Path | None) -> Any:
    from infrastructure.security.json_key_store import JsonKeyStore

    return JsonKeyStore(file or container.settings.home / "api_keys.json")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="who or what uses it, e.g. ci, dashboard")],
    role: Annotated[str, typer.Option(help="predict or admin")] = "predict",
    file: KeysFile = None,
) -> None:
    """Create a key and print it once (only its SHA-256 digest is stored)."""
    from domain.security.api_keys import Role

    with _user_errors():
        if role not in {r.value for r in Role}:
            raise ConfigError(f"--role: {role!r}; choose predict or admin")
        container = _container()
        record, token = _key_store(container, file).create(name, Role(role))
        container.audit.append(
            {
                "actor": _actor("mlops keys create"),
                "action": "key.create",
                "key": record.id,
                "before": None,
                "after": f"{record.name} ({record.role})",
                "outcome": "created",
            }
        )
    console.print(f"key {record.id} ({record.name}, role {record.role}); shown once:")
    typer.echo(token)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="the key's id (mlops keys list)")],
    file: KeysFile = None,
) -> None:
    """Revoke a key; services refuse it within a second, without a restart."""
    with _user_errors():
        container = _container()
        record = _key_store(container, file).revoke(key_id)
        container.audit.append(
            {
                "actor": _actor("mlops keys revoke"),
                "action": "key.revoke",
                "key": record.id,
                "before": "active",
                "after": "revoked",
                "outcome": "revoked",
            }
        )
    console.print(f"[green]key {record.id} ({record.name}) revoked[/green]")


@keys_app.command("list")
def keys_list(file: KeysFile = None) -> None:
    """Ids, names, roles and dates (never the keys themselves)."""
    import time

    with _user_errors():
        keys = _key_store(_container(), file).keys()
    table = Table(title="API keys")
    for column in ("id", "name", "role", "created", "revoked"):
        table.add_column(column)
    for key in keys.values():
        table.add_row(
            key.id,
            key.name,
            key.role,
            time.strftime("%Y-%m-%d %H:%M", time.gmtime(key.created_at)),
            time.strftime("%Y-%m-%d %H:%M", time.gmtime(key.revoked_at)) if key.revoked_at else "",
        )
    console.print(table)


@app.command()
def audit(
    model: Annotated[str | None, typer.Option(help="only events of this model")] = None,
    limit: Annotated[int, typer.Option(min=1, help="the newest N events")] = 50,
) -> None:
    """State changes from the CLI and the services' admin APIs: who, what, when, before/after,
    outcome (promote, rollback, alias, canary steps, reloads, traffic weights, keys)."""
    import time

    with _user_errors():
        events = _container().audit.read()
    if model:
        events = [e for e in events if e.get("model") == model]
    table = Table(title=f"audit log ({len(events)} events)")
    for column in ("when (UTC)", "actor", "action", "model", "before", "after", "outcome"):
        table.add_column(column)
    for event in events[-limit:]:
        at = event.get("at")
        table.add_row(
            time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at))
            if isinstance(at, float | int)
            else "",
            str(event.get("actor", "")),
            str(event.get("action", "")),
            str(event.get("model", "")),
            str(event.get("before", "")),
            str(event.get("after", "")),
            str(event.get("outcome", "")),
        )
    console.print(table)


def main() -> None:  # pragma: no cover - console-script shim
    app()
