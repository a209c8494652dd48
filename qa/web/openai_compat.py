"""An OpenAI-compatible chat API under /v1, so OpenAI clients and LangChain's ChatOpenAI can ask questions.

The last user message is the question; earlier messages are the history. The reply text is the
answer followed by its sources as text; the structured citations and sources ride along as extra
fields on the response object (on the final chunk when streaming):

    "citations": [{n, article_id, title, passage, start, end}],  "sources": [...],
    "abstained": bool,  "answer": the checked answer text,  "note": e.g. why the LLM fell back

When streaming, text is sent as it is written. If the LLM fails mid-answer, a notice is sent and the
extractive answer follows (a stream cannot take text back); the final chunk's `answer` is authoritative.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from itertools import chain
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from qa.answering.types import Answer
from qa.errors import QAError
from qa.web.auth import require_read

log = logging.getLogger("qa.web")

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])

MODEL_ID = "newsqa"
RESET_NOTICE = "\n\n（模型的回答中断了，以下是摘录式回答。）\n\n"
PASSAGE_PREVIEW_CHARS = 80


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _text_only(cls, v: object) -> object:
        if v is None or isinstance(v, str):
            return v
        if isinstance(v, list) and all(isinstance(p, dict) for p in v):
            for p in v:
                if p.get("type") != "text" or not isinstance(p.get("text"), str):
                    raise ValueError(f"has a {p.get('type')!r} part; only text parts are supported")
            return v
        raise ValueError("must be a string or a list of text parts")

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text or "" for p in self.content)


class ChatRequest(BaseModel):
    """An OpenAI chat completion request. Sampling options (temperature, …) are accepted and ignored."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"examples": [
            {"model": MODEL_ID, "messages": [{"role": "user", "content": "汉中市副市长是谁？"}]},
            {"model": MODEL_ID, "stream": True, "messages": [
                {"role": "user", "content": "汉中市副市长是谁？"},
                {"role": "assistant", "content": "李芳[1]。"},
                {"role": "user", "content": "她介绍了哪些监测数据？"},
            ]},
        ]},
    )
    model: str = MODEL_ID
    messages: list[ChatMessage] = Field(min_length=1, max_length=51)
    stream: bool = False
    k: int | None = Field(default=None, ge=1, le=50, description="Extension: passages to return.")

    @field_validator("messages")
    @classmethod
    def _check_messages(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        if messages[-1].role != "user":
            raise ValueError("the last message must be from the user (it is the question)")
        return messages

    def question_and_history(self) -> tuple[str, list[dict]]:
        history = [
            {"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in self.messages[:-1]
        ]
        return self.messages[-1].text(), history


def sources_text(ans: Answer) -> str:
    """The sources of an answer as plain text, for chat clients that only show text."""
    if ans.citations:
        lines = ["来源："] + [f"[{c.n}] {c.title or '（无标题）'} — {_preview(c.passage)}" for c in ans.citations]
    elif ans.sources:
        lines = ["最接近的段落："] + [f"· {s.title or '（无标题）'} — {_preview(s.passage)}" for s in ans.sources[:3]]
    else:
        return ""
    return "\n\n" + "\n".join(lines)


def _preview(passage: str) -> str:
    p = " ".join(passage.split())
    return p if len(p) <= PASSAGE_PREVIEW_CHARS else p[:PASSAGE_PREVIEW_CHARS] + "…"


def _note_text(ans: Answer) -> str:
    return f"\n\n（注：{ans.note}）" if ans.note else ""


def _extras(ans: Answer) -> dict[str, Any]:
    d = ans.to_dict()
    return {k: d[k] for k in ("citations", "sources", "abstained", "answer", "note")}


@router.get("/models", summary="The one model this server offers", dependencies=[Depends(require_read)])
def list_models():
    return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "newsqa"}]}


@router.post(
    "/chat/completions", summary="Answer the last user message (OpenAI chat completions)",
    dependencies=[Depends(require_read)],
    responses={200: {"description": (
        "A chat.completion object with extra `citations`, `sources`, `abstained`, `answer`, `note`; with "
        "`stream: true`, chat.completion.chunk events ending in `data: [DONE]`, the extras on the final chunk."
    )}},
)
def chat_completions(body: ChatRequest, request: Request):
    svc = request.app.state.service
    question, history = body.question_and_history()
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    if not body.stream:
        ans = svc.ask(question, body.k, history)
        return JSONResponse({
            "id": completion_id, "object": "chat.completion", "created": created, "model": MODEL_ID,
            "choices": [{
                "index": 0, "finish_reason": "stop", "logprobs": None,
                "message": {"role": "assistant", "content": ans.answer + sources_text(ans) + _note_text(ans)},
            }],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            **_extras(ans),
        })
    events = svc.ask_stream(question, body.k, history)
    first = next(events)  # bad input raises here, before the stream starts, so it gets a proper status
    return StreamingResponse(
        _chunks(chain([first], events), completion_id, created), media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _chunks(events: Iterator, completion_id: str, created: int) -> Iterator[str]:
    def chunk(delta: dict, finish: str | None = None, **extra) -> str:
        obj = {
            "id": completion_id, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra,
        }
        return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    streamed = ""  # text sent since the last reset
    try:
        for ev in events:
            if ev is None:
                streamed = ""
                yield chunk({"content": RESET_NOTICE})
            elif isinstance(ev, Answer):
                tail = "" if streamed.strip() else ev.answer
                yield chunk({"content": tail + sources_text(ev) + _note_text(ev)})
                yield chunk({}, "stop", **_extras(ev))
            elif ev:
                streamed += ev
                yield chunk({"content": ev})
    except Exception as exc:
        if not isinstance(exc, QAError):
            log.exception("chat completion stream failed")
        message = str(exc) if isinstance(exc, QAError) else "internal server error"
        yield f"data: {json.dumps({'error': {'message': message, 'type': 'server_error', 'code': None}})}\n\n"
    yield "data: [DONE]\n\n"

