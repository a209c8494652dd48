"""Split a newspaper page dump (or an ordinary article file) into articles.

A page dump holds many articles, and the layout breaks its reading order: a title block
can stand after its own body or right above another title block, a paragraph cut by a
column break continues somewhere else on the page, a paragraph can be printed twice.
The approach, in order:

1. Lines. Hard-wrapped lines are joined again. Each non-blank line is a header line (a
   short title line without ending punctuation, a ``——`` subtitle, a byline, a date) or a
   paragraph. Consecutive header lines form title blocks (in a plain article file, later
   one-line titles are section headings and stay in the text). Paragraph openers
   (``本报讯(…)``), closing author parentheses (``…说。（张三 李四）``) and photo credits
   (``…。张三 摄``) are split off the paragraph into the byline. Exact duplicate
   paragraphs are dropped.
2. Runs. Title blocks, openers, closing parentheses and photo captions are hard
   boundaries: between them lie runs of paragraphs. A title block followed by another
   title block (or by nothing) is an *orphan*: its body stands elsewhere.
3. Continuations. A paragraph without ending punctuation was cut by a column break. Its
   continuation is chosen by content: jieba-token TF-IDF overlap of the cut sentence's
   surroundings with the candidate's opening, minus how well the candidate already follows
   the paragraph printed above it, plus a bonus when the candidate visibly starts
   mid-sentence or is printed right below the cut. The best set of links over the whole page is taken, one continuation per
   cut, no reading-order cycles.
4. Pieces and chains. Runs are cut into pieces at those links (and, on multi-article
   pages, before a paragraph that starts mid-sentence with no cut to continue: its
   article's beginning is not on the page). Pieces linked by continuations form chains,
   read in link order, the two halves of a cut paragraph joined into one.
5. Titles. Chains without a title block get an orphan title block by content (the share of
   the title's token weight found in the body, best global assignment). Chains left over
   continue the article printed before them when only a column break separates them, or
   stand alone as title-less fragments.

Everything is by content and layout cues, never by anything about one particular page; and
every character of the source ends up in some field (only exact duplicate paragraphs go).
"""

from __future__ import annotations

import logging
import math
import re
import tempfile
import threading
import unicodedata
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from qa.ingest.parsed import ParsedArticle

# --- line-level patterns -------------------------------------------------------------

# A paragraph is complete when it ends with one of these, possibly followed by closing
# quotes/brackets. A colon counts: 「措施如下：」 introduces the next paragraph, it is not cut.
_END_PUNCT = "。！？；…!?;：:"
_CLOSING = "”’」』）)》】〕]"
_SENTENCE_END = re.compile(r"[。！？；!?;…]+[”’」』）)》】]*")
_CJK = re.compile(r"[\u3400-\u9fff]")

_MAX_TITLE_CHARS = 40
_MAX_TITLE_CLAUSE_CHARS = 12
_SUBTITLE = re.compile(r"^(?:——|──|－－|--)")
_DATE_LINE = re.compile(
    r"^\d{4}\s*[-/.年]\s*\d{1,2}\s*[-/.月]\s*\d{1,2}\s*日?(?:\s+\d{1,2}:\d{2}(?::\d{2})?)?$"
)
# 「一、」「（二）」「3.」: a sub-heading inside an article, not an article title.
_ENUMERATED = re.compile(r"^(?:[一二三四五六七八九十]+[、.．]|[（(][一二三四五六七八九十\d]+[）)]|\d{1,2}[、.．](?!\d))")

_NAME = r"[\u4e00-\u9fff·]{2,4}"
_ROLE = r"(?:本报|特约|首席|见习)*(?:记者|通讯员|实习生|评论员|撰稿|作者|责任编辑|编辑|来源|摄影|文/|图/)"
_ROLE_TOKEN = re.compile(rf"{_ROLE}(?:{_NAME})?")
_NAME_TOKEN = re.compile(_NAME)
_CREDIT_TOKEN = re.compile(rf"(?:{_ROLE})?{_NAME}")  # 「张三」「记者张三」 in （…） or before 摄
_AFTER_SENTENCE = r"(?<=[。！？!?…”’」』）)])"

