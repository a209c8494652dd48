"""One parser per file format: bytes in, `ParsedArticle`s out.

Each parser has the signature `(data, source, problems) -> list[ParsedArticle]`:
it raises `BadInputError` when the whole file is unusable and appends to
`problems` when only a part of it is (one JSONL line, one PDF page).
"""

from __future__ import annotations

import html as htmllib
import io
import json
import re

from qa.errors import BadInputError
from qa.ingest.encoding import clean_text, decode_bytes, decode_raw
from qa.ingest.parsed import ParsedArticle

_CJK = "\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef"
# A line break between two CJK characters is a soft wrap, not a word space.
_CJK_SOFT_BREAK = re.compile(rf"(?<=[{_CJK}])[ \t\r\f]*\n[ \t\r\f\n]*(?=[{_CJK}])")
_HTML_SPACE = re.compile(r"[ \t\n\r\f]+")


def collapse_whitespace(text: str) -> str:
    """Whitespace as a browser renders it: runs become one space; CJK soft wraps vanish."""
    return _HTML_SPACE.sub(" ", _CJK_SOFT_BREAK.sub("", text)).strip()


def _decode_nonblank(data: bytes, source: str, *, declared: str | None = None) -> str:
    text = decode_bytes(data, source, declared=declared)
    if not text.strip():
        raise BadInputError("is empty (only whitespace)", source=source)
    return text


def _split_plain(text: str) -> list[ParsedArticle]:
    from qa.ingest.newspaper import split_page  # written alongside; imported late on purpose

    articles = split_page(text)
    if not articles and text.strip():
        # The splitter found no article shape; the text is still worth keeping.
        articles = [ParsedArticle(paragraphs=text.split("\n"), kind="fragment")]
    return articles


# --- plain text -------------------------------------------------------------


def parse_text(data: bytes, source: str, problems: list[BadInputError]) -> list[ParsedArticle]:
    return _split_plain(_decode_nonblank(data, source))


# --- Markdown ---------------------------------------------------------------

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_RULE = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_LIST_ITEM = re.compile(r"^[ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]+(?:\[[ xX]\][ \t]+)?")
_QUOTE = re.compile(r"^(?: {0,3}>[ \t]?)+")
_TABLE_RULE = re.compile(r"^[ \t]*\|?(?:[ \t]*:?-+:?[ \t]*\|)+[ \t]*(?::?-+:?[ \t]*)?$")
# Only with an ASCII target, so that a line like 「[注]: 本文……」 stays text.
_LINK_DEFINITION = re.compile(
    r"""^ {0,3}\[[^\]]+\]:[ \t]*<?[\x21-\x7e]+>?(?:[ \t]+(?:"[^"]*"|'[^']*'|\([^)]*\)))?[ \t]*$"""
)

_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~<])")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_PLACEHOLDER = re.compile(r"\x00(\d+)\x00")  # NULs never survive decoding, so this cannot clash
# Character classes exclude the opening delimiter too, so that unclosed brackets
# cost linear time, not quadratic.
_LINK_TARGET = r"""\([^()\s]*(?:[ \t]+"[^"]*")?\)"""
_IMAGE = re.compile(r"!\[([^\[\]]*)\]" + _LINK_TARGET)
_LINK = re.compile(r"\[([^\[\]]+)\](?:" + _LINK_TARGET + r"|\[[^\[\]]*\])")
_AUTOLINK = re.compile(r"<((?:https?|ftp|mailto):[^<>\s]+)>")
# Likewise a span never runs past the next delimiter.
_STRONG = re.compile(r"(\*\*|__)(?=\S)((?:(?!\1).)+?)(?<=\S)\1")
_STRIKE = re.compile(r"~~(?=\S)((?:(?!~~).)+?)(?<=\S)~~")
_EM_STAR = re.compile(r"\*(?=\S)([^*]+?)(?<=\S)\*")
_EM_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_(?=\S)([^_]+?)(?<=\S)_(?![A-Za-z0-9])")  # not snake_case


def _strip_inline(text: str) -> str:
    kept: list[str] = []

    def keep(literal: str) -> str:
        kept.append(literal)
        return f"\x00{len(kept) - 1}\x00"

    # Escaped characters and code spans are literal, so hide them from the emphasis rules.
    text = _ESCAPE.sub(lambda m: keep(m.group(1)), text)
    text = _CODE_SPAN.sub(lambda m: keep(m.group(2).strip()), text)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _AUTOLINK.sub(r"\1", text)
    text = _STRONG.sub(r"\2", text)
    text = _STRIKE.sub(r"\1", text)
    text = _EM_STAR.sub(r"\1", text)
    text = _EM_UNDERSCORE.sub(r"\1", text)
    return _PLACEHOLDER.sub(lambda m: kept[int(m.group(1))], text).strip()


