"""The JSON API under /api. Thin: validate the request, call one service method, map the result.

Domain errors (qa.errors) are not caught here; the handlers installed by `create_app` turn them
into HTTP errors. Blocking work runs in FastAPI's thread pool (plain `def` endpoints, or
`run_in_threadpool` in the async upload endpoint, which must read the body itself).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import asdict
from itertools import chain
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.datastructures import UploadFile

from qa.answering.types import Answer
from qa.articles import article_to_dict
from qa.errors import QAError, StoreUnavailableError
from qa.ingest.parsed import ParsedArticle
from qa.web.auth import require_read, require_write

log = logging.getLogger("qa.web")

router = APIRouter(prefix="/api")

# Multipart framing around an uploaded file (boundaries, part headers) is small; this bounds it.
MULTIPART_OVERHEAD = 64 * 1024
MAX_HISTORY_CONTENT_CHARS = 20_000


# -- request models ------------------------------------------------------------------------------
class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["user", "assistant", "system"]
    content: str = Field(max_length=MAX_HISTORY_CONTENT_CHARS)


class AskRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [
            {"question": "汉中市副市长是谁？"},
            {"question": "她介绍了哪些监测数据？", "history": [
                {"role": "user", "content": "汉中市副市长是谁？"}, {"role": "assistant", "content": "李芳[1]。"}]},
        ]},
    )
    question: str = Field(description="The question, 1-1000 characters.", examples=["汉中市副市长是谁？"])
    history: list[Message] | None = Field(
        default=None, max_length=50,
        description="Earlier turns, oldest first; a follow-up such as 「她介绍了哪些监测数据？」 is read with them.",
    )
    k: int | None = Field(default=None, ge=1, le=50, description="Passages to return (default QA_TOP_K).")


class ArticleIn(BaseModel):
    """One article as JSON. The text is split into paragraphs at newlines."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{
            "title": "汉中市政协常委会会议", "text": "据汉中市副市长李芳介绍，汉中市组建了网格员监测队伍。\n第二段。",
            "date": "2024-10-21", "source": "api",
        }]},
    )
    title: str = Field(min_length=1, max_length=500)
    text: str = Field(min_length=1)
    subtitle: str = Field(default="", max_length=500)
    byline: str = Field(default="", max_length=500)
    date: str = Field(default="", max_length=100)
    url: str = Field(default="", max_length=2000)
    id: str = Field(default="", max_length=128, description="Your own id; re-posting it updates the article.")
    source: str = Field(default="api", min_length=1, max_length=200, description="A label for where it came from.")

    @field_validator("title", "text", "source")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v

    @field_validator("*")
    @classmethod
    def _valid_unicode(cls, v: str) -> str:
        # JSON can escape a lone surrogate ("\\ud800"); SQLite and the tokenizer cannot store one.
        if any("\ud800" <= ch <= "\udfff" for ch in v):
            raise ValueError("is not valid Unicode (it has an unpaired surrogate)")
        return v

    def to_parsed(self) -> ParsedArticle:
        paragraphs = [line.strip() for line in self.text.splitlines() if line.strip()]
        return ParsedArticle(
            title=self.title.strip(), paragraphs=paragraphs, subtitle=self.subtitle.strip(), byline=self.byline.strip(),
            date=self.date.strip(), url=self.url.strip(), external_id=self.id.strip(),
        )


# -- response models (for /docs; endpoints return the service's own dicts) ------------------------
class CitationOut(BaseModel):
    n: int = Field(description="The marker [n] in the answer text.")
    article_id: str
    title: str
    passage: str = Field(description="Exactly article.text[start:end].")
    start: int
    end: int


class SourceOut(BaseModel):
    rank: int
    article_id: str
    title: str
    passage: str = Field(description="Exactly article.text[start:end].")
    start: int
    end: int
    score: float
    chunk_id: str
    scores: dict[str, float]


class AnswerOut(BaseModel):
    question: str
    answer: str
    abstained: bool = Field(description="True when the articles do not answer the question.")
    citations: list[CitationOut]
    sources: list[SourceOut]
    short_answer: str
    answerer: str
    note: str = Field(description="e.g. why an LLM answer fell back to the extractive one.")
    verified: list[dict] = Field(description="LLM answers: per sentence, its citations and whether they support it.")
    standalone_question: str = Field(description="The follow-up question as searched, when history changed it.")


class SearchOut(BaseModel):
    query: str
    passages: list[SourceOut]


class ArticleSummary(BaseModel):
    id: str
    title: str
    subtitle: str
    byline: str
    source: str
    kind: str
    chars: int


