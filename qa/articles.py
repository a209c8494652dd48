"""From parsed articles to indexed records: stable ids, content hashes, chunks with spans."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter

from qa.chunking import chunk_text
from qa.ingest.parsed import ParsedArticle
from vectorstore.records import ArticleRecord, ChunkRecord

PARAGRAPH_SEPARATOR = "\n"
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def _digest(*parts: str, n: int = 16) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:n]


def article_text(paragraphs: list[str] | tuple[str, ...]) -> str:
    return PARAGRAPH_SEPARATOR.join(paragraphs)


def article_ids(source: str, parsed: list[ParsedArticle]) -> list[str]:
    """Ids that survive edits: the file's own id when it gives one, else source + title.

    An article keeps its id when its text changes, so re-ingesting an edited file replaces it. Two
    articles with the same title in one file are told apart by their order; untitled fragments by
    their first paragraph.
    """
    ids: list[str] = []
    seen: Counter[str] = Counter()
    for p in parsed:
        if p.external_id:
            ext = p.external_id.strip()
            ids.append(ext if _SAFE_ID.match(ext) else "x" + _digest(source, ext))
            continue
        key = p.title or (p.paragraphs[0][:100] if p.paragraphs else "")
        seen[key] += 1
        ids.append(_digest(source, key, str(seen[key])))
    return ids


def to_records(
    source: str, parsed: list[ParsedArticle], *, chunk_size: int, overlap: int
) -> list[tuple[ArticleRecord, list[ChunkRecord]]]:
    out = []
    for position, (aid, p) in enumerate(zip(article_ids(source, parsed), parsed)):
        paragraphs = tuple(x for x in (q.strip() for q in p.paragraphs) if x)
        text = article_text(paragraphs)
        fields = {
            "title": p.title.strip(), "subtitle": p.subtitle.strip(), "byline": p.byline.strip(),
            "column": p.column.strip(), "date": p.date.strip(), "url": p.url.strip(), "kind": p.kind,
            "paragraphs": list(paragraphs), "position": position,
        }
        # Chunking settings are part of the hash: changing them re-chunks on the next ingest.
        content_hash = _digest(json.dumps(fields, ensure_ascii=False, sort_keys=True), str(chunk_size), str(overlap), n=32)
        article = ArticleRecord(
            id=aid, text=text, paragraphs=paragraphs, source=source, content_hash=content_hash,
            **{k: v for k, v in fields.items() if k != "paragraphs"},
        )
        chunks = [
            ChunkRecord(
                id=f"{aid}:{_digest(aid, str(c.start), c.text, n=12)}", article_id=aid, ordinal=c.ordinal,
                start=c.start, end=c.end, text=c.text, title=article.title,
            )
            for c in chunk_text(text, chunk_size, overlap)
        ]
        out.append((article, chunks))
    return out


def article_to_dict(a: ArticleRecord) -> dict:
    """The public form of an article (CLI --json and the HTTP API): citations' offsets index `text`."""
    return {
        "id": a.id, "title": a.title, "subtitle": a.subtitle, "byline": a.byline, "source": a.source,
        "column": a.column, "date": a.date, "url": a.url, "kind": a.kind, "text": a.text,
        "paragraphs": list(a.paragraphs),
    }
