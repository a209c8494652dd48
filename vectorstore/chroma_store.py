"""Vectors in Chroma: an embedded PersistentClient under the data dir, or a `chroma run` server.

We always hand Chroma our own vectors (never documents to embed), so it never reaches for its
default ONNX model, and the collection records which embedding model made them.
"""

from __future__ import annotations

import threading
from pathlib import Path
from urllib.parse import urlparse

from qa.errors import IndexMismatchError, StoreUnavailableError
from vectorstore.embeddings import settings_for

MODEL_KEY = "embedding_model"
DIM_KEY = "embedding_dim"


DEFAULT_TIMEOUT = 10.0


def connect(chroma_url: str | None, persist_dir: Path, timeout: float = DEFAULT_TIMEOUT):
    """A Chroma client with telemetry off: a server client when a URL is given, else embedded.

    chromadb's HttpClient waits forever by default (httpx timeout=None): a server that accepts
    connections but does not answer (paused, overloaded, half-dead network) would hang every request
    and fill the web server's thread pool. Its requests get `timeout` seconds instead.
    """
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if chroma_url:
        u = urlparse(chroma_url)
        client = _bounded(
            lambda: chromadb.HttpClient(
                host=u.hostname, port=u.port or (443 if u.scheme == "https" else 8000),
                ssl=u.scheme == "https", settings=settings,
            ),
            timeout, chroma_url,
        )
        _set_timeout(client, timeout)
        return client
    try:
        persist_dir.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(persist_dir), settings=settings)
    except Exception as exc:  # a read-only or full data dir: OSError, or chromadb's own errors
        raise StoreUnavailableError(f"cannot open the Chroma store at {persist_dir}: {_describe(exc)}") from exc


def _bounded(make_client, timeout: float, chroma_url: str):
    """`make_client()` within `timeout` seconds. HttpClient() already talks to the server (it checks the
    tenant and database) before its HTTP timeout can be set, so a server that accepts connections but
    never answers hung the app's start; the call waits in a daemon thread instead, which a hung socket
    read leaves free to give up on."""
    box: dict = {}

    def run() -> None:
        try:
            box["client"] = make_client()
        except Exception as exc:  # noqa: BLE001 - re-raised below, in the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=run, name="qa-chroma-connect", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise StoreUnavailableError(
            f"cannot reach the Chroma server at {chroma_url}: it did not answer within {timeout:g} s "
            "(timed out; QA_CHROMA_TIMEOUT)"
        )
    if "error" in box:  # chromadb raises plain ValueError/ConnectionError on a dead server
        exc = box["error"]
        raise StoreUnavailableError(f"cannot reach the Chroma server at {chroma_url}: {exc}") from exc
    return box["client"]


def _describe(exc: BaseException) -> str:
    """The error, with what to do about it when it is the disk: read-only, or full."""
    text = f"{getattr(exc, 'strerror', None) or exc}"
    low = text.lower()
    if any(w in low for w in ("no space", "disk is full", "disk full", "database or disk is full")):
        return f"the disk is full; free some space and try again ({text})"
    if any(w in low for w in ("read-only", "readonly", "read only", "unable to open database file",
                              "permission denied")):
        return f"the data directory is read-only or not writable ({text})"
    return text


def _set_timeout(client, timeout: float) -> None:
    import httpx

    # chromadb exposes no setting for it; its HTTP session is an httpx.Client whose timeout is settable.
    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = httpx.Timeout(timeout, connect=min(timeout, 5.0))


class DenseStore:
    def __init__(self, client, collection: str, model_id: str, dim_fn, where: str):
        """`dim_fn()` gives the model's dimension; it is called only when the collection must be created."""
        self._where = where
        try:
            names = {getattr(c, "name", c) for c in client.list_collections()}
            if collection in names:
                self._col = client.get_collection(collection, embedding_function=None)
            else:
                self._col = client.get_or_create_collection(
                    collection,
                    metadata={MODEL_KEY: model_id, DIM_KEY: dim_fn(), "hnsw:space": "cosine"},
                    embedding_function=None,
                )
        except (IndexMismatchError, StoreUnavailableError):
            raise
        except Exception as exc:
            if type(exc).__module__.startswith(("qa.", "vectorstore.")):
                raise
            raise StoreUnavailableError(f"cannot open Chroma collection {collection!r} at {where}: {exc}") from exc
        meta = self._col.metadata or {}
        if meta.get(MODEL_KEY) != model_id:
            raise IndexMismatchError(
                f"the Chroma collection {collection!r} at {where} was built with embedding model "
                f"{meta.get(MODEL_KEY)!r}, but {model_id!r} is configured. Set {settings_for(str(meta.get(MODEL_KEY)))}, "
                "or use another QA_COLLECTION / QA_DATA_DIR and ingest again."
            )

    def _call(self, what: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (IndexMismatchError, StoreUnavailableError):
            raise
        except Exception as exc:
            raise StoreUnavailableError(f"Chroma at {self._where} failed to {what}: {_describe(exc)}") from exc

    def add(self, ids: list[str], vectors: list[list[float]], article_ids: list[str]) -> None:
        if not ids:
            return
        metadatas = [{"article_id": a} for a in article_ids]
        for i in range(0, len(ids), 1000):
            self._call(
                "add vectors", self._col.upsert,
                ids=ids[i : i + 1000], embeddings=vectors[i : i + 1000], metadatas=metadatas[i : i + 1000],
            )

    def delete(self, ids: list[str]) -> None:
        for i in range(0, len(ids), 1000):
            self._call("delete vectors", self._col.delete, ids=ids[i : i + 1000])

    def query(self, vector: list[float], k: int) -> list[tuple[str, float]]:
        # No count() first: it cost more than the search itself at 100k vectors (7 ms vs 1.5 ms), and
        # Chroma (>= 1.5) returns what it has when asked for more, and nothing from an empty collection.
        res = self._call("search", self._col.query, query_embeddings=[vector], n_results=k, include=["distances"])
        # Cosine distance → similarity, so higher is better everywhere.
        return [(i, 1.0 - d) for i, d in zip(res["ids"][0], res["distances"][0])]

    def ids(self) -> set[str]:
        out: set[str] = set()
        offset, page = 0, 5000
        while True:
            got = self._call("list ids", self._col.get, include=[], limit=page, offset=offset)["ids"]
            out.update(got)
            if len(got) < page:
                return out
            offset += page

    def has(self, ids: list[str]) -> set[str]:
        return set(self._call("look up ids", self._col.get, ids=ids, include=[])["ids"]) if ids else set()

    def count(self) -> int:
        return self._call("count", self._col.count)