# 「本报讯」「本报北京10月20日讯」「本报讯(记者 张三)」「新华社北京10月20日电」
_OPENER = re.compile(
    r"^(本报[^\s，。“”]{0,12}?讯|新华社[^\s，。“”]{0,16}?电)\s*([（(][^（）()]{0,40}[）)])?\s*"
)
# 「…说。（张三 李四）」: names in parentheses after the last sentence (checked by _CREDIT_TOKEN).
_CLOSER = re.compile(_AFTER_SENTENCE + r"\s*([（(]([^（）()]{2,30})[）)])\s*$")
# 「…了解情况。王世平 摄」: a photo credit after the caption's last sentence.
_CREDIT = re.compile(_AFTER_SENTENCE + r"\s*(([^。！？!?…”’」』（）()]{2,30}?)\s*/?\s*摄)\s*$")

_COLUMN_SUFFIXES = (
    "动态", "快讯", "简讯", "要闻", "速递", "传真", "一线", "观察", "视点", "聚焦", "纵横",
    "短评", "时评", "论坛", "声音", "风采", "集锦", "资讯", "专栏", "综述", "点评", "新闻",
    "走笔", "札记",
)  # fmt: skip
_MAX_COLUMN_CHARS = 8

# --- mid-sentence starts (jieba part of speech of the first word) ----------------------

# Words that join two parts of a sentence and so do not open one.
_MID_SENTENCE_WORDS = frozenset("和 与 及 或 的 地 得 了 着 过 之 等".split())
# Single-character nouns/verbs that do open sentences (「要把…」「让…」「党的…」).
_SENTENCE_OPENING_CHARS = frozenset("要让使请有是用看党国人")

# --- scores (cosines of jieba-token TF-IDF vectors, and shares of token weight) --------

_MIN_LINK_FIT = 0.05  # content overlap a continuation needs unless it starts mid-sentence
_MIN_LINK_SCORE = 0.08  # a mid-sentence start still needs some shared words
_MID_SENTENCE_BONUS = 0.05
_ADJACENT_BONUS = 0.03  # the continuation printed right below the cut paragraph
_IN_FLOW_PENALTY = 0.08  # a candidate printed under a complete paragraph of its own text
_LINK_OPTIONS = 4  # candidates kept per cut paragraph (and per orphan title) for the global search
_MIN_TITLE_COVERAGE = 0.2  # share of an orphan title's token weight found in the body
_EXHAUSTIVE_ROWS = 7  # above this many rows the global search falls back to greedy
_MAX_SPLIT_COHESION = 0.12  # text around a mid-sentence start tied closer than this stays together
_COHESION_WINDOW = 3  # paragraphs compared on each side of a possible split
_MIN_WRAP_WIDTH = 16  # display cells: narrower "wrapping" is a list of short lines
_MIN_WRAPPED_LINES = 3
_MIN_DUPLICATE_CHARS = 10  # shorter repeated paragraphs (「“好！”」) may be legitimate


# --- jieba, loaded on first use ---------------------------------------------------------

_jieba_lock = threading.Lock()


@lru_cache(maxsize=1)
def _jieba():
    with _jieba_lock:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        jieba.dt.tmp_dir = tempfile.gettempdir()  # its dictionary cache goes to the temp dir
        jieba.initialize()
        return jieba


@lru_cache(maxsize=4096)
def _first_word(text: str) -> tuple[str, str]:
    """The first word of `text` and its part-of-speech tag."""
    jieba = _jieba()
    import jieba.posseg as pseg

    words = jieba.lcut(text)
    if not words:
        return "", ""
    word = words[0]
    # The tagger segments on its own; take its tag only where it sees the same word.
    tagged = pseg.lcut(text)
    if not tagged or tagged[0].word != word:
        tagged = pseg.lcut(word)
    return word, tagged[0].flag if tagged else ""


# --- page items --------------------------------------------------------------------------


@dataclass(eq=False)
class _Block:
    """Consecutive header lines: [column] [kicker…] title [——subtitle…] [byline…] [date]."""

    pos: int
    lines: list[tuple[str, str]] = field(default_factory=list)  # (kind, text)

    def titles(self) -> list[str]:
        return [t for k, t in self.lines if k == "title"]

    def of_kind(self, kind: str) -> list[str]:
        return [t for k, t in self.lines if k == kind]

    def topic_text(self) -> str:
        """Title, kicker and subtitle: the words a body should share with its title."""
        return " ".join(t.lstrip("—－-─ ") for k, t in self.lines if k in ("title", "sub"))


