"""Plain records that travel between the index layer and the rest of the product."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ArticleRecord:
    id: str
    title: str
    text: str
    paragraphs: tuple[str, ...]
    source: str = ""
    subtitle: str = ""
    byline: str = ""
    column: str = ""
    date: str = ""
    url: str = ""
    kind: str = "article"
    content_hash: str = ""
    position: int = 0  # order within its source file


@dataclass(frozen=True)
class ChunkRecord:
    id: str
    article_id: str
    ordinal: int
    start: int
    end: int
    text: str
    title: str = ""


@dataclass(frozen=True)
class ScoredChunk:
    chunk: ChunkRecord
    score: float
    rank: int  # 1-based rank within the search that produced it
    scores: dict[str, float] = field(default_factory=dict)  # per retriever, for display and debugging