def _markdown_blocks(text: str) -> tuple[list[tuple[int, str]], list[str]]:
    """Headings and paragraphs as (level, text), level 0 for a paragraph; plus the
    text as plain lines, for a file that turns out to have no headings."""
    blocks: list[tuple[int, str]] = []
    plain: list[str] = []
    lines: list[str] = []  # the open paragraph
    fence = ""

    def close() -> None:
        if lines:
            blocks.append((0, _join_soft_wrapped(lines)))
            lines.clear()

    for raw in text.split("\n"):
        if fence:
            if raw.strip().startswith(fence):
                fence = ""
            elif raw.strip():
                close()
                blocks.append((0, raw.strip()))
                plain.append(raw)
            continue
        if m := _FENCE.match(raw):
            close()
            fence = m.group(1)[0] * len(m.group(1))
            continue
        line = _QUOTE.sub("", raw)
        if not line.strip() or _LINK_DEFINITION.match(line) or ("|" in line and _TABLE_RULE.match(line)):
            close()
            plain.append("")
            continue
        if m := _ATX.match(line):
            close()
            if m.group(2) and (title := _strip_inline(m.group(2))):
                blocks.append((len(m.group(1)), title))
                plain.append(title)
            continue
        if lines and (m := _SETEXT.match(line)):
            blocks.append((1 if m.group(1)[0] == "=" else 2, _join_soft_wrapped(lines)))
            lines.clear()
            continue
        if _RULE.match(line):
            close()
            plain.append("")
            continue
        if m := _LIST_ITEM.match(line):
            close()
            line = line[m.end():]
        elif line.strip().startswith("|"):
            close()
            cells = (c.strip() for c in line.strip().strip("|").split("|"))
            line = " | ".join(c for c in cells if c)
        clean = _strip_inline(line)
        if clean:
            lines.append(clean)
        plain.append(clean)
    close()
    return blocks, plain


def _join_soft_wrapped(lines: list[str]) -> str:
    return collapse_whitespace("\n".join(lines))


def parse_markdown(data: bytes, source: str, problems: list[BadInputError]) -> list[ParsedArticle]:
    blocks, plain = _markdown_blocks(_decode_nonblank(data, source))
    levels = [level for level, _ in blocks if level]
    if not levels:
        return _split_plain("\n".join(plain))
    top = min(levels)
    articles = [ParsedArticle(kind="fragment")]  # holds whatever precedes the first heading
    for level, text in blocks:
        if level == top:
            articles.append(ParsedArticle(title=text))
        else:
            articles[-1].paragraphs.append(text)  # lower headings stay in the body as text
    return articles


# --- HTML -------------------------------------------------------------------

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_DROPPED = ["script", "style", "nav", "header", "footer", "aside", "noscript", "template"]
_BLOCKS = frozenset(
    "address article aside blockquote body caption center dd details dialog div dl dt fieldset "
    "figcaption figure footer form h1 h2 h3 h4 h5 h6 header hgroup hr li main nav ol p pre "
    "section summary table tbody td tfoot th thead tr ul br".split()
)
_AUTHOR_HINT = re.compile(r"author|byline", re.I)
_SHORT = 80  # longest subtitle or byline taken as such; longer ones are body text


def parse_html(data: bytes, source: str, problems: list[BadInputError]) -> list[ParsedArticle]:
    found = _META_CHARSET.search(data[:4096])
    declared = found.group(1).decode("ascii") if found else None
    markup = _decode_nonblank(data, source, declared=declared)
    try:
        article = _html_article(markup)
    except RecursionError:
        # bs4 walks iteratively today, but a pathologically nested page must not
        # crash a whole ingest run if some step does recurse.
        article = _html_article_by_regex(markup)
    if not article.paragraphs:
        raise BadInputError("has no text (no body text in the page)", source=source)
    return [article]