class ArticleOut(BaseModel):
    id: str
    title: str
    subtitle: str
    byline: str
    source: str
    column: str
    date: str
    url: str
    kind: str
    text: str = Field(description="Citation offsets index this string.")
    paragraphs: list[str]


class IngestOut(BaseModel):
    source: str
    articles: int
    added: list[str]
    updated: list[str]
    unchanged: list[str]
    removed: list[str]
    problems: list[str]


class HealthOut(BaseModel):
    status: Literal["ok"]
    articles: int
    passages: int
    embedding_model: str
    answerer: str
    chroma: str = Field(description='"embedded", or the URL of the Chroma server')


class ErrorOut(BaseModel):
    detail: str


def _errors(*codes: int) -> dict:
    return {code: {"model": ErrorOut} for code in codes}


def _service(request: Request):
    return request.app.state.service


# -- questions -----------------------------------------------------------------------------------
@router.post(
    "/ask", summary="Answer a question with citations", tags=["questions"],
    response_model=AnswerOut, dependencies=[Depends(require_read)],
    responses={
        **_errors(400, 401, 422),
        200: {"content": {"text/event-stream": {"example": (
            'event: delta\ndata: {"text": "李芳"}\n\nevent: reset\ndata: {}\n\n'
            'event: answer\ndata: {"question": "汉中市副市长是谁？", "answer": "李芳[1]。", "...": "..."}\n\n'
        )}}, "description": "The answer; with `stream=true`, Server-Sent Events."},
    },
)
def ask(
    body: AskRequest,
    request: Request,
    stream: Annotated[bool, Query(description=(
        "Stream Server-Sent Events: `delta` {text} as the answer is written, `reset` {} when the text so far "
        "must be discarded (the LLM failed; the extractive answer follows), `answer` with the full answer "
        "object, or `error` {detail}."))] = False,
):
    svc = _service(request)
    history = [m.model_dump() for m in body.history] if body.history is not None else None
    if not stream:
        return JSONResponse(svc.ask(body.question, body.k, history).to_dict())
    events = svc.ask_stream(body.question, body.k, history)
    first = next(events)  # bad input raises here, before any byte is sent, so it gets a proper status
    return StreamingResponse(
        _answer_events(chain([first], events)), media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _answer_events(events: Iterator) -> Iterator[str]:
    try:
        for ev in events:
            if ev is None:
                yield sse("reset", {})
            elif isinstance(ev, Answer):
                yield sse("answer", ev.to_dict())
            elif ev:
                yield sse("delta", {"text": ev})
    except QAError as exc:
        yield sse("error", {"detail": str(exc)})
    except Exception:
        log.exception("answer stream failed")
        yield sse("error", {"detail": "internal server error"})


@router.get(
    "/search", summary="Retrieve passages without answering", tags=["questions"],
    response_model=SearchOut, dependencies=[Depends(require_read)], responses=_errors(401, 422),
)
def search(
    request: Request,
    q: Annotated[str, Query(description="The query, 1-1000 characters.", examples=["汉中市 网格员"])],
    k: Annotated[int | None, Query(ge=1, le=50, description="Passages to return (default QA_TOP_K).")] = None,
):
    passages = _service(request).search(q, k)
    return JSONResponse({"query": q, "passages": [_source_dict(p) for p in passages]})


def _source_dict(source) -> dict:
    d = asdict(source)
    return {"rank": d.pop("rank"), **d}  # the same key order as the sources of an answer


# -- articles ------------------------------------------------------------------------------------
@router.get(
    "/articles", summary="List indexed articles", tags=["articles"],
    response_model=list[ArticleSummary], dependencies=[Depends(require_read)], responses=_errors(401, 422),
)
def list_articles(
    request: Request, response: Response,
    q: Annotated[str | None, Query(max_length=200, description="Only articles whose title or text contains this.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
):
    articles = _service(request).list_articles()
    if q and q.strip():
        needle = q.strip().casefold()
        articles = [a for a in articles if needle in a.title.casefold() or needle in a.text.casefold()]
    response.headers["X-Total-Count"] = str(len(articles))
    return [
        {"id": a.id, "title": a.title, "subtitle": a.subtitle, "byline": a.byline, "source": a.source,
         "kind": a.kind, "chars": len(a.text)}
        for a in articles[offset : offset + limit]
    ]


ArticleId = Annotated[str, Path(min_length=1, max_length=200, description="An article id from GET /api/articles.")]


@router.get(
    "/articles/{article_id}", summary="One article with its full text", tags=["articles"],
    response_model=ArticleOut, dependencies=[Depends(require_read)], responses=_errors(401, 404),
)
def get_article(request: Request, article_id: ArticleId):
    return JSONResponse(article_to_dict(_service(request).get_article(article_id)))


_ARTICLE_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": ArticleIn.model_json_schema()},
        "multipart/form-data": {"schema": {
            "type": "object", "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary",
                                    "description": "A .txt .md .html .jsonl .docx or .pdf file"}},
        }},
    },
}


