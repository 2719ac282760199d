"""Offline scoring of a file, cut into chunks: what a chunk is and what validation made of it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Chunk:
    """Rows ``first_row`` .. ``first_row + size - 1`` of the input (0-based data rows);
    ``data`` is the reader's own form of them, which only the adapters look into."""

    index: int
    first_row: int
    size: int
    data: Any


@dataclass(frozen=True)
class Rejected:
    """A row refused before scoring: its position in the chunk and why (field and problem)."""

    position: int
    reason: str


@dataclass(frozen=True)
class ValidatedChunk:
    """The chunk's rows that passed the service's validation (positions in the chunk, and
    the model inputs they became, in the same order), and the ones that did not."""

    positions: list[int]
    inputs: Sequence[Any]
    rejected: list[Rejected]