def _html_article(markup: str) -> ParsedArticle:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(markup, "lxml")
    article = ParsedArticle()
    skip: set[int] = set()  # ids of elements that became fields, so not body text
    h1 = _html_title_heading(soup)
    if h1 is not None:
        article.title = collapse_whitespace(h1.get_text())
        skip.add(id(h1))
        after = h1.find_next_sibling()
        if after is not None and after.name == "h2":
            subtitle = collapse_whitespace(after.get_text())
            if 0 < len(subtitle) <= _SHORT:
                article.subtitle = subtitle
                skip.add(id(after))
    elif soup.title is not None:
        article.title = collapse_whitespace(soup.title.get_text())
    byline = _html_byline(soup)
    if byline is not None:
        article.byline = collapse_whitespace(byline.get_text())
        skip.add(id(byline))
    elif meta := soup.find("meta", attrs={"name": "author", "content": True}):
        article.byline = meta["content"].strip()
    article.date = _html_date(soup)
    for element in soup.find_all(_DROPPED):
        element.decompose()
    body = soup.body or soup
    article.paragraphs = _html_paragraphs(body, skip)
    if article.kind == "article" and not article.title:
        article.kind = "fragment"
    return article


def _html_title_heading(soup):
    """The article's <h1>: one inside <article>/<main> if any, else the first outside
    the page furniture (a site logo is often an <h1> in the navigation)."""
    headings = [h1 for h1 in soup.find_all("h1") if collapse_whitespace(h1.get_text())]
    for h1 in headings:
        if h1.find_parent(["article", "main"]) is not None:
            return h1
    return next((h1 for h1 in headings if h1.find_parent(["nav", "aside", "footer"]) is None), None)


def _html_byline(soup):
    def hinted(tag) -> bool:
        hints = [*tag.get("class", []), tag.get("itemprop", ""), tag.get("id", ""), *tag.get("rel", [])]
        return tag.name not in ("meta", "link", "html", "body") and any(_AUTHOR_HINT.search(h) for h in hints)

    for tag in soup.find_all(hinted):
        if 0 < len(collapse_whitespace(tag.get_text())) <= _SHORT:
            return tag
    return None


def _html_date(soup) -> str:
    if (time := soup.find("time", attrs={"datetime": True})) is not None:
        return time["datetime"].strip()
    for attrs in ({"property": "article:published_time"}, {"itemprop": "datePublished"}, {"name": "pubdate"}):
        if (meta := soup.find("meta", attrs={**attrs, "content": True})) is not None:
            return meta["content"].strip()
    return ""


def _html_paragraphs(root, skip: set[int]) -> list[str]:
    """Text grouped by block element, in document order, without recursion (pages
    nested thousands of levels deep exist, and Python's stack is not that deep)."""
    from bs4 import Comment, Declaration, Doctype, NavigableString, ProcessingInstruction, Tag

    not_text = (Comment, Declaration, Doctype, ProcessingInstruction)
    paragraphs: list[str] = []
    buffer: list[str] = []
    in_pre = 0

    def flush() -> None:
        if text := collapse_whitespace("".join(buffer)):
            paragraphs.append(text)
        buffer.clear()

    stack: list[tuple[object, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        if leaving:
            in_pre -= node.name == "pre"
            if node.name in _BLOCKS:
                flush()
        elif isinstance(node, NavigableString):
            if isinstance(node, not_text):
                continue
            if in_pre:  # preformatted line breaks are real
                first, *rest = str(node).split("\n")
                buffer.append(first)
                for line in rest:
                    flush()
                    buffer.append(line)
            else:
                buffer.append(str(node))
        elif isinstance(node, Tag) and id(node) not in skip:
            if node.name in _BLOCKS:
                flush()
            in_pre += node.name == "pre"
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.contents))
    flush()
    return paragraphs


_RE_DROPPED = re.compile(r"<(%s)\b.*?</\1\s*>" % "|".join(["head", *_DROPPED]), re.I | re.S)
_RE_FURNITURE = re.compile(r"<(nav|aside|footer)\b.*?</\1\s*>", re.I | re.S)
_RE_COMMENT = re.compile(r"<!--.*?-->", re.S)
_RE_BLOCK_TAG = re.compile(r"<(?:br|/?(?:%s))\b[^>]*>" % "|".join(sorted(_BLOCKS)), re.I)
_RE_TAG = re.compile(r"<[^>]*>")


def _html_article_by_regex(markup: str) -> ParsedArticle:
    markup = _RE_COMMENT.sub(" ", markup)

    def text_of(tag: str, html: str) -> str:
        found = re.search(rf"<{tag}\b[^>]*>(.*?)</{tag}\s*>", html, re.I | re.S)
        return collapse_whitespace(htmllib.unescape(_RE_TAG.sub("", found.group(1)))) if found else ""

    h1, title = text_of("h1", _RE_FURNITURE.sub(" ", markup)), text_of("title", markup)
    body = _RE_DROPPED.sub(" ", markup)
    # Block boundaries become NULs (decoding removed any real ones), so that source
    # line breaks stay mere whitespace, as in a browser.
    body = _RE_BLOCK_TAG.sub("\x00", re.sub(r"(?is)^.*?<body\b[^>]*>", "", body))
    lines = [collapse_whitespace(line) for line in htmllib.unescape(_RE_TAG.sub("", body)).split("\x00")]
    paragraphs = [line for line in lines if line]
    if h1 and h1 in paragraphs:
        paragraphs.remove(h1)
    kind = "article" if h1 or title else "fragment"
    return ParsedArticle(title=h1 or title, paragraphs=paragraphs, kind=kind)


