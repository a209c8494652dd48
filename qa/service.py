"""The one service the CLI, the HTTP API and the chat page all call.

It sees parts only through what they do (an index, a retriever, an answerer), never how they
are built; `qa.components` builds them from settings.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from qa.answering.types import Answer, Source, source_from_hit
from qa.articles import to_records
from qa.conversation import standalone_question, validate_history
from qa.errors import ArticleNotFoundError, BadInputError, QAError
from qa.ingest.parsed import ParsedArticle
from qa.settings import Settings
from vectorstore.index import NewsIndex
from vectorstore.records import ArticleRecord

MAX_QUESTION_CHARS = 1000
READ_PASSAGES = 10


@dataclass
class FileReport:
    source: str
    articles: int = 0
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass
class IngestReport:
    files: list[FileReport] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # whole files that could not be read

    def total(self, what: str) -> int:
        return sum(len(getattr(f, what)) for f in self.files)

    @property
    def ok(self) -> bool:
        return not self.errors and not any(f.problems for f in self.files)


def safe_filename(filename: object) -> str:
    """A bare file name: no folders, no traversal, no control characters."""
    if not isinstance(filename, str) or not filename.strip():
        raise BadInputError("the upload has no file name")
    name = re.split(r"[\\/]", filename.strip())[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip().lstrip(".")
    if not name:
        raise BadInputError(f"unusable file name {filename!r}")
    return name[:200]


def has_unpaired_surrogate(text: str) -> bool:
    """JSON can escape a lone UTF-16 surrogate ("\\ud800"); no UTF-8 text can hold one."""
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def validate_question(question: object) -> str:
    if not isinstance(question, str):
        raise BadInputError("the question must be a string")
    if has_unpaired_surrogate(question):
        raise BadInputError("the question is not valid Unicode (it has an unpaired surrogate)")
    q = question.strip()
    if not q:
        raise BadInputError("the question is empty")
    if len(q) > MAX_QUESTION_CHARS:
        raise BadInputError(f"the question is too long ({len(q)} characters; the limit is {MAX_QUESTION_CHARS})")
    return q


class QAService:
    def __init__(self, settings: Settings, index: NewsIndex, retriever, answerer):
        self.settings = settings
        self.index = index
        self.retriever = retriever
        self.answerer = answerer

    # -- ingest --------------------------------------------------------------------------------
    def ingest_paths(self, paths: list[Path], on_file=None) -> IngestReport:
        from qa.ingest.readers import iter_input_files, read_file

        report = IngestReport()
        files, missing = iter_input_files(paths)
        report.errors.extend(str(e) for e in missing)
        for path in files:
            try:
                result = read_file(path)
            except BadInputError as exc:
                report.errors.append(str(exc))
                if on_file:
                    on_file(None, str(exc))
                continue
            fr = self.ingest_articles(path.name, result.articles, replace_source=not result.problems)
            fr.problems.extend(str(p) for p in result.problems)
            report.files.append(fr)
            if on_file:
                on_file(fr, None)
        self.index.sweep_orphans()
        return report

    def ingest_upload(self, filename: str, data: bytes) -> FileReport:
        """Index an uploaded file. The name is only used for its suffix and as the source label."""
        from qa.ingest.readers import read_file

        name = safe_filename(filename)
        if len(data) > self.settings.max_upload_bytes:
            raise BadInputError(f"is larger than {self.settings.max_upload_bytes // 1_000_000} MB", source=name)
        with tempfile.TemporaryDirectory(prefix="qa-upload-") as tmp:
            path = Path(tmp) / name
            path.write_bytes(data)
            result = read_file(path)
        if not result.articles:
            # Every part was bad (e.g. each JSONL line): an error, not a "200 OK, 0 articles".
            shown = "; ".join(str(p) for p in result.problems[:5])
            more = f"; and {len(result.problems) - 5} more" if len(result.problems) > 5 else ""
            raise BadInputError(f"no article could be read: {shown}{more}")
        fr = self.ingest_articles(name, result.articles, replace_source=not result.problems)
        fr.problems.extend(str(p) for p in result.problems)
        return fr

    def ingest_articles(self, source: str, parsed: list[ParsedArticle], *, replace_source: bool = True) -> FileReport:
        """Index the articles of one source. With `replace_source`, its articles that are gone are removed.

        A file with bad lines does not replace: its readable articles are added or updated, but nothing
        already indexed from it is dropped because a line could not be read this time.
        """
        records = to_records(source, parsed, chunk_size=self.settings.chunk_size,
                             overlap=self.settings.chunk_overlap_sentences)
        res = self.index.upsert_many(records)
        fr = FileReport(source, len(records), res.added, res.updated, res.unchanged)
        if replace_source:
            keep = {a.id for a, _ in records}
            for old in self.index.docs.article_ids_from_source(source):
                if old not in keep and self.index.remove(old):
                    fr.removed.append(old)
        return fr

    # -- articles ------------------------------------------------------------------------------
    def list_articles(self) -> list[ArticleRecord]:
        return self.index.docs.list_articles()

    def get_article(self, article_id: str) -> ArticleRecord:
        a = self.index.docs.get_article(article_id)
        if a is None:
            raise ArticleNotFoundError(article_id)
        return a

    def remove_article(self, article_id: str) -> None:
        if not self.index.remove(article_id):
            raise ArticleNotFoundError(article_id)

    def warm_up(self) -> None:
        """Load the model, the tokenizer dictionary and the keyword mirror now, so the first question is not
        the slow one."""
        self.index.docs.prepare_keyword_search()
        self.retriever.search("预热", 1)

    def is_empty(self) -> bool:
        return self.index.docs.count_articles() == 0

    # -- questions -----------------------------------------------------------------------------
    def search(self, query: str, k: int | None = None) -> list[Source]:
        q = validate_question(query)
        return [source_from_hit(h) for h in self.retriever.search(q, self._k(k))]

    def ask(self, question: str, k: int | None = None, history: list[dict] | None = None) -> Answer:
        final = None
        for event in self.ask_stream(question, k, history):
            if isinstance(event, Answer):
                final = event
        return final

    def ask_stream(self, question: str, k: int | None = None, history: list[dict] | None = None) -> Iterator:
        """Yields text deltas (str), None when the text so far must be discarded, and last the Answer."""
        q = validate_question(question)
        k = self._k(k)
        standalone = standalone_question(q, validate_history(history))
        # Read a few more passages than are shown: the answerer picks sentences from them.
        hits = self.retriever.search(standalone, max(k, READ_PASSAGES))
        stream = getattr(self.answerer, "stream", None)
        if stream is None:
            ans = self.answerer.answer(standalone, hits, k)
            yield ans.answer
            events = [ans]
        else:
            events = stream(standalone, hits, k)
        for event in events:
            if isinstance(event, Answer):
                event.question = q
                if standalone != q:
                    event.standalone_question = standalone
            yield event

    def _k(self, k: int | None) -> int:
        if k is None:
            return self.settings.top_k
        if not isinstance(k, int) or not 1 <= k <= 50:
            raise BadInputError("k must be a whole number from 1 to 50")
        return k


__all__ = ["QAService", "IngestReport", "FileReport", "validate_question", "QAError"]
