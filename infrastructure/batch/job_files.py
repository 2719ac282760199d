"""A service's batch-job files: ``<root>/<job_id>/`` holds the uploaded input, the parts
written so far (:class:`ChunkFileSink`), then the scored output and the rejects in the
input's format."""

from __future__ import annotations

import shutil
from pathlib import Path

from domain.ports import OpenedJob
from domain.serving.jobs import BatchJob
from domain.serving.model import LoadedModel
from infrastructure.batch.file_scoring import (
    default_chunk_rows,
    input_columns,
    numeric_columns,
    validator_for,
)
from infrastructure.batch.table_files import (
    ChunkFileSink,
    RunIdentity,
    TableFormat,
    answer_column_names,
    count_rows,
    read_chunks,
)

INPUT = "input"
OUTPUT = "scored"


class FolderJobFiles:
    def __init__(self, root: Path, max_text_chars: int, chunk_rows: int = 0) -> None:
        self.root = root
        self._max_text_chars = max_text_chars
        self._chunk_rows = chunk_rows

    def folder(self, job_id: str) -> Path:
        return self.root / job_id

    def input_path(self, job: BatchJob) -> Path:
        return self.folder(job.job_id) / f"{INPUT}{Path(job.input_name).suffix.lower()}"

    def output_path(self, job: BatchJob) -> Path:
        return self.folder(job.job_id) / f"{OUTPUT}{Path(job.input_name).suffix.lower()}"

    def rejects_path(self, job: BatchJob) -> Path:
        return self.folder(job.job_id) / f"{OUTPUT}.rejects{Path(job.input_name).suffix.lower()}"

    def accept(self, job: BatchJob, upload: Path, model: LoadedModel) -> None:
        """Checks the upload (format, the columns the model reads) and keeps it as the
        job's input; raises ConfigError naming the problem."""
        fmt = TableFormat.of(Path(job.input_name), "file")
        validator = validator_for(model, job.text_column, self._max_text_chars)
        input_columns(upload, fmt, validator, "file", "text_column")
        target = self.input_path(job)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(upload, target)

    def open(self, job: BatchJob, model: LoadedModel, restart: bool) -> OpenedJob:
        source = self.input_path(job)
        fmt = TableFormat.of(source, "file")
        validator = validator_for(model, job.text_column, self._max_text_chars)
        columns = input_columns(source, fmt, validator, "file", "text_column")
        chunk_rows = self._chunk_rows or default_chunk_rows(model)
        sink = ChunkFileSink(
            self.output_path(job),
            self.rejects_path(job),
            fmt,
            RunIdentity.of(source, model.tag, chunk_rows, fmt),
            columns,
            answer_column_names(model.scorer.classes, validator.extras),
            restart=restart,
        )
        return OpenedJob(
            read_chunks(source, fmt, chunk_rows, numeric_columns(validator)),
            validator,
            sink,
            count_rows(source, fmt),
            sink.finish,
        )

    def remove(self, job_id: str) -> None:
        shutil.rmtree(self.folder(job_id), ignore_errors=True)
