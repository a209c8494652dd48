"""Builds the concrete parts from settings: embedding model, Chroma, registry, retriever, answerer.

Answerers are looked up by name, so a setting can pick one and an unknown name fails clearly.
"""

from __future__ import annotations

from qa.errors import ConfigError, StoreUnavailableError, UnknownComponentError
from qa.settings import Settings


def build_embeddings(settings: Settings):
    """The configured model, loaded on first use (listing or removing articles never loads it)."""
    from vectorstore.embeddings import LazyEmbeddings

    return LazyEmbeddings(settings.embedding_model, settings.model_cache_dir, settings.embedding_device,
                          settings.embedding_batch_size, backend=settings.embedding_backend)


def build_index(settings: Settings, embeddings):
    from vectorstore.chroma_store import DenseStore, connect
    from vectorstore.docstore import DocStore
    from vectorstore.index import NewsIndex

    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnavailableError(f"cannot create the data directory {settings.data_dir}: {exc.strerror or exc}") from exc
    client = connect(settings.chroma_url, settings.data_dir / "chroma", settings.chroma_timeout)
    where = settings.chroma_url or str(settings.data_dir / "chroma")
    dense = DenseStore(client, settings.collection, embeddings.model_id, lambda: embeddings.dim, where)
    docs = DocStore(settings.data_dir / "registry.sqlite3", keyword_in_memory=settings.keyword_in_memory)
    return NewsIndex(docs, dense, embeddings, min_free_bytes=int(settings.min_free_disk_mb * 1_000_000))


ANSWERERS = ("extractive", "llm")


def build_answerer(name: str, settings: Settings, index):
    from qa.answering.extractive import ExtractiveAnswerer

    extractive = ExtractiveAnswerer(index.docs, max_chars=settings.answer_max_chars)
    if name == "extractive":
        return extractive
    if name == "llm":
        from qa.answering.llm import LLMAnswerer, build_chat_model

        if not (settings.llm_base_url and settings.llm_model):
            raise ConfigError("the llm answerer needs QA_LLM_BASE_URL and QA_LLM_MODEL")
        chat = build_chat_model(settings.llm_base_url, settings.llm_model, settings.llm_api_key, settings.llm_timeout)
        return LLMAnswerer(chat, extractive, settings.llm_timeout, settings.llm_model)
    raise UnknownComponentError(f"unknown answerer {name!r}; known: {', '.join(ANSWERERS)}")


def answerer_name(settings: Settings) -> str:
    if settings.answerer:
        return settings.answerer
    return "llm" if settings.llm_base_url and settings.llm_model else "extractive"


def build_service(settings: Settings | None = None, embeddings=None):
    """Everything the CLI, API and UI need. `embeddings` may be passed in to share one loaded model."""
    from qa.retrieval import HybridRetriever
    from qa.service import QAService

    settings = settings or Settings()
    embeddings = embeddings or build_embeddings(settings)
    index = build_index(settings, embeddings)
    retriever = HybridRetriever(index=index, k=settings.top_k, candidates=settings.candidates)
    return QAService(settings, index, retriever, build_answerer(answerer_name(settings), settings, index))
