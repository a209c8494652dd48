"""User files to `ParsedArticle`s: pick the files, pick the parser, report problems clearly.

The parsing itself lives in `formats` (one parser per file type) and `encoding`
(bytes to text); this module decides what to read and tidies what comes back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from qa.errors import BadInputError, UnsupportedFileError
from qa.ingest import formats
from qa.ingest.encoding import decode_bytes
from qa.ingest.parsed import ParsedArticle

__all__ = ["SUPPORTED_SUFFIXES", "ReadResult", "decode_bytes", "iter_input_files", "read_file"]

_PARSERS = {
    ".txt": formats.parse_text,
    ".md": formats.parse_markdown,
    ".markdown": formats.parse_markdown,
    ".html": formats.parse_html,
    ".htm": formats.parse_html,
    ".jsonl": formats.parse_jsonl,
    ".docx": formats.parse_docx,
    ".pdf": formats.parse_pdf,
}
SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(_PARSERS)


@dataclass
class ReadResult:
    """The articles of one file, and the parts of it that could not be read
    (a malformed JSONL line, an unreadable PDF page) while the rest could."""

    articles: list[ParsedArticle]
    problems: list[BadInputError] = field(default_factory=list)


def read_file(path: Path, *, max_bytes: int = 50_000_000) -> ReadResult:
    """Read one file; raises `BadInputError` (or `UnsupportedFileError`) when none of it is usable."""
    path = Path(path)
    source = path.name or str(path)
    try:
        if path.is_dir():
            raise BadInputError("is a directory", source=source)
        size = path.stat().st_size
    except FileNotFoundError:
        raise BadInputError("does not exist", source=source) from None
    except OSError as e:
        raise BadInputError(f"cannot be read ({e.strerror or e})", source=source) from None
    parse = _PARSERS.get(path.suffix.lower())
    if parse is None:
        raise _unsupported(path, source)
    if size > max_bytes:
        raise BadInputError(f"is larger than {_megabytes(max_bytes)} MB", source=source)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise BadInputError(f"cannot be read ({e.strerror or e})", source=source) from None
    if not data:
        raise BadInputError("is empty", source=source)
    problems: list[BadInputError] = []
    articles = _tidy(parse(data, source, problems))
    if not articles and not problems:
        raise BadInputError("has no text", source=source)
    return ReadResult(articles, problems)


def iter_input_files(paths: list[Path]) -> tuple[list[Path], list[BadInputError]]:
    """The files to read, in a stable order, and what was wrong with the rest.

    Folders are searched recursively for supported files, skipping hidden files and
    folders; a file named explicitly must be supported, since the user asked for it.
    """
    files: list[Path] = []
    errors: list[BadInputError] = []
    seen: set[Path] = set()

    def add(file: Path) -> None:
        key = file.resolve()
        if key not in seen:  # named twice, or both named and inside a named folder
            seen.add(key)
            files.append(file)

    for path in map(Path, paths):
        if path.is_dir():
            found = _supported_files_under(path, errors)
            if not found:
                reason = f"contains no supported files ({_supported_list()})"
                errors.append(BadInputError(reason, source=str(path)))
            for file in found:
                add(file)
        elif path.is_file():
            if path.suffix.lower() in _PARSERS:
                add(path)
            else:
                errors.append(_unsupported(path, str(path)))
        elif path.exists():
            errors.append(BadInputError("is not a regular file", source=str(path)))
        else:
            errors.append(BadInputError("does not exist", source=str(path)))
    return files, errors


def _supported_files_under(folder: Path, errors: list[BadInputError]) -> list[Path]:
    def unreadable(e: OSError) -> None:
        errors.append(BadInputError(f"cannot be read ({e.strerror or e})", source=e.filename or str(folder)))

    found = []
    for root, dirs, names in os.walk(folder, onerror=unreadable):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            # "~$x.docx" is the lock file Word leaves next to an open document.
            if name.startswith((".", "~$")) or Path(name).suffix.lower() not in _PARSERS:
                continue
            file = Path(root, name)
            if file.is_file():
                found.append(file)
    return sorted(found)


def _tidy(articles: list[ParsedArticle]) -> list[ParsedArticle]:
    """Every paragraph one stripped, non-empty line (the stored text joins them with
    newlines, so a newline inside one would shift citation offsets); drop empty articles."""
    kept = []
    for article in articles:
        lines = (line.strip() for paragraph in article.paragraphs for line in paragraph.split("\n"))
        article.paragraphs = [line for line in lines if line]
        for name in ("title", "subtitle", "byline", "column", "date", "url", "external_id"):
            setattr(article, name, formats.collapse_whitespace(getattr(article, name)))
        if article.paragraphs or article.title:
            kept.append(article)
    return kept


def _unsupported(path: Path, source: str) -> UnsupportedFileError:
    kind = f"'{path.suffix}'" if path.suffix else "(no suffix)"
    return UnsupportedFileError(f"unsupported file type {kind} ({_supported_list()})", source=source)


def _supported_list() -> str:
    return "supported: " + ", ".join(SUPPORTED_SUFFIXES)


def _megabytes(n: int) -> str:
    return f"{n / 1_000_000:g}"
