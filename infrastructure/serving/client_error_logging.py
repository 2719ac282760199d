"""A worker's logging: client mistakes kept out of the error log, and no work for log lines
nobody reads.

BentoML logs every rejected request at ERROR with a full traceback. A 4xx is the client's
problem and is already counted in ``mlops_request_errors``; this filter turns it into one
WARNING line so real server errors stay visible.
"""

from __future__ import annotations

import logging

from bentoml.exceptions import BentoMLException
from pydantic import ValidationError

BENTOML_HTTP_LOGGER = "bentoml._internal.server.http_app"
UVICORN_ACCESS_LOGGER = "uvicorn.access"


class ClientErrorLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        is_client_error = isinstance(error, ValidationError) or (
            isinstance(error, BentoMLException) and int(error.error_code) < 500
        )
        if is_client_error:
            summary = str(error).splitlines()[0]
            record.msg = f"{record.getMessage()} rejected: {summary}"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def quiet_client_errors() -> None:
    logger = logging.getLogger(BENTOML_HTTP_LOGGER)
    if not any(isinstance(f, ClientErrorLogFilter) for f in logger.filters):
        logger.addFilter(ClientErrorLogFilter())


def skip_silent_access_log() -> None:
    """Stops uvicorn from formatting an access line per response that is never written.

    uvicorn decides per connection whether to log access from ``hasHandlers()`` on
    ``uvicorn.access``, which is true through BentoML's root handler even though that
    handler's WARNING level drops the INFO lines. So every response paid for the client
    address, the quoted path and a logging call: about 4% of a worker's event loop under
    load (py-spy, ``make bench-overhead``; the floor runs with ``--no-access-log``).
    Detached only while INFO is off for it, so a logging setup that does show those
    lines keeps them. BentoML's own access log (``ACCESS_LOG``) is another logger.
    """
    logger = logging.getLogger(UVICORN_ACCESS_LOGGER)
    if not logger.handlers and not logger.isEnabledFor(logging.INFO):
        logger.propagate = False