@dataclass(eq=False)
class _Para:
    pos: int
    text: str  # the body text, with opener, closer and credit split off
    opener: str = ""
    closer: str = ""
    credit: str = ""
    heading: bool = False  # an enumerated sub-heading: complete by nature


@dataclass(eq=False)
class _Run:
    """Paragraphs between two hard boundaries, in page order."""

    paras: list[_Para]
    block: _Block | None = None  # the title block printed right above it
    after_photo: _Para | None = None  # last paragraph before a photo that interrupted this text


@dataclass(eq=False)
class _Piece:
    run: _Run
    paras: list[_Para]
    reason: str  # why it starts: "start" (of a run), "target", "after_break", "dangling"


@dataclass(eq=False)
class _Group:
    """A chain of pieces linked by continuations, in reading order."""

    pieces: list[_Piece]
    block: _Block | None = None

    @property
    def head(self) -> _Piece:
        return self.pieces[0]

    def paras(self) -> list[_Para]:
        return [p for piece in self.pieces for p in piece.paras]

    def pos(self) -> int:
        return min(p.pos for p in self.paras())


# --- line classification -----------------------------------------------------------------


def _ends_complete(text: str) -> bool:
    text = text.rstrip().rstrip(_CLOSING).rstrip()
    return bool(text) and text[-1] in _END_PUNCT


def _is_byline(line: str) -> bool:
    """Roles and names only: 「陈明丽 本报记者 王有强」「通讯员 李兰林」「来源：新华社」."""
    if len(line) > 60 or _ends_complete(line):
        return False
    has_role = False
    for token in line.replace("：", " ").replace(":", " ").split():
        if _ROLE_TOKEN.fullmatch(token):
            has_role = True
        elif not _NAME_TOKEN.fullmatch(token):
            return False
    return has_role


def _is_title_line(line: str) -> bool:
    """Short, no sentence punctuation inside or at the end, not an enumerated sub-heading."""
    if len(line) > _MAX_TITLE_CHARS or _ends_complete(line) or _ENUMERATED.match(line):
        return False
    if re.search(r"[。！？；!?;]", line):
        return False
    # 「守初心，担使命」: a headline's clauses are short; a line cut from a paragraph has long ones.
    clauses = re.split(r"[，、,]", line)
    if len(clauses) > 3 or (len(clauses) > 1 and max(map(len, clauses)) > _MAX_TITLE_CLAUSE_CHARS):
        return False
    return bool(re.search(r"\w", line))


def _header_kind(line: str) -> str | None:
    if _SUBTITLE.match(line) and len(line) <= 2 * _MAX_TITLE_CHARS:
        return "sub"
    if _is_byline(line):
        return "byline"
    if _DATE_LINE.match(line):
        return "date"
    if _is_title_line(line):
        return "title"
    return None


def _only_names(text: str) -> bool:
    """「张三 李四」「记者 张三」「本报记者张三」: names and roles, nothing else."""
    tokens = re.split(r"[\s、，,/]+", text.strip())
    return all(_CREDIT_TOKEN.fullmatch(t) or _ROLE_TOKEN.fullmatch(t) for t in tokens)


def _make_para(pos: int, line: str) -> _Para:
    heading = len(line) <= _MAX_TITLE_CHARS and bool(_ENUMERATED.match(line))
    para = _Para(pos, line, heading=heading)
    if m := _OPENER.match(para.text):
        para.opener = m.group(1) + (m.group(2) or "")
        para.text = para.text[m.end() :]
    if (m := _CREDIT.search(para.text)) and _only_names(m.group(2)):
        para.credit = m.group(1)
        para.text = para.text[: m.start()].rstrip()
    elif (m := _CLOSER.search(para.text)) and _only_names(m.group(2)):
        para.closer = m.group(1)
        para.text = para.text[: m.start()].rstrip()
    return para


