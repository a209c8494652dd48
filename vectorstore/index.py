"""The index: registry + keyword index (SQLite) and vectors (Chroma), written in a crash-safe order.

Write order for an article: vectors first (under new, content-hashed chunk ids), then one SQLite
transaction that swaps the article's chunks, then the old vectors are dropped. Search results are
always resolved through SQLite, so vectors written by an ingest that died before its transaction
are invisible, and `sweep_orphans()` deletes them later.

Several processes may write one index (apps sharing a Chroma server and a data dir, `qa ingest` beside
a running app). Between a writer's vectors and its transaction, those vectors look like orphans, so
writers hold a shared lock on a file next to the registry over that window and the sweep holds it
exclusively: a sweep never deletes the vectors of an ingest still in flight in another process.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass

from qa.errors import IndexMismatchError, StoreUnavailableError
from vectorstore.chroma_store import DenseStore
from vectorstore.docstore import DocStore
from vectorstore.embeddings import settings_for
from vectorstore.filelock import file_lock
from vectorstore.records import ArticleRecord, ChunkRecord, ScoredChunk

MODEL_META_KEY = "embedding_model"
log = logging.getLogger("vectorstore.index")


@dataclass
class UpsertResult:
    added: list[str]
    updated: list[str]
    unchanged: list[str]


def embedding_text(chunk: ChunkRecord) -> str:
    # The title gives a passage its topic; passages deep in an article rarely repeat it.
    return f"{chunk.title}\n{chunk.text}" if chunk.title else chunk.text


class NewsIndex:
    def __init__(self, docstore: DocStore, dense: DenseStore, embeddings, *, embed_batch_chunks: int = 256,
                 min_free_bytes: int = 0):
        self.docs = docstore
        self.dense = dense
        self.embeddings = embeddings
        self.embed_batch_chunks = embed_batch_chunks
        self.min_free_bytes = min_free_bytes
        stored = docstore.set_meta_if_absent(MODEL_META_KEY, embeddings.model_id)
        if stored != embeddings.model_id:
            raise IndexMismatchError(
                f"the index in {docstore.path.parent} was built with embedding model {stored!r}, but "
                f"{embeddings.model_id!r} is configured; set {settings_for(stored)} or use another QA_DATA_DIR"
            )

    # -- writes --------------------------------------------------------------------------------
    def upsert_many(self, items: Iterable[tuple[ArticleRecord, list[ChunkRecord]]]) -> UpsertResult:
        """Index articles whose content changed; skip those already indexed with the same content."""
        result = UpsertResult([], [], [])
        pending: list[tuple[ArticleRecord, list[ChunkRecord], bool]] = []
        pending_chunks = 0
        for article, chunks in items:
            old_hash = self.docs.content_hash(article.id)
            if old_hash == article.content_hash:
                result.unchanged.append(article.id)
                continue
            pending.append((article, chunks, old_hash is not None))
            pending_chunks += len(chunks)
            # Embedding many chunks per call keeps the model busy; commit per article keeps each atomic.
            if pending_chunks >= self.embed_batch_chunks:
                self._write(pending, result)
                pending, pending_chunks = [], 0
        if pending:
            self._write(pending, result)
        return result

    def _write(self, pending, result: UpsertResult) -> None:
        all_chunks = [c for _, chunks, _ in pending for c in chunks]
        self._check_free_space(pending, all_chunks)
        vectors = self.embeddings.embed_documents([embedding_text(c) for c in all_chunks])
        with self._write_lock(exclusive=False):
            self.dense.add([c.id for c in all_chunks], vectors, [c.article_id for c in all_chunks])
            for article, chunks, existed in pending:
                stale = self.docs.replace_article(article, chunks)
                self._drop_vectors(stale)
                (result.updated if existed else result.added).append(article.id)

    def _check_free_space(self, pending, chunks: list[ChunkRecord]) -> None:
        """Refuse a write that would leave less than min_free_bytes free where the index lives.

        Failing on a full disk loses nothing here, but embedded Chroma may not recover from it until the
        app restarts (tests/test_faults.py), so writes stop while there is still room, like a database's
        disk watermark. Deleting articles is always allowed: it frees space."""
        if not self.min_free_bytes:
            return
        where = self.docs.path.parent
        try:
            free = shutil.disk_usage(where).free
        except OSError:
            return  # the write itself will say what is wrong with the directory
        # Text is stored twice (article, chunks) plus keyword postings; vectors in the HNSW index, its
        # log and Chroma's SQLite. Generous on purpose: it is an estimate of a burst, not of the total.
        text = sum(len(a.text.encode()) for a, _, _ in pending) + sum(len(c.text.encode()) for c in chunks)
        need = self.min_free_bytes + 4 * text + 16 * 4 * len(chunks) * (getattr(self.embeddings, "dim", 0) or 1024)
        if free < need:
            raise StoreUnavailableError(
                f"not enough free disk space for the index in {where}: {free / 1e6:.1f} MB free, this write needs "
                f"{(need - self.min_free_bytes) / 1e6:.1f} MB plus the {self.min_free_bytes / 1e6:.0f} MB kept free "
                "(QA_MIN_FREE_DISK_MB); free some space and try again. Indexed articles are safe."
            )

    def remove(self, article_id: str) -> bool:
        article = self.docs.get_article(article_id)
        if article is None:
            return False
        chunk_ids = self.docs.delete_article(article_id)
        self._drop_vectors(chunk_ids)
        return True

    def _drop_vectors(self, ids: list[str]) -> None:
        """Drop vectors SQLite no longer registers. The write they belong to is committed and they are
        already invisible, so failing to drop them now (Chroma down, data dir read-only) must not fail
        it: that would report an error for a change that happened. `sweep_orphans()` drops them later."""
        try:
            self.dense.delete(ids)
        except StoreUnavailableError as exc:
            log.warning("left %d stale vectors for the next sweep: %s", len(ids), exc)

    def sweep_orphans(self) -> int:
        """Delete vectors no registered chunk owns (left by an ingest that was killed)."""
        with self._write_lock(exclusive=True):
            orphans = sorted(self.dense.ids() - self.docs.chunk_ids())
            self.dense.delete(orphans)
        return len(orphans)

    def _write_lock(self, exclusive: bool):
        """Shared for writers, exclusive for the sweep, so a sweep never takes vectors that another
        process has written but not yet committed."""
        return file_lock(f"{self.docs.path}.write-lock", exclusive=exclusive)

    # -- reads ---------------------------------------------------------------------------------
    def dense_search(self, query: str, k: int) -> list[ScoredChunk]:
        vector = self.embeddings.embed_query(query)
        return self.dense_search_vector(vector, k)

    def dense_search_vector(self, vector: list[float], k: int) -> list[ScoredChunk]:
        hits = self.dense.query(vector, k)
        chunks = self.docs.get_chunks([i for i, _ in hits])
        out: list[ScoredChunk] = []
        for chunk_id, score in hits:
            if chunk_id in chunks:  # unknown ids are orphans of an interrupted ingest
                out.append(ScoredChunk(chunks[chunk_id], score, len(out) + 1, {"dense": score}))
        return out

    def keyword_search(self, query: str, k: int) -> list[ScoredChunk]:
        return self.docs.keyword_search(query, k)
