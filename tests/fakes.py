"""Deterministic stand-ins for the edges of the system (never for the part under test)."""

from __future__ import annotations

import hashlib
import math

from langchain_core.embeddings import Embeddings


class HashingEmbeddings(Embeddings):
    """Character-bigram feature hashing: fast, deterministic, and similar texts get similar vectors.

    Used where the embedding model is not what a test is about (index bookkeeping, crash safety),
    so those tests run in milliseconds. Retrieval and answer tests use the real model.
    """

    def __init__(self, dim: int = 64, model_id: str = "test/hashing-bigrams"):
        self.dim = dim
        self.model_id = model_id
        self.calls = 0

    def _vec(self, text: str) -> list[float]:
        v = [0.0] * self.dim
        grams = [text[i : i + 2] for i in range(max(len(text) - 1, 1))]
        for g in grams:
            h = int.from_bytes(hashlib.blake2b(g.encode(), digest_size=4).digest(), "little")
            v[h % self.dim] += 1.0
        n = math.sqrt(sum(x * x for x in v)) or 1.0
        return [x / n for x in v]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        return [self._vec(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vec(text)
