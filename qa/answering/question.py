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
    r"(什么时候|什么地方|什么人|为什么|是什么|什么|哪一年|哪一天|哪个|哪些|哪位|哪里|哪儿|哪|谁|何时|何地|何处|多少|几|如何|怎么样|怎样|怎么|是否|吗|呢|呀|请问)"
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
    qtype = "other"
    for name, pattern in _TYPES:
        if pattern.search(norm):
            qtype = name
            break
    m = WH_PATTERN.search(norm)
    return QuestionInfo(
        text=question, normalized=norm, tokens=tuple(tokenize(norm)), qtype=qtype,
        wh_match=(m.start(), m.end()) if m else None,
    )


def char_bigrams(text: str) -> set[str]:
    chars = [c for c in text if c.isalnum()]
    return {chars[i] + chars[i + 1] for i in range(len(chars) - 1)}