# --- JSON Lines -------------------------------------------------------------

_OPTIONAL_TEXT_FIELDS = ("title", "subtitle", "byline", "date", "url", "source")


def parse_jsonl(data: bytes, source: str, problems: list[BadInputError]) -> list[ParsedArticle]:
    # Lines are split on "\n" only: U+2028 and friends may stand raw inside a JSON string.
    text = clean_text(decode_raw(data, source), line_separators=False)
    if not text.strip():
        raise BadInputError("is empty (only whitespace)", source=source)
    articles: list[ParsedArticle] = []
    line_problems: list[BadInputError] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            articles.append(_jsonl_article(line))
        except ValueError as why:
            line_problems.append(BadInputError(f"malformed JSONL line {number}: {why}", source=source))
    if not articles and len(line_problems) > 1 and _is_one_json_document(text):
        raise BadInputError("is one JSON document, not JSON Lines (one object per line)", source=source)
    problems.extend(line_problems)
    return articles


def _jsonl_article(line: str) -> ParsedArticle:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"invalid JSON ({e.msg} at column {e.colno})") from None
    except RecursionError:
        raise ValueError("invalid JSON (nested too deeply)") from None
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {_json_type(record)}")
    for key in _OPTIONAL_TEXT_FIELDS:
        if record.get(key) is not None and not isinstance(record[key], str):
            raise ValueError(f'"{key}" must be a string, got {_json_type(record[key])}')
    ident = record.get("id")
    if ident is not None and (isinstance(ident, bool) or not isinstance(ident, (str, int))):
        raise ValueError(f'"id" must be a string or an integer, got {_json_type(ident)}')
    paragraphs = record.get("paragraphs")
    if paragraphs is not None:
        if not isinstance(paragraphs, list) or not all(isinstance(p, str) for p in paragraphs):
            raise ValueError('"paragraphs" must be a list of strings')
        paragraphs = [p.strip() for p in clean_text("\n".join(paragraphs)).split("\n") if p.strip()]
    body = record.get("text")
    if body is None and not paragraphs:
        raise ValueError('missing "text"')
    if body is not None and not isinstance(body, str):
        raise ValueError(f'"text" must be a string, got {_json_type(body)}')
    if not paragraphs:
        if not (body or "").strip():
            raise ValueError('"text" is empty')
        paragraphs = [p.strip() for p in clean_text(body).split("\n") if p.strip()]
    field = {key: clean_text(record.get(key) or "").strip() for key in _OPTIONAL_TEXT_FIELDS}
    # `source` is validated but not kept: the indexer names the source after the file.
    return ParsedArticle(
        title=field["title"],
        subtitle=field["subtitle"],
        byline=field["byline"],
        date=field["date"],
        url=field["url"],
        paragraphs=paragraphs,
        kind="article" if field["title"] else "fragment",
        external_id="" if ident is None else clean_text(str(ident)),
    )


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _is_one_json_document(text: str) -> bool:
    try:
        return isinstance(json.loads(text), (list, dict))
    except (ValueError, RecursionError):
        return False


# --- DOCX -------------------------------------------------------------------

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
_RUN_CONTENT = {f"{_W}t": None, f"{_W}tab": "\t", f"{_W}br": "\n", f"{_W}cr": "\n", f"{_W}noBreakHyphen": "-"}


# A .docx is a zip; python-docx inflates its parts in memory. A few-MB "zip bomb" that inflates to
# gigabytes would take the whole server down, so the declared sizes are checked first (zipfile never
# inflates a member past its declared size). Real documents are far below this.
DOCX_MAX_UNPACKED_BYTES = 100_000_000


def _check_docx_size(data: bytes, source: str) -> None:
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            unpacked = sum(member.file_size for member in package.infolist())
    except Exception:  # not a zip at all, or a damaged one
        raise BadInputError("is not a valid DOCX file", source=source) from None
    if unpacked > DOCX_MAX_UNPACKED_BYTES:
        raise BadInputError(
            f"is not a valid DOCX file: it would unpack to {unpacked / 1_000_000:,.0f} MB "
            f"(the limit is {DOCX_MAX_UNPACKED_BYTES // 1_000_000} MB)", source=source)


