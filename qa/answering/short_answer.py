"""Short answers inside a sentence: the name, date, number or place a question asks for.

Two cues, both from the question's own wording: the words right before the wh-word usually stand
right before the answer in the sentence (「汉中市副市长是谁」 → 「…汉中市副市长|李芳|介绍…」), and
the question type says what kind of token to take from there (a person name, a number, a date).
"""

from __future__ import annotations

import re

from qa.answering.question import QuestionInfo
from vectorstore.keyword import _jieba, normalize

_NUMBER = re.compile(
    r"(约|近|超过|逾)?[0-9０-９零〇一二两三四五六七八九十百千万亿.．,，]+(多|余)?"
    r"(万|亿)?(名|个|人|户|次|件|条|期|家|项|年|月|日|天|岁|元|万元|亿元|米|公里|千米|平方米|亩|分钟|小时|秒|倍|%|％|位|篇|所|座|种|台|辆|场|届|批|页|部)?"
)
_DATE = re.compile(
    r"([0-9０-９一二三四五六七八九十〇零]{2,4}年)?([0-9０-９一二三四五六七八九十]{1,2}月)?([0-9０-９一二三四五六七八九十]{1,3}[日号])?"
    r"|(今年|去年|明年|近日|日前|当天|上午|下午|[春夏秋冬]季?)"
)
_PLACE_SUFFIX = re.compile(r"[\u4e00-\u9fff]{2,16}(园|区|市|县|省|镇|村|乡|街道|馆|中心|广场|公园|大厦|学校|大学|会议室|基地)")
# A place that follows a verb of location or motion is the place something happens at.
_LOCATIVE = re.compile(
    r"(?:在|到|赶到|来到|位于|地处|坐落于|于|前往|举行于|落户)"
    r"([\u4e00-\u9fff]{2,16}(?:园|区|市|县|省|镇|村|乡|街道|馆|中心|广场|公园|大厦|学校|大学|会议室|基地))"
)
_PUNCT = "，。！？；：、,.!?;:“”‘’\"'（）()《》「」『』【】 \n"
_MAX_SHORT = 30


def _posseg(text: str):
    _jieba()
    import jieba.posseg as pseg

    return [(p.word, p.flag) for p in pseg.lcut(text)]


def _anchor_end(q: QuestionInfo, sentence: str) -> int | None:
    """End offset in `sentence` of the longest tail of the question's text before its wh-word."""
    if not q.wh_match:
        return None
    prefix = q.normalized[: q.wh_match[0]]
    prefix = re.sub(r"(在于|就是|是|为|在|于|有)$", "", prefix)
    for n in range(min(len(prefix), 12), 1, -1):
        pos = sentence.find(prefix[-n:])
        if pos >= 0:
            return pos + n
    return None


TYPED = ("person", "number", "when", "place")


def find_typed(qtype: str, text: str, question: str, *, strict: bool = False) -> str:
    """The first name/number/date/place in `text` that the question does not already contain.

    `strict` takes only strong evidence (for places: a place after 在/到/位于…).
    """
    if qtype == "person":
        for word, flag in _posseg(text):
            if flag == "nr" and len(word) >= 2 and word not in question:
                return word
    elif qtype == "number":
        for m in _NUMBER.finditer(text):
            if re.search(r"[0-9０-９一二两三四五六七八九十百千万]", m.group()) and m.group() not in question:
                return m.group().strip("，,")
    elif qtype == "when":
        for m in _DATE.finditer(text):
            if m.group() and m.group() not in question:
                return m.group()
    elif qtype == "place":
        for m in _LOCATIVE.finditer(text):
            if m.group(1) not in question:
                return m.group(1)
        if strict:
            return ""
        for m in _PLACE_SUFFIX.finditer(text):
            place = re.sub(r"^(赶到|来到|位于|在|于|到)", "", m.group())
            if place not in question:
                return place
        for word, flag in _posseg(text):
            if flag == "ns" and word not in question:
                return word
    return ""


def extract_short_answer(q: QuestionInfo, sentence: str) -> str:
    """A short answer from `sentence`, or "" when there is no confident one."""
    if q.qtype == "other":
        return ""
    s = normalize(sentence)
    if len(s) != len(sentence):  # offsets must stay valid in the original sentence
        s = sentence
    end = _anchor_end(q, s)
    # Look right after the anchor first (the usual order), then the whole sentence.
    regions = ([sentence[end:]] if end is not None else []) + [sentence]
    for region in regions:
        found = find_typed(q.qtype, region, q.text)
        if found:
            return found
    if q.qtype == "which" and end is not None:
        tail = sentence[end:]
        stop = next((i for i, ch in enumerate(tail) if ch in _PUNCT), len(tail))
        candidate = re.sub(r"^(在于|就是|是|为|了)", "", tail[:stop].strip())
        if 0 < len(candidate) <= _MAX_SHORT:
            return candidate
    return ""
