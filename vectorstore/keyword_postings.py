"""An in-memory mirror of the keyword index that scores BM25 exactly as SQLite FTS5's bm25() does.

FTS5 stays the persistent index and the source of truth; this mirror only makes the ranking fast.
FTS5 scores a query by visiting every matching row through its auxiliary-function API, about
0.6 µs a posting: at 100k chunks a question's 15k postings took 9 ms, the largest part of an
answer. Here the postings are numpy arrays, so the same scores cost well under a millisecond.

Same ranking, by construction: the formula, the constants, the order of the sums, the document
length (tokens over all columns) and the tie order (rowid) are FTS5's. tests/test_keyword_postings.py
holds the two to the same results.

The mirror catches up with writes from any process through DocStore's change log (rowids added and
deleted, in commit order). Not thread-safe by itself: DocStore serializes calls with a lock.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

# FTS5's constants (fts5_aux.c).
K1 = 1.2
B = 0.75
# Merge the postings added since the last build into the main arrays once they hold this many (or a
# tenth of the main arrays, if more): queries convert the added part from lists on every use.
MERGE_MIN_POSTINGS = 200_000
BUILD_BATCH_ROWS = 5_000


class KeywordPostings:
    def __init__(self, weights: Sequence[float]):
        self.weights = tuple(float(w) for w in weights)
        self.generation = -1  # the registry generation this mirror reflects
        self.seq = 0  # the last change-log entry applied
        self._vocab: dict[str, int] = {}
        # Main postings, term-major (CSR): term t's slots are slots[indptr[t]:indptr[t + 1]].
        self._indptr = np.zeros(1, dtype=np.int64)
        self._slots = np.zeros(0, dtype=np.int32)
        self._freqs = np.zeros(0, dtype=np.float32)  # weighted counts: title x weights[0] + body x weights[1]
        # Postings added since the main arrays were built: term id -> (slots, freqs).
        self._tail: dict[int, tuple[list[int], list[float]]] = {}
        self._tail_postings = 0
        # Per slot (one slot per chunk row ever seen; dead slots are dropped at the next merge).
        self._rowid = np.zeros(0, dtype=np.int64)
        self._doclen = np.zeros(0, dtype=np.float64)
        self._alive = np.zeros(0, dtype=bool)
        self._n_slots = 0
        self._slot_of: dict[int, int] = {}
        self._total_tokens = 0

    # -- size ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._slot_of)

    def nbytes(self) -> int:
        arrays = (self._indptr, self._slots, self._freqs, self._rowid, self._doclen, self._alive)
        return sum(a.nbytes for a in arrays)

    # -- building ------------------------------------------------------------------------------
    @classmethod
    def build(cls, rows: Iterable[tuple[int, str, str]], weights: Sequence[float]) -> KeywordPostings:
        """From (rowid, title tokens, body tokens) rows, tokens space-separated as stored in FTS5.

        Postings are gathered in batches of BUILD_BATCH_ROWS rows, each sorted by term, then scattered
        into the term-major arrays: peak memory under 3x the final arrays (one global argsort over
        every token took 7x, 635 MB at 100k chunks)."""
        self = cls(weights)
        w_title, w_body = self.weights
        vocab = self._vocab
        batches: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        term_ids, slot_ids, freqs = array("i"), array("i"), array("f")
        rowids: list[int] = []
        lengths: list[int] = []

        def flush() -> None:
            nonlocal term_ids, slot_ids, freqs
            t = np.frombuffer(term_ids, dtype=np.int32)
            order = np.argsort(t, kind="stable")  # stable: slots stay ascending within a term
            batches.append((t[order], np.frombuffer(slot_ids, dtype=np.int32)[order],
                            np.frombuffer(freqs, dtype=np.float32)[order]))
            term_ids, slot_ids, freqs = array("i"), array("i"), array("f")

        for slot, (rowid, title, body) in enumerate(rows):
            t_tokens, b_tokens = title.split(), body.split()
            freq = {t: n * w_body for t, n in Counter(b_tokens).items()}
            for t in t_tokens:
                freq[t] = freq.get(t, 0.0) + w_title
            term_ids.extend([vocab.setdefault(t, len(vocab)) for t in freq])
            slot_ids.extend([slot] * len(freq))
            freqs.extend(freq.values())
            rowids.append(rowid)
            lengths.append(len(t_tokens) + len(b_tokens))
            if len(rowids) % BUILD_BATCH_ROWS == 0:
                flush()
        flush()

        n = len(rowids)
        self._grow(n)
        self._rowid[:n] = rowids
        self._doclen[:n] = lengths
        self._alive[:n] = True
        self._n_slots = n
        self._slot_of = {r: s for s, r in enumerate(rowids)}
        self._total_tokens = int(sum(lengths))

        self._set_main(batches)
        return self

    def _set_main(self, batches: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        """The term-major main arrays from batches of (term, slot, freq) postings, each sorted by term, in
        slot order (so each term's slots stay ascending). Scattered batch by batch into arrays allocated
        once, so the peak is the batches plus the result, not a sort over all of them."""
        n_terms = len(self._vocab)
        counts = np.zeros(n_terms, dtype=np.int64)
        for t, _, _ in batches:
            counts += np.bincount(t, minlength=n_terms)
        self._indptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        self._slots = np.empty(int(self._indptr[-1]), dtype=np.int32)
        self._freqs = np.empty(int(self._indptr[-1]), dtype=np.float32)
        write = self._indptr[:-1].copy()
        while batches:
            t, s, f = batches.pop(0)
            in_batch = np.bincount(t, minlength=n_terms)
            first = np.concatenate(([0], np.cumsum(in_batch)[:-1]))
            pos = write[t] + (np.arange(len(t)) - first[t])
            self._slots[pos] = s
            self._freqs[pos] = f
            write += in_batch
        self._tail = {}
        self._tail_postings = 0

    def _grow(self, need: int) -> None:
        if need <= len(self._rowid):
            return
        size = max(need, 2 * len(self._rowid), 1024)
        for name, dtype in (("_rowid", np.int64), ("_doclen", np.float64), ("_alive", bool)):
            old = getattr(self, name)
            new = np.zeros(size, dtype=dtype)
            new[: len(old)] = old
            setattr(self, name, new)

    # -- changes -------------------------------------------------------------------------------
    def remove(self, rowid: int) -> None:
        slot = self._slot_of.pop(rowid, None)
        if slot is not None:
            self._alive[slot] = False
            self._total_tokens -= int(self._doclen[slot])

    def add(self, rowid: int, title: str, body: str) -> None:
        self.remove(rowid)  # a rowid reused after a delete
        t_tokens, b_tokens = title.split(), body.split()
        freq: dict[str, float] = {}
        for t in t_tokens:
            freq[t] = freq.get(t, 0.0) + self.weights[0]
        for t in b_tokens:
            freq[t] = freq.get(t, 0.0) + self.weights[1]
        slot = self._n_slots
        self._grow(slot + 1)
        self._n_slots += 1
        self._rowid[slot] = rowid
        self._doclen[slot] = len(t_tokens) + len(b_tokens)
        self._alive[slot] = True
        self._slot_of[rowid] = slot
        self._total_tokens += len(t_tokens) + len(b_tokens)
        for t, f in freq.items():
            slots, freqs = self._tail.setdefault(self._vocab.setdefault(t, len(self._vocab)), ([], []))
            slots.append(slot)
            freqs.append(f)
        self._tail_postings += len(freq)
        if self._tail_postings > max(MERGE_MIN_POSTINGS, len(self._slots) // 10):
            self.merge()

    def merge(self) -> None:
        """Fold the added postings into the main arrays and drop dead slots."""
        n_main_terms = len(self._indptr) - 1
        terms = [np.repeat(np.arange(n_main_terms, dtype=np.int32), np.diff(self._indptr))]
        slots, freqs = [self._slots], [self._freqs]
        for tid, (s, f) in self._tail.items():
            terms.append(np.full(len(s), tid, dtype=np.int32))
            slots.append(np.asarray(s, dtype=np.int32))
            freqs.append(np.asarray(f, dtype=np.float32))
        terms_a, slots_a, freqs_a = np.concatenate(terms), np.concatenate(slots), np.concatenate(freqs)
        alive = self._alive[: self._n_slots]
        keep = alive[slots_a]
        new_slot = np.cumsum(alive, dtype=np.int64) - 1
        terms_a, slots_a, freqs_a = terms_a[keep], new_slot[slots_a[keep]].astype(np.int32), freqs_a[keep]
        live = np.flatnonzero(alive)
        n = len(live)
        self._rowid, self._doclen = self._rowid[live].copy(), self._doclen[live].copy()
        self._alive = np.ones(n, dtype=bool)
        self._n_slots = n
        self._slot_of = {int(r): s for s, r in enumerate(self._rowid)}
        # Tail slots are newer than main slots, so a stable sort by term keeps slots ascending.
        order = np.argsort(terms_a, kind="stable")
        self._set_main([(terms_a[order], slots_a[order], freqs_a[order])])

    # -- queries -------------------------------------------------------------------------------
    def _postings(self, tid: int) -> tuple[np.ndarray, np.ndarray]:
        if tid < len(self._indptr) - 1:
            lo, hi = self._indptr[tid], self._indptr[tid + 1]
            slots, freqs = self._slots[lo:hi], self._freqs[lo:hi]
        else:
            slots, freqs = self._slots[:0], self._freqs[:0]
        extra = self._tail.get(tid)
        if extra:
            slots = np.concatenate((slots, np.asarray(extra[0], dtype=np.int32)))
            freqs = np.concatenate((freqs, np.asarray(extra[1], dtype=np.float32)))
        live = self._alive[slots]
        return slots[live], freqs[live]

    def document_frequencies(self, terms: Iterable[str]) -> dict[str, int]:
        out = {}
        for t in terms:
            tid = self._vocab.get(t)
            out[t] = 0 if tid is None else len(self._postings(tid)[0])
        return out

    def search(self, terms: Sequence[str], k: int) -> list[tuple[int, float]]:
        """The k best (rowid, score) for an OR of `terms`, best first, ties by rowid: FTS5's order."""
        n_rows = len(self._slot_of)
        if not n_rows or k <= 0:
            return []
        avgdl = float(self._total_tokens) / float(n_rows)
        scores = np.zeros(self._n_slots, dtype=np.float64)
        touched = False
        # FTS5 adds each phrase's term in query order, starting from 0.0; a row without the phrase
        # adds 0.0, which changes nothing, so adding only where the term occurs gives the same doubles.
        for t in dict.fromkeys(terms):
            tid = self._vocab.get(t)
            if tid is None:
                continue
            slots, freqs = self._postings(tid)
            n_hit = len(slots)
            if not n_hit:
                continue
            idf = math.log((n_rows - n_hit + 0.5) / (n_hit + 0.5))
            if idf <= 0.0:
                idf = 1e-6
            f = freqs.astype(np.float64)
            d = self._doclen[slots]
            scores[slots] += idf * ((f * (K1 + 1.0)) / (f + K1 * (1 - B + B * d / avgdl)))
            touched = True
        if not touched:
            return []
        # Every posting adds more than 0 (idf >= 1e-6, frequency > 0), so the candidates are the
        # non-zero scores; one pass over the array is cheaper than np.unique over the postings.
        cand = np.flatnonzero(scores)
        cand_scores = scores[cand]
        if len(cand) > k:
            kth = np.partition(cand_scores, len(cand) - k)[len(cand) - k]
            top = cand_scores >= kth
            cand, cand_scores = cand[top], cand_scores[top]
        rowids = self._rowid[cand]
        order = np.lexsort((rowids, -cand_scores))[:k]
        return [(int(rowids[i]), float(cand_scores[i])) for i in order]
