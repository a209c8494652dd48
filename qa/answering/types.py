"""Typed answers. API and UI format these themselves; nothing here knows about JSON or HTML."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from vectorstore.records import ScoredChunk


@dataclass(frozen=True)
class Passage:
    """A span of an article: `text == article.text[start:end]`."""

    article_id: str
    title: str
    passage: str
    start: int
    end: int


@dataclass(frozen=True)
class Citation(Passage):
    n: int = 0


@dataclass(frozen=True)
class Source(Passage):
    rank: int = 0
    score: float = 0.0
    chunk_id: str = ""
    scores: dict[str, float] = field(default_factory=dict)


def source_from_hit(h: ScoredChunk) -> Source:
    c = h.chunk
    return Source(c.article_id, c.title, c.text, c.start, c.end, rank=h.rank, score=round(h.score, 6),
                  chunk_id=c.id, scores={k: round(v, 6) for k, v in h.scores.items()})


@dataclass
class Answer:
    question: str
    answer: str
    abstained: bool
    citations: list[Citation]
    sources: list[Source]
    short_answer: str = ""
    answerer: str = "extractive"
    note: str = ""  # e.g. why an LLM answer fell back to the extractive one
    verified: list[dict] = field(default_factory=list)  # per answer sentence, for LLM answers
    standalone_question: str = ""  # the follow-up question as searched, when history changed it

    def to_dict(self) -> dict:
        d = asdict(self)
        d["citations"] = [_ordered(c, ("n",)) for c in d["citations"]]
        d["sources"] = [_ordered(s, ("rank",)) for s in d["sources"]]
        return d


def _ordered(d: dict, first: tuple[str, ...]) -> dict:
    return {**{k: d[k] for k in first}, **{k: v for k, v in d.items() if k not in first}}