def _display_width(line: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Non-blank lines as (line number, text), with hard-wrapped lines joined again.

    A file wrapped at a fixed width (PDF text, some .txt) has many lines of one width
    followed directly by another line; such a full-width line without ending punctuation
    goes on in the next line. Blank-line-separated dumps are left alone.
    """
    lines = [raw.strip() for raw in text.splitlines()]
    followed = [i for i in range(len(lines) - 1) if lines[i] and lines[i + 1]]
    widths = Counter(_display_width(lines[i]) for i in followed)
    wrap = 0
    if widths:
        width, count = max(widths.items(), key=lambda wc: (wc[1], wc[0]))
        if width >= _MIN_WRAP_WIDTH and count >= _MIN_WRAPPED_LINES and count >= len(followed) / 4:
            wrap = width
    out: list[tuple[int, str]] = []
    joining = False
    for pos, line in enumerate(lines):
        if not line:
            joining = False
            continue
        if joining:
            sep = "" if _CJK.match(line) or not out[-1][1][-1:].isascii() else " "
            out[-1] = (out[-1][0], out[-1][1] + sep + line)
        else:
            out.append((pos, line))
        # Within 3 half-width cells of the wrap width: digits and Latin letters are narrow.
        joining = bool(wrap) and _display_width(line) >= wrap - 3 and not _ends_complete(line)
    return out


def _read_items(text: str) -> list[_Block | _Para]:
    """Title blocks and paragraphs in page order; exact duplicate paragraphs dropped."""
    items: list[_Block | _Para] = []
    seen: set[str] = set()
    for pos, line in _logical_lines(text):
        kind = _header_kind(line)
        if kind is None:
            if len(line) >= _MIN_DUPLICATE_CHARS and line in seen:
                continue  # the same paragraph printed twice
            seen.add(line)
            items.append(_make_para(pos, line))
            continue
        last = items[-1] if items else None
        # A title line after a subtitle/byline/date starts the next block.
        if not isinstance(last, _Block) or (kind == "title" and any(k != "title" for k, _ in last.lines)):
            last = _Block(pos)
            items.append(last)
        last.lines.append((kind, line))
    return items


def _demote_section_headings(items: list[_Block | _Para]) -> list[_Block | _Para]:
    """In a plain article file, later one-line titles are the article's section headings.

    Plain means: a title block first, and none of a page's cues after it (本报讯, closing
    names, photo credits, more subtitles or bylines, a title without text under it).
    """
    if not items or not isinstance(items[0], _Block):
        return items
    paras = [i for i in items if isinstance(i, _Para)]
    if any(p.opener or p.closer or p.credit for p in paras):
        return items
    later = [i for i, item in enumerate(items) if i > 0 and isinstance(item, _Block)]
    for i in later:
        block = items[i]
        if len(block.lines) != 1 or block.lines[0][0] != "title" or i + 1 == len(items):
            return items
        if not isinstance(items[i + 1], _Para):
            return items
    return [_Para(item.pos, item.lines[0][1], heading=True) if i in later else item for i, item in enumerate(items)]


# --- runs --------------------------------------------------------------------------------


@dataclass
class _Page:
    runs: list[_Run] = field(default_factory=list)
    photos: list[tuple[_Block | None, _Para]] = field(default_factory=list)
    orphans: list[_Block] = field(default_factory=list)
    starts: int = 0  # how many articles visibly start here (titles, openers, photos)


def _cut_runs(items: list[_Block | _Para]) -> _Page:
    page = _Page()
    pending: _Block | None = None  # a title block waiting for its body
    run: _Run | None = None  # the open run, if the last boundary did not close it
    interrupted: _Para | None = None  # text a photo caption interrupted
    for item in items:
        if isinstance(item, _Block):
            if pending is not None:
                page.orphans.append(pending)
            pending, run, interrupted = item, None, None
            page.starts += 1
            continue
        if item.credit:  # a photo caption: its own article, titled by the block above it
            page.photos.append((pending, item))
            page.starts += pending is None
            interrupted = run.paras[-1] if run is not None else interrupted
            pending, run = None, None
            continue
        if run is None or pending is not None or item.opener:
            page.starts += bool(item.opener) and pending is None
            after_photo = interrupted if pending is None and not item.opener else None
            run = _Run([], block=pending, after_photo=after_photo)
            page.runs.append(run)
            pending, interrupted = None, None
        run.paras.append(item)
        if item.closer:  # closing author parentheses end the article
            run = None
    if pending is not None:
        page.orphans.append(pending)
    return page


def _is_article_start(run: _Run, para: _Para) -> bool:
    return para is run.paras[0] and (run.block is not None or bool(para.opener))


# --- content similarity --------------------------------------------------------------------


class _Lexicon:
    """jieba tokens with inverse document frequencies over one page."""

    def __init__(self, documents: Sequence[str]):
        self._tokens: dict[str, list[str]] = {}
        self._vectors: dict[str, dict[str, float]] = {}
        df = Counter(t for doc in documents for t in set(self.tokens(doc)))
        n = len(documents)
        # Smoothed (+1): on a short page a word in every paragraph still counts for something.
        self._idf = {t: math.log((n + 1) / (c + 1)) + 1 for t, c in df.items()}
        self._unseen = math.log(n + 1) + 1

    def tokens(self, text: str) -> list[str]:
        if text not in self._tokens:
            # Words of two or more characters carry the topic; single characters are noise.
            # Search mode adds the parts of compounds (苹果园 -> 苹果, 果园), which titles
            # and bodies often share.
            words = _jieba().lcut_for_search(text)
            self._tokens[text] = [w for w in words if len(w) >= 2 and (_CJK.search(w) or w.isalnum())]
        return self._tokens[text]

    def idf(self, token: str) -> float:
        return self._idf.get(token, self._unseen)

    def _vector(self, text: str) -> dict[str, float]:
        if text not in self._vectors:
            counts = Counter(self.tokens(text))
            self._vectors[text] = {t: (1 + math.log(c)) * self.idf(t) for t, c in counts.items()}
        return self._vectors[text]

    def cosine(self, a: str, b: str) -> float:
        va, vb = self._vector(a), self._vector(b)
        dot = sum(w * vb[t] for t, w in va.items() if t in vb)
        norm = math.sqrt(sum(w * w for w in va.values()) * sum(w * w for w in vb.values()))
        return dot / norm if norm else 0.0

    def coverage(self, part: str, whole: str) -> float:
        """Share of `part`'s token weight that also occurs in `whole`."""
        mine = set(self.tokens(part))
        total = sum(self.idf(t) for t in mine)
        shared = mine & set(self.tokens(whole))
        return sum(self.idf(t) for t in shared) / total if total else 0.0


