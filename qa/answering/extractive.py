"""The offline answerer: pick the best-supported sentences from the retrieved passages.

No language model. Each sentence of a passage is scored by how much of the question it covers
(IDF-weighted words and character bigrams, with its passage's title as context), nudged by its
passage's retrieval rank. The answer is
the best sentence plus neighbours that fit, each cited by the exact span it came from; for
who/when/how-many/where/which questions a short answer is pulled out of that sentence. When the
best sentence leaves the question's distinctive words uncovered, it abstains and shows the
nearest passages instead of guessing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

from qa.answering.question import QuestionInfo, analyse, char_bigrams
from qa.answering.short_answer import TYPED, extract_short_answer, find_typed
from qa.answering.types import Answer, Citation, Source, source_from_hit
from qa.chunking import sentence_spans
from vectorstore.keyword import is_name_like, normalize
from vectorstore.records import ScoredChunk

# normalize() is pure and costs ~0.1 ms a sentence (NFKC + zhconv); the same passages come back often.
_normalize = lru_cache(maxsize=8192)(normalize)


@dataclass
class Sentence:
    article_id: str
    title: str
    start: int  # offsets in the article text
    end: int
    text: str
    passage_rank: int
    passage: str  # title + text of the chunk it was read from, normalized
    score: float = 0.0
    coverage: float = 0.0
    # The name/date/number/place the question asks for, found in this sentence ("" none); None: not looked for yet.
    typed: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ExtractiveParams:
    passages: int = 5  # how many top passages to read sentences from
    w_words: float = 1.0
    w_bigrams: float = 0.6
    w_rank: float = 0.15
    w_type: float = 0.2
    title_credit: float = 0.8  # how much a question word found only in the passage's title counts
    neighbour_ratio: float = 0.0  # add a neighbour sentence only if it scores at least this share of the best
    # Abstention. Shares are of the question's IDF mass. Tuned on CMRC 2018 trial questions against an
    # index that holds their articles (answerable) and one that holds only the other half (mostly not):
    # 3.1% of answerable questions abstain, 92% of unanswerable ones do (see README, "Measured").
    min_sentence_coverage: float = 0.4  # the best sentence (with its title) must cover this much of the question
    max_absent_share: float = 0.3  # question words the corpus never uses (a place, a name) may weigh this much


class ExtractiveAnswerer:
    name = "extractive"

    def __init__(self, docstore, max_chars: int = 200, params: ExtractiveParams | None = None):
        self.docs = docstore
        self.max_chars = max_chars
        self.p = params or ExtractiveParams()

    # -- scoring -------------------------------------------------------------------------------
    def _idf(self, tokens: tuple[str, ...]) -> tuple[dict[str, float], dict[str, int]]:
        n = max(self.docs.count_chunks(), 1)
        df = self.docs.document_frequencies(tokens)
        return {t: math.log((n + 1) / (df.get(t, 0) + 0.5)) for t in tokens}, df

    def _sentences(self, hits: list[ScoredChunk]) -> list[Sentence]:
        seen: set[tuple[str, int]] = set()
        out: list[Sentence] = []
        for h in hits[: self.p.passages]:
            c = h.chunk
            passage = _normalize(f"{c.title} {c.text}")
            for span in sentence_spans(c.text):
                key = (c.article_id, c.start + span.start)
                if key in seen:  # overlapping chunks share sentences
                    continue
                seen.add(key)
                out.append(Sentence(c.article_id, c.title, c.start + span.start, c.start + span.end,
                                    c.text[span.start : span.end], h.rank, passage))
        return out

    def _score(self, q: QuestionInfo, idf: dict[str, float], sentences: list[Sentence]) -> None:
        """Scores without the answer-type bonus; `_resolve` adds it to the few sentences whose score is read."""
        total = sum(idf.values()) or 1.0
        q_bigrams = char_bigrams(_without_wh(q))
        title_grams: dict[str, set[str]] = {}
        for s in sentences:
            s_norm = _normalize(s.text)
            title = _normalize(s.title)
            if title not in title_grams:
                title_grams[title] = char_bigrams(title)
            in_sentence = {t for t in idf if t in s_norm}
            # The title is every sentence's context: 「它的根部…」 is about the 大果西番莲 of the title, so
            # a subject named only there still counts, and the words that tell sentences apart decide.
            in_title = sum(idf[t] for t in idf if t not in in_sentence and t in title) / total
            s.coverage = sum(idf[t] for t in in_sentence) / total + self.p.title_credit * in_title
            s_grams = char_bigrams(s_norm)
            bigram = (
                (len(q_bigrams & s_grams) + self.p.title_credit * len((q_bigrams - s_grams) & title_grams[title]))
                / len(q_bigrams) if q_bigrams else 0.0
            )
            s.score = self.p.w_words * s.coverage + self.p.w_bigrams * bigram + self.p.w_rank / s.passage_rank

    def _resolve(self, q: QuestionInfo, s: Sentence) -> Sentence:
        """Add the answer-type bonus to `s` once: a who/when/how-many/where question wants a sentence that
        holds a name/date/number/place. Checking a sentence can mean a part-of-speech pass (slow), so it is
        done only for sentences whose final score is read: candidates for the best, and its neighbours."""
        if s.typed is None:
            s.typed = find_typed(q.qtype, s.text, q.text) if self.p.w_type and q.qtype in TYPED else ""
            if s.typed:
                s.score += self.p.w_type
        return s

    def _best(self, q: QuestionInfo, sentences: list[Sentence]) -> Sentence:
        """max(score, then earlier passage, then earlier offset) over the final scores, checking the type
        only while a sentence's score plus the bonus could still reach the best final score so far."""
        def key(s: Sentence):
            return (s.score, -s.passage_rank, -s.start)

        bonus = max(self.p.w_type, 0.0) if q.qtype in TYPED else 0.0  # the most the type check can add
        best = None
        for s in sorted(sentences, key=key, reverse=True):
            if best is not None and s.score + bonus < best.score:
                break  # neither this one nor any lower one can beat `best`, with or without the bonus
            self._resolve(q, s)
            if best is None or key(s) > key(best):
                best = s
        return best

    # -- answering -----------------------------------------------------------------------------
    def answer(self, question: str, hits: list[ScoredChunk], k: int) -> Answer:
        q = analyse(question)
        sources = [source_from_hit(h) for h in hits[:k]]
        sentences = self._sentences(hits)
        idf, df = self._idf(q.tokens)
        self._score(q, idf, sentences)
        if not sentences:
            return Answer(question, "资料中没有找到与这个问题相关的内容。", True, [], sources)
        best = self._best(q, sentences)
        if self._should_abstain(q, idf, df, best):
            return Answer(question, _abstain_text(sources), True, [], sources)
        short = extract_short_answer(q, best.text)
        chosen = self._expand(q, best, sentences, self.max_chars - (len(short) + 1 if short else 0))
        short_from = best
        if not short and q.qtype in TYPED:
            # The name/date/place may stand in a neighbouring sentence: 「…主题是“我们要上市”…」 then
            # 「活动当天，…赶到西陵区三峡创客产业园。」
            room = self.max_chars - sum(len(s.text) for s in chosen) - 1
            def found(s: Sentence, strict: bool) -> str:
                if not strict and self.p.w_type and s.typed is not None:
                    return s.typed  # already looked for by _resolve
                return find_typed(q.qtype, s.text, q.text, strict=strict)

            # A generator: stop looking at the first fit.
            candidates = (
                (s, found(s, strict))
                for strict in (True, False) for s in sorted(chosen, key=lambda s: -s.score)
            )
            short, short_from = next(((f, s) for s, f in candidates if f and len(f) <= room), ("", best))
        text, citations = self._compose(chosen, short, short_from)
        return Answer(question, text, False, citations, sources, short_answer=short)

    def _should_abstain(self, q: QuestionInfo, idf: dict[str, float], df: dict[str, int], best: Sentence) -> bool:
        if not idf:
            return False  # nothing to check against: a question of only stop words
        # Distinctive question words that the corpus never uses (a place, a name): the articles cannot
        # be about them, however similar the rest of the question looks.
        return self.absent_share(idf, df, best) >= self.p.max_absent_share or best.coverage < self.p.min_sentence_coverage

    @staticmethod
    def absent_share(idf: dict[str, float], df: dict[str, int], best: Sentence) -> float:
        """The IDF share of the names the question is about that the corpus never mentions."""
        known = [t for t in idf if df.get(t, 0) > 0]
        return sum(
            w for t, w in idf.items()
            if df.get(t, 0) == 0 and t not in best.passage and is_name_like(t) and not _spelled_over(t, known)
        ) / (sum(idf.values()) or 1.0)

    def _expand(self, q: QuestionInfo, best: Sentence, sentences: list[Sentence], budget: int) -> list[Sentence]:
        """The best sentence, then adjacent sentences of the same article while they fit."""
        same = sorted((s for s in sentences if s.article_id == best.article_id), key=lambda s: s.start)
        chosen = [best]
        budget -= len(best.text)
        i = same.index(best)
        left, right = i - 1, i + 1
        while budget > 0:
            options = []
            if left >= 0:
                options.append(("l", same[left]))
            if right < len(same):
                options.append(("r", same[right]))
            options = [o for o in options if len(o[1].text) <= budget
                       and self._resolve(q, o[1]).score >= self.p.neighbour_ratio * best.score]
            if not options:
                break
            side, s = max(options, key=lambda o: o[1].score)
            chosen.append(s)
            budget -= len(s.text)
            if side == "l":
                left -= 1
            else:
                right += 1
        return sorted(chosen, key=lambda s: s.start)

    def _compose(self, chosen: list[Sentence], short: str, short_from: Sentence) -> tuple[str, list[Citation]]:
        """The answer text (at most max_chars without markers) and one citation per sentence."""
        citations: list[Citation] = []
        parts: list[str] = []
        budget = self.max_chars - (len(short) + 1 if short else 0)
        best_n = 1
        for s in chosen:
            n = len(citations) + 1
            citations.append(Citation(s.article_id, s.title, s.text, s.start, s.end, n=n))
            if s is short_from:
                best_n = n
            shown = s.text if len(s.text) <= budget else s.text[: max(budget - 1, 0)] + "…"
            budget -= len(shown)
            parts.append(_cite(shown, n))
        head = f"{short}[{best_n}]。" if short else ""
        return head + "".join(parts), citations


def _spelled_over(token: str, others: list[str]) -> bool:
    """Whether every character of `token` lies inside some other (known) question token.

    jieba's search mode emits pieces such as 「测数据」 from 「监测数据」; such a piece is not a word the
    articles lack, so it must not count as a missing topic.
    """
    covered = [False] * len(token)
    for o in others:
        for i in range(len(token)):
            for j in range(i + 1, len(token) + 1):
                if j - i <= len(o) and token[i:j] in o:
                    covered[i:j] = [True] * (j - i)
    return all(covered)


def _cite(text: str, n: int) -> str:
    """Put the marker before the sentence's final stop: 「……防止返贫[1]。」, 「……平台”[1]。」."""
    end = len(text)
    while end > 0 and text[end - 1] in "。！？；!?;…":
        end -= 1
    return f"{text[:end]}[{n}]{text[end:]}"


def _without_wh(q: QuestionInfo) -> str:
    from qa.answering.question import WH_PATTERN

    return WH_PATTERN.sub("", q.normalized)


def _abstain_text(sources: list[Source]) -> str:
    if not sources:
        return "资料中没有找到这个问题的答案。"
    return "资料中没有找到这个问题的答案，以下是最接近的段落，仅供参考。"
