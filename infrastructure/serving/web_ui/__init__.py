"""The web UI at ``/ui``: static pages that call the service's own JSON APIs.

Why not Gradio (which BentoML can mount): Gradio keeps each queued event and each session's
state in the memory of the worker process that accepted it, and a service here runs several
workers behind one socket, so a browser's ``queue/join`` and its event stream can land on
different workers (gradio-app/gradio#10487, #7224). It would also add Gradio's own
callbacks as a second way into the model, its upload routes around the request guard, and
about 100 MB of packages to every image. These pages hold no state on the server: every
click is a call to ``predict``, ``jobs/*``, ``stats``, ``metadata`` or ``models``, through
the same guard, limits, API keys and metrics as any other client. The charts use uPlot
(MIT, vendored under ``static/vendor``: no network at run time).
"""

from __future__ import annotations

from pathlib import Path

from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UI_PATH = "/ui"
STATIC = Path(__file__).parent / "static"

# The pages load nothing from other origins and run no inline script; uPlot sets element
# styles from script, which style-src 'unsafe-inline' allows.
SECURITY_HEADERS = (
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
        b"frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


class WithSecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [*message.get("headers", []), *SECURITY_HEADERS],
                }
            await send(message)

        await self.app(scope, receive, send_with_headers)


def web_ui_app() -> ASGIApp:
    return WithSecurityHeaders(StaticFiles(directory=STATIC, html=True))


def mount_web_ui(service: object) -> None:
    """Mount the UI on a ``bentoml.service`` object (``Service.mount_asgi_app``)."""
    service.mount_asgi_app(web_ui_app(), path=UI_PATH, name="web_ui")  # type: ignore[attr-defined]