def _sentences(text: str) -> list[str]:
    out, pos = [], 0
    for m in _SENTENCE_END.finditer(text):
        out.append(text[pos : m.end()])
        pos = m.end()
    if pos < len(text):
        out.append(text[pos:])
    return [s for s in out if s.strip()]


def _tail(text: str, n: int = 2) -> str:
    return "".join(_sentences(text)[-n:])


def _head(text: str, n: int = 2) -> str:
    return "".join(_sentences(text)[:n])


def _starts_mid_sentence(text: str) -> bool:
    """「和调研活动…」「展的重要保障…」: the first word cannot open a sentence.

    A column break cuts anywhere, often inside a word; what is left at the top of the next
    column then starts with a conjunction, a particle, or a lone character that jieba
    tags as a bound morpheme or a content word which rarely stands alone at a start.
    """
    head = text.lstrip()[:12]
    if not head or not _CJK.match(head):
        return False
    word, flag = _first_word(head)
    if word in _MID_SENTENCE_WORDS:
        return True
    if len(word) != 1:
        return False
    if flag.endswith("g"):  # 「展」 of 「发展」: a morpheme that is not a word by itself
        return True
    return flag[:1] in ("n", "v", "a") and word not in _SENTENCE_OPENING_CHARS


# --- global best choice ---------------------------------------------------------------------


