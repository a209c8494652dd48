"""The offline answerer: pick the best-supported sentences from the retrieved passages.

No language model. Each sentence of a passage is scored by how much of the question it covers
(IDF-weighted words and character bigrams), nudged by its passage's retrieval rank. The answer is
the best sentence plus neighbours that fit, each cited by the exact span it came from; for
who/when/how-many/where/which questions a short answer is pulled out of that sentence. When the
best sentence leaves the question's distinctive words uncovered, it abstains and shows the
nearest passages instead of guessing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from qa.answering.question import QuestionInfo, analyse, char_bigrams
from qa.answering.short_answer import extract_short_answer
from qa.answering.types import Answer, Citation, Source, source_from_hit
from qa.chunking import sentence_spans
from vectorstore.keyword import normalize, tokenize
from vectorstore.records import ScoredChunk


@dataclass
class Sentence:
    article_id: str
    title: str
    start: int  # offsets in the article text
    end: int
    text: str
    passage_rank: int
    score: float = 0.0
    coverage: float = 0.0


@dataclass(frozen=True)
class ExtractiveParams:
    passages: int = 5  # how many top passages to read sentences from
    w_words: float = 1.0
    w_bigrams: float = 0.6
    w_rank: float = 0.15
    neighbour_ratio: float = 0.0  # add a neighbour sentence only if it scores at least this share of the best
    min_coverage: float = 0.45  # below this share of the question's IDF mass covered, abstain
    absent_term_idf_share: float = 0.3  # a missing term this heavy (absent from the corpus) forces abstention


class ExtractiveAnswerer:
    name = "extractive"

    def __init__(self, docstore, max_chars: int = 200, params: ExtractiveParams | None = None):
        self.docs = docstore
        self.max_chars = max_chars
        self.p = params or ExtractiveParams()

    # -- scoring -------------------------------------------------------------------------------
    def _idf(self, tokens: tuple[str, ...]) -> dict[str, float]:
        n = max(self.docs.count_chunks(), 1)
        df = self.docs.document_frequencies(tokens)
        return {t: math.log((n + 1) / (df.get(t, 0) + 0.5)) for t in tokens}

    def _sentences(self, hits: list[ScoredChunk]) -> list[Sentence]:
        seen: set[tuple[str, int]] = set()
        out: list[Sentence] = []
        for h in hits[: self.p.passages]:
            c = h.chunk
            for span in sentence_spans(c.text):
                key = (c.article_id, c.start + span.start)
                if key in seen:  # overlapping chunks share sentences
                    continue
                seen.add(key)
                out.append(Sentence(c.article_id, c.title, c.start + span.start, c.start + span.end,
                                    c.text[span.start : span.end], h.rank))
        return out

    def _score(self, q: QuestionInfo, idf: dict[str, float], sentences: list[Sentence]) -> None:
        total = sum(idf.values()) or 1.0
        q_bigrams = char_bigrams(_without_wh(q))
        for s in sentences:
            s_norm = normalize(s.text)
            words = set(tokenize(s_norm))
            covered = sum(w for t, w in idf.items() if t in words or t in s_norm)
            s.coverage = covered / total
            bigram = len(q_bigrams & char_bigrams(s_norm)) / len(q_bigrams) if q_bigrams else 0.0
            s.score = self.p.w_words * s.coverage + self.p.w_bigrams * bigram + self.p.w_rank / s.passage_rank

    # -- answering -----------------------------------------------------------------------------
    def answer(self, question: str, hits: list[ScoredChunk], k: int) -> Answer:
        q = analyse(question)
        sources = [source_from_hit(h) for h in hits[:k]]
        sentences = self._sentences(hits)
        idf = self._idf(q.tokens)
        self._score(q, idf, sentences)
        if not sentences:
            return Answer(question, "资料中没有找到与这个问题相关的内容。", True, [], sources)
        best = max(sentences, key=lambda s: (s.score, -s.passage_rank, -s.start))
        if self._should_abstain(q, idf, best):
            return Answer(question, _abstain_text(sources), True, [], sources)
        chosen = self._expand(best, sentences)
        short = extract_short_answer(q, best.text)
        text, citations = self._compose(chosen, short)
        return Answer(question, text, False, citations, sources, short_answer=short)

    def _should_abstain(self, q: QuestionInfo, idf: dict[str, float], best: Sentence) -> bool:
        if not idf:
            return False  # nothing to check against: a question of only stop words
        total = sum(idf.values())
        best_norm = normalize(best.text)
        # A distinctive question word that the corpus never uses (a place, a name): the articles
        # cannot be about it, however similar the rest of the question looks.
        absent = [t for t in idf if self.docs.document_frequencies([t]).get(t, 0) == 0 and t not in best_norm]
        if any(idf[t] / total >= self.p.absent_term_idf_share for t in absent):
            return True
        return best.coverage < self.p.min_coverage

    def _expand(self, best: Sentence, sentences: list[Sentence]) -> list[Sentence]:
        """The best sentence, then adjacent sentences of the same article while they fit."""
        same = sorted((s for s in sentences if s.article_id == best.article_id), key=lambda s: s.start)
        chosen = [best]
        budget = self.max_chars - len(best.text)
        i = same.index(best)
        left, right = i - 1, i + 1
        while budget > 0:
            options = []
            if left >= 0:
                options.append(("l", same[left]))
            if right < len(same):
                options.append(("r", same[right]))
            options = [o for o in options if len(o[1].text) <= budget and o[1].score >= self.p.neighbour_ratio * best.score]
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

    def _compose(self, chosen: list[Sentence], short: str) -> tuple[str, list[Citation]]:
        """The answer text (at most max_chars without markers) and one citation per sentence."""
        citations: list[Citation] = []
        parts: list[str] = []
        budget = self.max_chars - (len(short) + 1 if short else 0)
        best_n = 1
        for s in chosen:
            n = len(citations) + 1
            citations.append(Citation(s.article_id, s.title, s.text, s.start, s.end, n=n))
            if s is chosen_best(chosen):
                best_n = n
            shown = s.text if len(s.text) <= budget else s.text[: max(budget - 1, 0)] + "…"
            budget -= len(shown)
            parts.append(_cite(shown, n))
        head = f"{short}[{best_n}]。" if short else ""
        return head + "".join(parts), citations


def chosen_best(chosen: list[Sentence]) -> Sentence:
    return max(chosen, key=lambda s: s.score)


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
