"""Error types shared by every layer.

Each error carries a message meant for the person running the command, so the CLI and the
services can show it as it is instead of a stack trace.
"""

from __future__ import annotations


class MlopsError(Exception):
    """Base class for every error this project raises on purpose."""


class ConfigError(MlopsError):
    """A job config or setting is invalid; the message names the field."""


class DataError(MlopsError):
    """A dataset cannot be read or fails a blocking quality check."""


class GateFailedError(MlopsError):
    """A model is below its quality gate and must not be promoted."""


class ModelNotFoundError(MlopsError):
    """A registered model, version, alias or stored model does not exist."""


class InvalidInputError(MlopsError):
    """A request to a served model is malformed; the message names the field and the problem."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class PayloadTooLargeError(InvalidInputError):
    """A request carries more rows or bytes than the service accepts."""


class UnknownPredictionError(MlopsError):
    """Feedback names a prediction this service does not hold (unknown, labelled or evicted)."""


class OverloadedError(MlopsError):
    """A request waited longer than the latency bound for its turn; the client may retry."""


class BackendRefusedError(MlopsError):
    """A serving backend (say, int8) fails its accuracy guard or cannot be checked."""


class ShedError(OverloadedError):
    """Refused on arrival: the work queued ahead would outlast the latency bound (429)."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