def _best_choice(
    rows: Sequence[Hashable],
    options: dict[Hashable, list[tuple[float, Hashable]]],
    valid: Callable[[dict], bool] = lambda chosen: True,
) -> dict:
    """Pick at most one option per row, each option used once, maximizing the total score.

    `options[row]` is sorted best first. Exhaustive for a handful of rows (a page has few
    cut paragraphs and orphan titles), greedy by score beyond that. `valid` vetoes a whole
    choice (a reading-order cycle); the empty choice is always allowed.
    """
    if len(rows) > _EXHAUSTIVE_ROWS:
        return _greedy_choice(rows, options, valid)
    best: dict = {}
    best_total = 0.0
    chosen: dict = {}
    # What the remaining rows could add at most: prunes hopeless branches.
    bound = [0.0] * (len(rows) + 1)
    for i in range(len(rows) - 1, -1, -1):
        bound[i] = bound[i + 1] + max((s for s, _ in options.get(rows[i], [])), default=0.0)

    def search(i: int, total: float) -> None:
        nonlocal best, best_total
        if total + bound[i] <= best_total + 1e-12:
            return
        if i == len(rows):
            if total > best_total + 1e-12 and valid(chosen):
                best, best_total = dict(chosen), total
            return
        row = rows[i]
        used = set(chosen.values())
        for score, option in options.get(row, []):
            if option not in used:
                chosen[row] = option
                search(i + 1, total + score)
                del chosen[row]
        search(i + 1, total)

    search(0, 0.0)
    return best


def _greedy_choice(rows, options, valid) -> dict:
    ranked = sorted(
        ((score, r, option) for r, row in enumerate(rows) for score, option in options.get(row, [])),
        key=lambda x: (-x[0], x[1]),
    )
    chosen: dict = {}
    for _score, r, option in ranked:
        row = rows[r]
        if row in chosen or option in chosen.values():
            continue
        chosen[row] = option
        if not valid(chosen):
            del chosen[row]
    return chosen


# --- continuations ----------------------------------------------------------------------------


def _is_cut(para: _Para) -> bool:
    """No ending punctuation: the paragraph goes on elsewhere (a column break)."""
    return bool(para.text) and not para.closer and not para.heading and not _ends_complete(para.text)


def _link_score(cut: _Para, cand: _Para, above: _Para | None, lex: _Lexicon) -> float | None:
    fit = lex.cosine(_tail(cut.text), _head(cand.text))
    mid = _starts_mid_sentence(cand.text)
    if fit < _MIN_LINK_FIT and not mid:
        return None
    score = fit
    if above is cut:
        score += _ADJACENT_BONUS
    elif above is not None:
        # A paragraph that reads on well from the one printed above it is not a column top;
        # nor, as a rule, is one in the middle of flowing text (under a complete paragraph)
        # unless it visibly starts mid-sentence.
        score -= lex.cosine(_tail(above.text), _head(cand.text))
        if not mid and not _is_cut(above):
            score -= _IN_FLOW_PENALTY
    if mid:
        score += _MID_SENTENCE_BONUS
    return score if score >= _MIN_LINK_SCORE else None


def _find_links(runs: list[_Run], lex: _Lexicon) -> dict[_Para, _Para]:
    """Cut paragraph -> its continuation, best over the whole page, without cycles."""
    above: dict[_Para, _Para] = {}
    for run in runs:
        for a, b in zip(run.paras, run.paras[1:]):
            above[b] = a
    cuts = [p for run in runs for p in run.paras if _is_cut(p)]
    # An article's first paragraph (under its title, or with 本报讯) continues nothing.
    candidates = [p for run in runs for p in run.paras if p.text and not _is_article_start(run, p)]
    options: dict[_Para, list[tuple[float, _Para]]] = {}
    for cut in cuts:
        scored = []
        for cand in candidates:
            if cand is not cut and (score := _link_score(cut, cand, above.get(cand), lex)) is not None:
                scored.append((score, cand))
        scored.sort(key=lambda x: (-x[0], x[1].pos))
        options[cut] = scored[:_LINK_OPTIONS]
    return _best_choice(cuts, options, valid=lambda links: not _has_cycle(runs, links))


def _dangling_starts(page: _Page, links: dict[_Para, _Para], lex: _Lexicon) -> set[_Para]:
    """Paragraphs that start mid-sentence, continue nothing on the page, and share few words
    with the text above them: the rest of an article whose beginning is not here.

    Only on pages where several articles start: a single article is never cut this way.
    """
    if page.starts < 2:
        return set()
    targets = set(links.values())
    found = set()
    for run in page.runs:
        for i, para in enumerate(run.paras[1:], start=1):
            if para in targets or not para.text or not _starts_mid_sentence(para.text):
                continue
            before = "\n".join(p.text for p in run.paras[max(0, i - _COHESION_WINDOW) : i])
            after = "\n".join(p.text for p in run.paras[i : i + _COHESION_WINDOW])
            if lex.cosine(before, after) < _MAX_SPLIT_COHESION:
                found.add(para)
    return found


