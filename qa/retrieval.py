"""Hybrid retrieval: dense (Chroma) + keyword (BM25 over jieba tokens), fused by reciprocal rank.

`HybridRetriever` is a LangChain `BaseRetriever`, so it plugs into any chain; `search()` returns
the typed hits the answerers use.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor, wait

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from vectorstore.index import NewsIndex
from vectorstore.records import ScoredChunk

RRF_K = 60

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _keyword_pool() -> ThreadPoolExecutor:
    """One long-lived pool for the keyword side of every search. Its threads keep their SQLite
    connections (and page caches) open between questions; a pool made per search paid for a new
    thread, a new connection and a cold cache every time (~half the keyword search at 10k chunks)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="qa-keyword")
        return _pool


def reciprocal_rank_fusion(
    runs: dict[str, list[ScoredChunk]], k: int, weights: dict[str, float] | None = None
) -> list[ScoredChunk]:
    """Fuse ranked lists: score = Σ weight / (RRF_K + rank). Robust to scores on different scales."""
    weights = weights or {}
    fused: dict[str, float] = {}
    first: dict[str, ScoredChunk] = {}
    parts: dict[str, dict[str, float]] = {}
    for name, hits in runs.items():
        w = weights.get(name, 1.0)
        for h in hits:
            cid = h.chunk.id
            fused[cid] = fused.get(cid, 0.0) + w / (RRF_K + h.rank)
            first.setdefault(cid, h)
            parts.setdefault(cid, {}).update(h.scores)
    order = sorted(fused, key=lambda c: (-fused[c], c))[:k]
    return [ScoredChunk(first[c].chunk, fused[c], rank, parts[c]) for rank, c in enumerate(order, 1)]


class HybridRetriever(BaseRetriever):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: NewsIndex
    k: int = 5
    candidates: int = 30
    weights: dict[str, float] = {"dense": 1.0, "keyword": 1.0}

    def search(self, query: str, k: int | None = None) -> list[ScoredChunk]:
        k = k or self.k
        # The keyword search runs in SQLite while the model embeds the query.
        kw = _keyword_pool().submit(self.index.keyword_search, query, self.candidates)
        try:
            dense = self.index.dense_search(query, self.candidates)
        except BaseException:
            wait([kw])  # as before: the keyword search does not outlive the call; the dense error is raised
            raise
        keyword = kw.result()
        return reciprocal_rank_fusion({"dense": dense, "keyword": keyword}, k, self.weights)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [to_document(h) for h in self.search(query)]


def to_document(hit: ScoredChunk) -> Document:
    c = hit.chunk
    return Document(
        id=c.id,
        page_content=c.text,
        metadata={
            "chunk_id": c.id, "article_id": c.article_id, "title": c.title, "start": c.start, "end": c.end,
            "score": hit.score, "rank": hit.rank, **{f"{k}_score": v for k, v in hit.scores.items()},
        },
    )