def parse_docx(data: bytes, source: str, problems: list[BadInputError]) -> list[ParsedArticle]:
    import docx

    _check_docx_size(data, source)
    try:
        document = docx.Document(io.BytesIO(data))
        paragraphs = [(_docx_style(document, p), _docx_text(p)) for p in _docx_paragraph_elements(document)]
    except Exception:  # python-docx signals a broken package with many exception types
        raise BadInputError("is not a valid DOCX file", source=source) from None
    paragraphs = [(style, text) for style, text in paragraphs if text.strip()]
    if not paragraphs:
        raise BadInputError("has no text", source=source)
    title_at = _docx_title_index(paragraphs)
    article = ParsedArticle(kind="fragment" if title_at is None else "article")
    if title_at is not None:
        article.title = collapse_whitespace(paragraphs[title_at][1])
        del paragraphs[title_at]
        if title_at < len(paragraphs) and paragraphs[title_at][0] == "subtitle":
            article.subtitle = collapse_whitespace(paragraphs.pop(title_at)[1])
    article.paragraphs = [text for _, text in paragraphs]
    return [article]


def _docx_paragraph_elements(document):
    """Every paragraph in reading order, table cells and text boxes included;
    text boxes appear twice in the XML and only the primary copy is kept."""
    for p in document.element.body.iter(f"{_W}p"):
        if next(p.iterancestors(_MC_FALLBACK), None) is None:
            yield p


def _docx_text(p) -> str:
    # Not python-docx's Paragraph.text: it skips tracked insertions, content
    # controls and simple fields, whose text the reader sees on the page.
    parts = []
    for element in p.iter(*_RUN_CONTENT):
        if element.getparent().tag != f"{_W}r" or next(element.iterancestors(f"{_W}p")) is not p:
            continue  # tab-stop definitions, or text of a nested text-box paragraph
        parts.append((element.text or "") if element.tag == f"{_W}t" else _RUN_CONTENT[element.tag])
    return clean_text("".join(parts))


def _docx_style(document, p) -> str:
    from docx.text.paragraph import Paragraph

    try:
        style = Paragraph(p, document).style
    except Exception:  # a dangling style reference only costs us the title guess
        return ""
    return (style.name or "").lower() if style is not None else ""


def _docx_title_index(paragraphs: list[tuple[str, str]]) -> int | None:
    for wanted in ("title", "heading"):
        for i, (style, _) in enumerate(paragraphs):
            if style.startswith(wanted) or (wanted == "heading" and style.startswith("标题")):
                return i
    first = paragraphs[0][1].strip()
    if len(first) <= 40 and "\n" not in first and not first.endswith(("。", "！", "？", ".", "!", "?")):
        return 0
    return None


# --- PDF --------------------------------------------------------------------


def parse_pdf(data: bytes, source: str, problems: list[BadInputError]) -> list[ParsedArticle]:
    import logging

    from pypdf import PdfReader

    # pypdf logs its complaints about a damaged file ("EOF marker not found") as warnings, which
    # would reach the CLI's stderr as stray lines; the damage is reported here, as one clear error.
    logging.getLogger("pypdf").setLevel(logging.ERROR)

    try:
        reader = PdfReader(io.BytesIO(data))
        encrypted = reader.is_encrypted
    except Exception:  # pypdf reports damage with many exception types
        raise BadInputError("is not a valid PDF file", source=source) from None
    if encrypted:
        # Many PDFs are encrypted only against editing, with an empty open password.
        try:
            opened = reader.decrypt("")
        except Exception:  # e.g. AES without the optional crypto dependency
            opened = 0
        if not opened:
            raise BadInputError("is encrypted (password-protected)", source=source)
    try:
        pages = list(reader.pages)
    except Exception:
        raise BadInputError("is not a valid PDF file", source=source) from None
    texts: list[str] = []
    page_problems: list[BadInputError] = []
    for number, page in enumerate(pages, start=1):
        try:
            texts.append(clean_text(page.extract_text() or ""))
        except Exception as e:  # one damaged page should not cost the others
            reason = f"page {number} could not be read ({type(e).__name__})"
            page_problems.append(BadInputError(reason, source=source))
    if pages and len(page_problems) == len(pages):
        raise BadInputError("is not a valid PDF file", source=source)
    problems.extend(page_problems)
    text = "\n".join(texts)
    if not text.strip():
        raise BadInputError("has no text (no text layer; a scanned PDF needs OCR first)", source=source)
    return _split_plain(text)
