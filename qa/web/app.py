"""`create_app`: the FastAPI app with the JSON API, the OpenAI-compatible API and the chat page.

Nothing happens at import time; every call builds a fresh app around one service. Domain errors
become HTTP errors here and only here.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from qa.errors import (
    ArticleNotFoundError,
    BadInputError,
    ConfigError,
    IndexMismatchError,
    QAError,
    StoreUnavailableError,
    UnknownComponentError,
    UnsupportedFileError,
)
from qa.settings import Settings

if TYPE_CHECKING:
    from qa.service import QAService

log = logging.getLogger("qa.web")

# Most specific first: the first class an error is an instance of decides its status.
STATUS_OF_ERROR: tuple[tuple[type[QAError], int], ...] = (
    (UnsupportedFileError, 415),
    (BadInputError, 422),
    (ArticleNotFoundError, 404),
    (StoreUnavailableError, 503),
    (IndexMismatchError, 500),
    (ConfigError, 500),
    (UnknownComponentError, 500),
    (QAError, 500),
)

DESCRIPTION = """Ask questions about Chinese news articles; every answer cites the passages it comes from.

* **/api** — the JSON API: ask (optionally streamed as Server-Sent Events), search, manage articles.
* **/v1** — an OpenAI-compatible chat API for OpenAI clients and LangChain's `ChatOpenAI`.
* **/** — the chat page.

Citation offsets are exact: `article.text[start:end] == passage` for the article from `GET /api/articles/{id}`.
With `QA_API_KEY` set, writes need `Authorization: Bearer <key>` (reads too with `QA_API_KEY_READS=true`).
Errors are `{"detail": "..."}` (on /v1, OpenAI's `{"error": {"message": ...}}`).
"""

TAGS = [
    {"name": "questions", "description": "Answers with citations, and plain passage search."},
    {"name": "articles", "description": "The indexed articles: list, read, add (JSON or file upload), remove."},
    {"name": "health", "description": "Liveness and index size."},
    {"name": "OpenAI-compatible", "description": "Chat completions in OpenAI's wire format, citations as extras."},
]


def create_app(settings: Settings | None = None, service: QAService | None = None) -> FastAPI:
    """A fresh app. Builds the service from `settings` (the model loads on first use) unless one is given."""
    from qa.web import api, openai_compat

    if settings is None:
        settings = service.settings if service is not None else Settings()
    if service is None:
        from qa.components import build_service

        service = build_service(settings)

    app = FastAPI(title="NewsQA", version="0.1.0", description=DESCRIPTION, openapi_tags=TAGS)
    # A backstop for every body, declared or chunked; endpoints give finer 413s themselves. (Not
    # FastAPI's max_body_size: it answers in plain text, and replaces the endpoints' JSON 413s too.)
    app.add_middleware(BodyLimitMiddleware, limit=2 * settings.max_upload_bytes + 1_000_000,
                       upload_limit=settings.max_upload_bytes)
    app.state.settings = settings
    app.state.service = service
    install_error_handlers(app)
    # API routes first: the chat page is mounted at "/" and would otherwise shadow them.
    app.include_router(api.router)
    app.include_router(openai_compat.router)
    _mount_ui(app, service, settings)
    return app


UI_QUEUE_POLL_SECONDS = 0.02


def _mount_ui(app: FastAPI, service, settings: Settings) -> None:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    import gradio as gr

    from qa.web.ui import build_ui

    blocks = build_ui(service, settings)
    # Gradio has its own upload route; hold it to the same size limit as the API.
    gr.mount_gradio_app(app, blocks, path="/", max_file_size=settings.max_upload_bytes)
    # Gradio's event queue polls every 1 ms while idle: a thousand event-loop wake-ups a second that
    # compete for the GIL with every API request (and burn CPU with nobody on the page). 20 ms delays
    # the start of a chat event by at most that, unnoticeable beside the answer itself.
    queue = getattr(blocks, "_queue", None)
    if queue is not None and getattr(queue, "sleep_when_free", 0) < UI_QUEUE_POLL_SECONDS:
        queue.sleep_when_free = UI_QUEUE_POLL_SECONDS


# -- errors --------------------------------------------------------------------------------------
def _error_response(request: Request, status: int, message: str, headers: dict | None = None) -> JSONResponse:
    if request.url.path.startswith("/v1/"):  # OpenAI clients read error.message
        kind = {401: "authentication_error", 403: "permission_error", 404: "not_found_error"}.get(
            status, "server_error" if status >= 500 else "invalid_request_error")
        body = {"error": {"message": message, "type": kind, "code": None}}
    else:
        body = {"detail": message}
    return JSONResponse(body, status_code=status, headers=headers)


class BodyLimitMiddleware:
    """Refuse request bodies over `limit` bytes with a JSON 413 in the API's error format: at once when
    Content-Length says so, else as soon as the bytes received pass it (a chunked body)."""

    def __init__(self, app, limit: int, upload_limit: int):
        self.app = app
        self.limit = limit
        self.message = f"the upload is larger than the limit of {upload_limit:,} bytes (QA_MAX_UPLOAD_BYTES)"

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            declared = int(dict(scope["headers"]).get(b"content-length", b""))
        except ValueError:
            declared = None
        if declared is not None and declared > self.limit:
            await _error_response(Request(scope), 413, self.message, {"Connection": "close"})(scope, receive, send)
            return
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise StarletteHTTPException(413, self.message)  # → the JSON handler below
            return message

        await self.app(scope, limited_receive, send)


def readable_validation_errors(errors) -> str:
    """FastAPI's validation errors as one short line: 'question: field required; k: ...'."""
    parts = []
    for e in errors:
        where = ""
        for item in e.get("loc", ()):
            if item in ("body", "query", "path", "header", "cookie") and not where:
                continue
            where += f"[{item}]" if isinstance(item, int) else (f".{item}" if where else str(item))
        msg = str(e.get("msg", "is not valid")).removeprefix("Value error, ")
        msg = msg[:1].lower() + msg[1:]
        parts.append(f"{where or 'request body'}: {msg}")
    return "; ".join(dict.fromkeys(parts)) or "the request is not valid"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return _error_response(request, 400, "request body is not valid JSON")
        return _error_response(request, 422, readable_validation_errors(errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return _error_response(request, exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(QAError)
    async def _domain(request: Request, exc: QAError):
        status = next(code for cls, code in STATUS_OF_ERROR if isinstance(exc, cls))
        if status >= 500:
            log.error("%s: %s", type(exc).__name__, exc)
        return _error_response(request, status, str(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error_response(request, 500, "internal server error")