def _cut_pieces(runs: list[_Run], links: dict[_Para, _Para], dangling: set[_Para]) -> list[_Piece]:
    """Split runs where a continuation starts, after a cut paragraph, before a dangling start."""
    targets = set(links.values())
    pieces: list[_Piece] = []
    for run in runs:
        piece: _Piece | None = None
        for i, para in enumerate(run.paras):
            if i == 0:
                reason = "start"
            elif para in targets:
                reason = "target"
            elif para in dangling:
                reason = "dangling"
            elif run.paras[i - 1] in links:
                reason = "after_break"
            else:
                assert piece is not None
                piece.paras.append(para)
                continue
            piece = _Piece(run, [para], reason)
            pieces.append(piece)
    return pieces


def _chain_next(pieces: list[_Piece], links: dict[_Para, _Para]) -> dict[_Piece, _Piece]:
    piece_of = {p: piece for piece in pieces for p in piece.paras}
    return {piece_of[a]: piece_of[b] for a, b in links.items()}


def _has_cycle(runs: list[_Run], links: dict[_Para, _Para]) -> bool:
    pieces = _cut_pieces(runs, links, set())
    nxt = _chain_next(pieces, links)
    for start in nxt:
        seen, piece = set(), start
        while piece in nxt:
            if piece in seen:
                return True
            seen.add(piece)
            piece = nxt[piece]
    return False


def _chains(pieces: list[_Piece], links: dict[_Para, _Para]) -> list[_Group]:
    nxt = _chain_next(pieces, links)
    continued = set(nxt.values())
    groups, placed = [], set()
    for piece in pieces:
        if piece in continued:
            continue
        chain = [piece]
        while chain[-1] in nxt and nxt[chain[-1]] not in placed and nxt[chain[-1]] not in chain:
            chain.append(nxt[chain[-1]])
        placed.update(chain)
        groups.append(_Group(chain))
    # Links are acyclic, so every piece is placed; this only guards against losing text.
    groups += [_Group([piece]) for piece in pieces if piece not in placed]
    for group in groups:
        if group.head.reason == "start":
            group.block = group.head.run.block
    return groups


# --- titles for title-less chains -------------------------------------------------------------


def _assign_orphans(orphans: list[_Block], groups: list[_Group], lex: _Lexicon) -> None:
    """Give orphan title blocks the title-less chains whose words they share most."""
    titleless = [g for g in groups if g.block is None]
    bodies = {g: "\n".join(p.text for p in g.paras()) for g in titleless}
    options = {}
    for block in orphans:
        scored = [(lex.coverage(block.topic_text(), bodies[g]), g) for g in titleless]
        scored = [(s, g) for s, g in scored if s >= _MIN_TITLE_COVERAGE]
        scored.sort(key=lambda x: (-x[0], x[1].pos()))
        options[block] = scored[:_LINK_OPTIONS]
    for block, group in _best_choice(orphans, options).items():
        group.block = block


def _text_above(piece: _Piece, *, weak: bool = False) -> _Para | None:
    """The paragraph a piece may simply continue: the one printed above it when only a column
    break (a cut paragraph whose continuation is elsewhere) or a photo separates them.

    `weak` also gives it for a continuation's piece, whose own place is after its cut: used
    only for a set of chains that reaches nothing else.
    """
    paras = piece.run.paras
    if piece.reason == "after_break" or (weak and piece.reason == "target"):
        return paras[paras.index(piece.paras[0]) - 1]
    if piece.reason == "start" and piece.run.block is None and not piece.paras[0].opener:
        return piece.run.after_photo
    return None


