"""Chinese-aware chunking on sentence boundaries. Every chunk knows its character span in the article text."""

from __future__ import annotations

import re
from dataclasses import dataclass

# A sentence ends at 。！？；!?; or a newline, plus any closing quotes/brackets right after it,
# so 「……。”」 stays with its sentence.
_SENTENCE_END = re.compile(r"[。！？；!?;…]+[”’」』）)\]】》]*|\n+")
# Where an over-long sentence may be cut when no sentence end is near.
_CLAUSE_END = re.compile(r"[，、：,:]")


@dataclass(frozen=True)
class Span:
    start: int
    end: int


@dataclass(frozen=True)
class TextChunk:
    ordinal: int
    start: int
    end: int
    text: str


def sentence_spans(text: str) -> list[Span]:
    """Sentences of `text` as spans; whitespace between sentences belongs to no span."""
    spans: list[Span] = []
    pos = 0
    for m in _SENTENCE_END.finditer(text):
        end = m.end() if m.group().strip() else m.start()
        _add_trimmed(text, pos, end, spans)
        pos = m.end()
    _add_trimmed(text, pos, len(text), spans)
    return spans


def _add_trimmed(text: str, start: int, end: int, out: list[Span]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        out.append(Span(start, end))


def _split_long(text: str, span: Span, size: int) -> list[Span]:
    """Cut a sentence longer than `size` at clause marks, else hard, so no chunk grows unbounded."""
    pieces: list[Span] = []
    start = span.start
    while span.end - start > size:
        window = text[start : start + size]
        cut = max((m.end() for m in _CLAUSE_END.finditer(window)), default=0)
        if cut < size // 3:
            cut = size
        pieces.append(Span(start, start + cut))
        start += cut
    pieces.append(Span(start, span.end))
    return pieces


def chunk_text(text: str, size: int = 300, overlap_sentences: int = 1) -> list[TextChunk]:
    """Pack whole sentences into chunks of about `size` characters.

    Consecutive chunks share `overlap_sentences` sentences so an answer that straddles a boundary is
    still whole in one passage. Each chunk's text is exactly text[start:end].
    """
    if size < 1:
        raise ValueError("chunk size must be positive")
    units: list[Span] = []
    for s in sentence_spans(text):
        units.extend(_split_long(text, s, size) if s.end - s.start > size else [s])
    chunks: list[TextChunk] = []
    i = 0
    while i < len(units):
        j = i + 1
        while j < len(units) and units[j].end - units[i].start <= size:
            j += 1
        start, end = units[i].start, units[j - 1].end
        chunks.append(TextChunk(len(chunks), start, end, text[start:end]))
        if j >= len(units):
            break
        # Step back for overlap, but always make progress.
        i = max(i + 1, j - overlap_sentences)
    return chunks
