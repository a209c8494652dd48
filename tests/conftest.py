import os
import socket
import sys
from pathlib import Path

import pytest

# Offline, always: a test that tries to reach a model hub must fail fast, not hang.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

REPO = Path(__file__).resolve().parent.parent
SEED = REPO / "data" / "articles" / "000_8ab3799defe30f2f.txt"
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """Each test gets its own data dir; settings from the developer's shell never leak in."""
    for key in list(os.environ):
        if key.startswith("QA_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("QA_DATA_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("QA_MODEL_CACHE_DIR", str(model_cache_dir()))


def model_cache_dir() -> Path:
    # The converted default model (~470 MB) is made once and shared by all tests and runs.
    return Path(os.environ.get("QA_TEST_MODEL_CACHE", REPO / ".qa-cache" / "models"))


@pytest.fixture(scope="session")
def real_embeddings():
    from vectorstore.embeddings import DEFAULT_MODEL, load_embeddings

    return load_embeddings(DEFAULT_MODEL, model_cache_dir())


@pytest.fixture
def settings(tmp_path):
    from qa.settings import Settings

    return Settings(data_dir=tmp_path / "index", model_cache_dir=model_cache_dir())


@pytest.fixture
def hashing_service(settings):
    from fakes import HashingEmbeddings

    from qa.components import build_service

    return build_service(settings, embeddings=HashingEmbeddings())


@pytest.fixture(scope="session")
def seed_service(tmp_path_factory, real_embeddings):
    """The default corpus indexed once with the real model; tests must not write to it."""
    from qa.components import build_service
    from qa.settings import Settings

    s = Settings(data_dir=tmp_path_factory.mktemp("seed-index"), model_cache_dir=model_cache_dir())
    svc = build_service(s, embeddings=real_embeddings)
    report = svc.ingest_paths([SEED])
    assert report.ok, report
    return svc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