def _merge_leftovers(groups: list[_Group]) -> list[list[_Group]]:
    """Articles as lists of chains: a title-less chain continues the article of the text
    printed above it if only a column or photo break separates them; else it stands alone."""
    group_of = {p: g for g in groups for piece in g.pieces for p in piece.paras}
    parent = {g: g for g in groups}

    def root(g: _Group) -> _Group:
        while parent[g] is not g:
            g = parent[g]
        return g

    def attach(weak: bool) -> bool:
        """Merge one title-less set into the set above one of its pieces."""
        titled = {root(g) for g in groups if g.block is not None}
        for g in groups:
            if root(g) in titled:
                continue
            for piece in g.pieces:
                above = _text_above(piece, weak=weak)
                if above is not None and root(group_of[above]) is not root(g):
                    parent[root(g)] = root(group_of[above])
                    return True
        return False

    # One merge at a time: the set above may itself have just been merged somewhere.
    while attach(weak=False) or attach(weak=True):
        pass
    articles: dict[_Group, list[_Group]] = {}
    for g in groups:
        articles.setdefault(root(g), []).append(g)
    # The titled chain (or else the first one) leads; the others follow in page order.
    return [sorted(gs, key=lambda g: (g.block is None, g.pos())) for gs in articles.values()]


# --- output ------------------------------------------------------------------------------------


def _looks_like_column(first: str, second: str) -> bool:
    """「政协工作动态」 above a title: a short section name, not a kicker."""
    if len(first) > _MAX_COLUMN_CHARS:
        return False
    return first.endswith(_COLUMN_SUFFIXES) or 2 * len(first) <= len(second)


def _header_fields(block: _Block | None) -> dict[str, str]:
    if block is None:
        return {"title": "", "subtitle": "", "column": "", "byline": "", "date": ""}
    titles = block.titles()
    column = titles.pop(0) if len(titles) >= 2 and _looks_like_column(titles[0], titles[1]) else ""
    return {
        "title": titles[-1] if titles else "",
        # Kicker lines above the title, then the —— subtitle.
        "subtitle": "\n".join(titles[:-1] + block.of_kind("sub")),
        "column": column,
        "byline": " ".join(block.of_kind("byline")),
        "date": " ".join(block.of_kind("date")),
    }


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def _article(chains: list[_Group], links: dict[_Para, _Para]) -> ParsedArticle:
    block = next((g.block for g in chains if g.block is not None), None)
    fields = _header_fields(block)
    paragraphs: list[str] = []
    openers, closers = [], []
    prev: _Para | None = None
    for para in (p for g in chains for p in g.paras()):
        openers.append(para.opener)
        closers.append(para.closer)
        if prev is not None and links.get(prev) is para and paragraphs:
            paragraphs[-1] += para.text  # the two halves of a paragraph cut by a column break
        elif para.text:
            paragraphs.append(para.text)
        prev = para
    fields["byline"] = _join(fields["byline"], *openers, *closers)
    return ParsedArticle(paragraphs=paragraphs, kind="article" if fields["title"] else "fragment", **fields)


def _photo(block: _Block | None, para: _Para) -> ParsedArticle:
    fields = _header_fields(block)
    fields["byline"] = _join(fields["byline"], para.opener, para.credit)
    return ParsedArticle(paragraphs=[para.text] if para.text else [], kind="photo", **fields)


def split_page(text: str) -> list[ParsedArticle]:
    """Articles of a page dump (or of a single-article file), in page order."""
    items = _demote_section_headings(_read_items(text))
    if not items:
        return []
    page = _cut_runs(items)
    documents = [p.text for run in page.runs for p in run.paras]
    documents += [b.topic_text() for b in page.orphans] + [p.text for _, p in page.photos]
    lex = _Lexicon(documents)

    links = _find_links(page.runs, lex)
    dangling = _dangling_starts(page, links, lex)
    groups = _chains(_cut_pieces(page.runs, links, dangling), links)
    _assign_orphans(page.orphans, groups, lex)

    out: list[tuple[int, ParsedArticle]] = []
    for chains in _merge_leftovers(groups):
        positions = [g.pos() for g in chains] + [g.block.pos for g in chains if g.block is not None]
        out.append((min(positions), _article(chains, links)))
    used = {g.block for g in groups if g.block is not None}
    out += [(b.pos, _article_from_block(b)) for b in page.orphans if b not in used]
    out += [(min(p.pos, b.pos if b else p.pos), _photo(b, p)) for b, p in page.photos]
    out.sort(key=lambda x: x[0])
    return [a for _, a in out]


def _article_from_block(block: _Block) -> ParsedArticle:
    """A title whose body is not on the page: kept, so no text is lost."""
    fields = _header_fields(block)
    return ParsedArticle(kind="article" if fields["title"] else "fragment", **fields)
