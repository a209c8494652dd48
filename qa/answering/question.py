"""What a question asks for: its content words and, for who/when/how-many/where questions, its type."""

from __future__ import annotations

import re
from dataclasses import dataclass

from vectorstore.keyword import normalize, tokenize

# Order matters: the first pattern that matches decides the type.
_TYPES: list[tuple[str, re.Pattern[str]]] = [
    ("when", re.compile(r"(何时|什么时候|哪一?年|哪个?月|哪一?天|几月|几号|几日|几年|哪个时间|什么时间|何年|when)")),
    ("number", re.compile(r"(多少|几[个位名人次家项条件岁年天种倍层座所批]?|多[大长高远重久深宽]|how (many|much))")),
    ("person", re.compile(r"(谁|哪位|哪些人|什么人|何人|who)")),
    ("place", re.compile(r"(哪里|哪儿|何处|何地|什么地方|在哪|哪个(国家|城市|省|地区)|where)")),
    ("which", re.compile(r"(哪[个些一种家所]?|什么|啥|which|what)")),
]

# Question particles and wh-words, removed before matching the question's wording against a sentence.
WH_PATTERN = re.compile(
    r"(什么时候|什么地方|是什么样|什么样|什么人|为什么|是什么|什么|哪些地方|哪一年|哪一天|哪[个些位里儿部所种家年天件类座条]|哪|"
    r"由谁|是谁|谁|何时|何地|何处|为何|多少|多[大长高远久重]|几|如何|怎么样|怎样|怎么|是否|吗|呢|呀|请问)"
)
_TRAILING = re.compile(r"[？?。！!\s]+$")


@dataclass(frozen=True)
class QuestionInfo:
    text: str
    normalized: str
    tokens: tuple[str, ...]
    qtype: str  # when / number / person / place / which / other
    wh_match: tuple[int, int] | None  # span of the wh-word in `normalized`


def analyse(question: str) -> QuestionInfo:
    norm = _TRAILING.sub("", normalize(question.strip()))
    # A follow-up arrives as 「previous question? this question」: what is asked is in the last clause.
    last = re.split(r"[?？。!！]\s*", norm)[-1]
    offset = len(norm) - len(last)
    qtype = "other"
    for name, pattern in _TYPES:
        if pattern.search(last):
            qtype = name
            break
    m = WH_PATTERN.search(last)
    return QuestionInfo(
        text=question, normalized=norm, tokens=content_tokens(WH_PATTERN.sub(" ", norm)), qtype=qtype,
        wh_match=(offset + m.start(), offset + m.end()) if m else None,
    )


def content_tokens(text: str) -> tuple[str, ...]:
    """Distinct search tokens, minus compounds that other tokens already spell out.

    jieba's search mode gives 「本科毕业」 as 本科, 毕业 and 本科毕业; keeping only the parts stops a
    compound the articles never use verbatim from looking like a missing topic.
    """
    toks = list(dict.fromkeys(tokenize(text)))
    return tuple(t for t in toks if not _spelled_by(t, [p for p in toks if p != t and len(p) < len(t) and p in t]))


def _spelled_by(word: str, parts: list[str]) -> bool:
    """Whether `word` is exactly a sequence of `parts` (e.g. 本科毕业 = 本科 + 毕业)."""
    reach = [True] + [False] * len(word)
    for i in range(len(word)):
        if reach[i]:
            for p in parts:
                if word.startswith(p, i):
                    reach[i + len(p)] = True
    return reach[len(word)]


def char_bigrams(text: str) -> set[str]:
    chars = [c for c in text if c.isalnum()]
    return {chars[i] + chars[i + 1] for i in range(len(chars) - 1)}
