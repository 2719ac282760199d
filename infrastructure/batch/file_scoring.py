"""``mlops score``: a stored model version scores a file with the service's prediction use
case (:class:`PredictionService`), validation and answer fields."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from application.inference.batch_scoring import ScoringProgress, score_chunks
from application.inference.model_pool import ModelPool
from application.inference.serve_predictions import PredictionService
from domain.serving.model import LoadedModel
from domain.serving.variants import CHALLENGER, CHAMPION, SHADOW, TrafficSplit, VariantName
from infrastructure.batch.chunk_validators import TabularChunkValidator, TextChunkValidator
from infrastructure.batch.table_files import (
    ChunkFileSink,
    RunIdentity,
    TableFormat,
    answer_column_names,
    count_rows,
    read_chunks,
    table_columns,
)
from infrastructure.config.settings import TextServingSettings
from infrastructure.serving.loaders import (
    SklearnModelLoader,
    TransformersModelLoader,
    stored_model,
)
from infrastructure.store.bento_model_store import BentoModelStore
from shared.errors import ConfigError, ModelNotFoundError

SLOTS: dict[str, VariantName] = {CHAMPION: CHAMPION, CHALLENGER: CHALLENGER, SHADOW: SHADOW}
PINNED = "pinned"  # what answers call a version asked for by number
DEFAULT_CHUNK_ROWS = {"tabular": 50_000, "text": 1_024}


@dataclass(frozen=True)
class ScoringRequest:
    model: str
    source: Path
    output: Path
    alias: str = CHAMPION
    version: str | None = None
    chunk_rows: int | None = None
    text_column: str = "text"
    restart: bool = False

    @property
    def rejects(self) -> Path:
        return self.output.with_name(f"{self.output.stem}.rejects{self.output.suffix}")


@dataclass(frozen=True)
class ScoringResult:
    tag: str
    version: str
    rows: int
    scored: int
    rejected: int
    progress: ScoringProgress
    output: Path
    rejects: Path


def resolve_tag(request: ScoringRequest) -> str:
    store = BentoModelStore()
    if request.version is not None:
        tag = store.find_tag(request.model, request.version)
        wanted = f"version {request.version}"
    else:
        tag = store.tag_for_alias(request.model, request.alias)
        wanted = f"alias {request.alias!r}"
    if tag is None:
        raise ModelNotFoundError(
            f"no {request.model!r} model with {wanted} in the BentoML store "
            f"(`mlops models {request.model}` lists them)"
        )
    return tag


def score_file(
    request: ScoringRequest,
    on_start: Callable[[str, int], None] | None = None,
    on_progress: Callable[[ScoringProgress], None] | None = None,
) -> ScoringResult:
    """Scores ``request.source`` into ``request.output`` (and the rejects next to it);
    ``on_start`` hears the model tag and the rows to score."""
    if not request.source.is_file():
        raise ConfigError(f"INPUT: {request.source} is not a file")
    in_format = TableFormat.of(request.source, "INPUT")
    out_format = TableFormat.of(request.output, "--output")
    if request.output.resolve() == request.source.resolve():
        raise ConfigError("--output: must not be the input file")
    tag = resolve_tag(request)
    model, validator = load_for_scoring(tag, request)
    columns = input_columns(request.source, in_format, validator, "INPUT", "--text-column")
    chunk_rows = request.chunk_rows or default_chunk_rows(model)
    sink = ChunkFileSink(
        request.output,
        request.rejects,
        out_format,
        RunIdentity.of(request.source, tag, chunk_rows, out_format),
        columns,
        answer_column_names(model.scorer.classes, validator.extras),
        restart=request.restart,
    )
    if on_start is not None:
        on_start(tag, count_rows(request.source, in_format))
    slot = SLOTS.get(request.alias, CHAMPION) if request.version is None else CHAMPION
    pool = ModelPool()
    pool.swap(slot, model)
    with ThreadPoolExecutor(1) as unused:
        # score() runs in the calling thread; the executors serve only the service's
        # event-loop path, which a file never takes.
        predictions = PredictionService(
            pool, TrafficSplit(0.0), None, unused, unused, max_batch_size=chunk_rows
        )
        progress = score_chunks(
            read_chunks(request.source, in_format, chunk_rows, numeric_columns(validator)),
            validator,
            predictions,
            sink,
            slot,
            on_progress,
            answered_as=request.alias if request.version is None else PINNED,
        )
    scored, rejected = sink.finish()
    return ScoringResult(
        tag, model.version, progress.rows, scored, rejected, progress, sink.output, sink.rejects
    )


Validator = TabularChunkValidator | TextChunkValidator


def validator_for(model: LoadedModel, text_column: str, max_text_chars: int) -> Validator:
    schema = model.contract.feature_schema
    if schema is not None:
        return TabularChunkValidator(schema, model)
    return TextChunkValidator(text_column, max_text_chars)


def input_columns(
    source: Path, fmt: TableFormat, validator: Validator, name: str, text_option: str
) -> list[str]:
    """The file's columns, once it is known to hold every column the model reads."""
    try:
        columns = table_columns(source, fmt)
    except (ValueError, UnicodeDecodeError, OSError) as error:
        raise ConfigError(f"{name}: not a readable {fmt} file ({error})") from None
    absent = [c for c in validator.columns if c not in columns]
    if absent:
        hint = (
            f"{text_option} names the text column"
            if isinstance(validator, TextChunkValidator)
            else "the model's features"
        )
        raise ConfigError(
            f"{name} has no column {', '.join(map(repr, absent))} ({hint}: "
            f"{', '.join(validator.columns)}; the file has: {', '.join(map(str, columns))})"
        )
    return columns


def default_chunk_rows(model: LoadedModel) -> int:
    return DEFAULT_CHUNK_ROWS["text" if model.contract.feature_schema is None else "tabular"]


def load_for_scoring(tag: str, request: ScoringRequest) -> tuple[LoadedModel, Validator]:
    _, contract = stored_model(tag)
    settings = TextServingSettings()
    if contract.feature_schema is not None:
        model = SklearnModelLoader().load(tag)
    else:
        model = TransformersModelLoader(settings).load(tag)
    return model, validator_for(model, request.text_column, settings.max_text_chars)


def numeric_columns(validator: Validator) -> list[str]:
    return validator.numeric if isinstance(validator, TabularChunkValidator) else []