@router.post(
    "/articles", summary="Add articles: one JSON article, or an uploaded file", tags=["articles"],
    status_code=201, response_model=IngestOut, dependencies=[Depends(require_write)],
    openapi_extra={"requestBody": _ARTICLE_BODY},
    description=(
        "Send `application/json` (one article) or `multipart/form-data` with a `file` field. Returns what was "
        "indexed: 201 when an article was added, 200 when only updated or unchanged."
    ),
    responses={200: {"model": IngestOut, "description": "Nothing new was added."}, **_errors(400, 401, 413, 415, 422)},
)
async def add_articles(request: Request):
    svc = _service(request)
    limit = request.app.state.settings.max_upload_bytes
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    declared = _content_length(request)
    if content_type == "multipart/form-data":
        if declared is not None and declared > limit + MULTIPART_OVERHEAD:
            raise _too_large(limit)
        async with request.form(max_files=1, max_fields=5) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise RequestValidationError([{"type": "missing", "loc": ("body", "file"), "msg": "Field required"}])
            data = await upload.read()
            name = upload.filename or ""
        if len(data) > limit:
            raise _too_large(limit)
        report = await run_in_threadpool(svc.ingest_upload, name, data)
    elif content_type == "application/json" or content_type.endswith("+json"):
        if declared is not None and declared > 2 * limit:
            raise _too_large(limit)
        raw = await request.body()
        try:
            payload = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise HTTPException(400, "request body is not valid JSON") from None
        except RecursionError:  # "[[[[…" nested deeper than the parser's stack
            raise HTTPException(400, "request body is not valid JSON (nested too deeply)") from None
        try:
            article = ArticleIn.model_validate(payload)
        except ValidationError as exc:
            raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
        if len(article.text.encode("utf-8")) > limit:
            raise _too_large(limit)
        # Not replacing the source: posting one article must not remove the others posted under that label.
        report = await run_in_threadpool(svc.ingest_articles, article.source.strip(), [article.to_parsed()],
                                         replace_source=False)
    else:
        raise HTTPException(
            415, "send one article as application/json, or a file as multipart/form-data in the field 'file'"
        )
    return JSONResponse(asdict(report), status_code=201 if report.added else 200)


def _content_length(request: Request) -> int | None:
    try:
        return int(request.headers["content-length"])
    except (KeyError, ValueError):
        return None


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"the upload is larger than the limit of {limit:,} bytes (QA_MAX_UPLOAD_BYTES)")


@router.delete(
    "/articles/{article_id}", summary="Remove an article from the index", tags=["articles"],
    status_code=204, dependencies=[Depends(require_write)], responses=_errors(401, 404),
)
def delete_article(request: Request, article_id: ArticleId) -> Response:
    _service(request).remove_article(article_id)
    return Response(status_code=204)


# -- health --------------------------------------------------------------------------------------
@router.get(
    "/health", summary="Is the index reachable, and what is in it", tags=["health"], response_model=HealthOut,
    responses={503: {"description": "The vector store cannot be reached.", "content": {"application/json": {
        "example": {"status": "unavailable", "detail": "cannot reach the Chroma server at http://127.0.0.1:8000"}}}}},
)
def health(request: Request):
    """Always open (no API key), so a load balancer or container probe can call it."""
    svc = _service(request)
    settings = svc.settings
    chroma = settings.chroma_url or "embedded"
    try:
        svc.index.dense.count()  # the only part that can be down: a remote Chroma
        articles, passages = svc.index.docs.count_articles(), svc.index.docs.count_chunks()
    except StoreUnavailableError as exc:
        return JSONResponse({"status": "unavailable", "detail": str(exc), "chroma": chroma}, status_code=503)
    answerer = getattr(svc.answerer, "name", type(svc.answerer).__name__)
    model = getattr(svc.answerer, "model_name", "")
    return {
        "status": "ok", "articles": articles, "passages": passages,
        "embedding_model": getattr(svc.index.embeddings, "model_id", settings.embedding_model),
        "answerer": f"{answerer}:{model}" if model else answerer,
        "chroma": chroma,
    }
