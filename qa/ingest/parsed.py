"""What a reader hands to the indexer: an article before it has an id."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ParsedArticle:
    """One article as found in a file.

    `paragraphs` are the body paragraphs in reading order; the stored article
    text is these paragraphs joined with a newline, so a citation's offsets
    point into exactly that string.
    """

    title: str = ""
    paragraphs: list[str] = field(default_factory=list)
    subtitle: str = ""
    byline: str = ""
    column: str = ""  # a section header such as 「政协工作动态」
    date: str = ""
    url: str = ""
    kind: str = "article"  # "article", "photo" (a captioned photo) or "fragment" (no title found)
    external_id: str = ""  # an id the file itself gives (JSONL `id`)
