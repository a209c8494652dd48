"""Several processes on one index: a real `chroma run` server for the vectors, one QA_DATA_DIR for the
SQLite registry and keyword index (WAL, busy timeout), app processes on different ports.

What one process writes, the other reads and answers the same way; what one removes, the other no
longer returns; writes from both at once corrupt nothing; and a sweep of orphan vectors in one process
never deletes the vectors of an ingest still in flight in another.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from chroma_server import ChromaServer
from conftest import REPO, free_port

sys.path.insert(0, str(REPO / "benchmarks"))
from crash_ingest import corpus_version  # noqa: E402
from load_test import AppProcess  # noqa: E402

QUESTION, ANSWER = "汉中市副市长是谁？", "李芳"


@pytest.fixture
def chroma_server(tmp_path):
    server = ChromaServer(tmp_path / "chroma-server", free_port()).start()
    yield server
    server.stop()


def hashing_service(data_dir: Path, chroma_url: str):
    from fakes import HashingEmbeddings

    from qa.components import build_service
    from qa.settings import Settings

    return build_service(Settings(data_dir=data_dir, chroma_url=chroma_url), embeddings=HashingEmbeddings())


def assert_consistent(data_dir: Path, chroma_url: str, sweep: bool = True) -> int:
    """SQLite intact; every registered chunk has its vector; after a sweep, exactly those vectors."""
    import sqlite3

    db = sqlite3.connect(data_dir / "registry.sqlite3")
    assert [r[0] for r in db.execute("PRAGMA integrity_check")] == ["ok"]
    db.execute("INSERT INTO chunk_terms(chunk_terms) VALUES ('integrity-check')")
    assert db.execute("SELECT COUNT(*) FROM chunks WHERE article_id NOT IN (SELECT id FROM articles)").fetchone()[0] == 0
    db.close()
    svc = hashing_service(data_dir, chroma_url) if sweep else None
    if svc is None:
        return 0
    registered = svc.index.docs.chunk_ids()
    missing = registered - svc.index.dense.ids()
    assert not missing, f"{len(missing)} registered chunks have no vector"
    svc.index.sweep_orphans()
    assert svc.index.dense.ids() == registered
    return len(registered)


# -- the sweep race ----------------------------------------------------------------------------------
INGEST_ONE_BATCH = f"""
import json, sys
from pathlib import Path
sys.path.insert(0, {str(REPO / "tests")!r})
from fakes import HashingEmbeddings
from qa.components import build_service
from qa.ingest.parsed import ParsedArticle
from qa.settings import Settings
svc = build_service(Settings(data_dir=Path(sys.argv[1]), chroma_url=sys.argv[2]), embeddings=HashingEmbeddings())
svc.index.embed_batch_chunks = 10**6  # one batch: all vectors first, then one commit per article
records = json.loads(Path(sys.argv[3]).read_text())
articles = [ParsedArticle(title=r["title"], paragraphs=r["text"].split("\\n"), external_id=r["id"]) for r in records]
print("ready", flush=True)
report = svc.ingest_articles("batch.jsonl", articles)
print("done", len(report.added), flush=True)
"""

SWEEP_UNTIL = f"""
import sys, time
from pathlib import Path
sys.path.insert(0, {str(REPO / "tests")!r})
from fakes import HashingEmbeddings
from qa.components import build_service
from qa.settings import Settings
svc = build_service(Settings(data_dir=Path(sys.argv[1]), chroma_url=sys.argv[2]), embeddings=HashingEmbeddings())
stop = Path(sys.argv[3])
print("ready", flush=True)
sweeps = swept = 0
while not stop.exists():
    swept += svc.index.sweep_orphans()
    sweeps += 1
print("sweeps", sweeps, "swept", swept, flush=True)
"""


@pytest.mark.timeout(180)
def test_a_sweep_in_another_process_never_deletes_vectors_in_flight(tmp_path, chroma_server):
    """One process ingests 300 articles (vectors first, then the commits) while another sweeps orphans
    in a loop, as `qa ingest` does when it finishes beside a running app. Before the write lock, every
    article committed during a sweep lost its vectors for good (re-ingesting skips unchanged articles)."""
    import json

    data_dir = tmp_path / "index"
    hashing_service(data_dir, chroma_server.url)  # creates the collection and the registry
    records = [r for rs in corpus_version(300, 0, files=1).values() for r in rs]
    (tmp_path / "batch.json").write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    stop = tmp_path / "stop"
    sweeper = subprocess.Popen([sys.executable, "-c", SWEEP_UNTIL, str(data_dir), chroma_server.url, str(stop)],
                               cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert sweeper.stdout.readline().strip() == "ready"
        ingest = subprocess.run([sys.executable, "-c", INGEST_ONE_BATCH, str(data_dir), chroma_server.url,
                                 str(tmp_path / "batch.json")], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert ingest.returncode == 0, ingest.stderr[-3000:]
        assert "done 300" in ingest.stdout
    finally:
        stop.touch()
        out, _ = sweeper.communicate(timeout=60)
    sweeps = int(out.split()[1])
    assert sweeps > 1, out  # the sweeps really ran alongside the ingest
    assert assert_consistent(data_dir, chroma_server.url) > 300


# -- two app processes ---------------------------------------------------------------------------------
def ask(url: str, question: str = QUESTION) -> dict:
    r = httpx.post(f"{url}/api/ask", json={"question": question}, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()


def same_answer(a: dict, b: dict) -> bool:
    key = lambda ans: (ans["answer"], ans["abstained"], [(c["article_id"], c["start"], c["end"]) for c in ans["citations"]])  # noqa: E731
    return key(a) == key(b)


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_two_app_processes_share_one_index(tmp_path, chroma_server):
    data_dir = tmp_path / "index"
    env = {"QA_CHROMA_URL": chroma_server.url}
    a = AppProcess(data_dir, env=env, log_path=tmp_path / "a.log")
    b = AppProcess(data_dir, env=env, log_path=tmp_path / "b.log")
    try:
        # Both start on the empty index at once, so both index the default corpus concurrently.
        starters = [threading.Thread(target=p.start, kwargs={"timeout": 300}) for p in (a, b)]
        for t in starters:
            t.start()
        for t in starters:
            t.join()
        assert a.alive() and b.alive(), a.log_tail() + b.log_tail()
        ha, hb = (httpx.get(f"{p.url}/api/health", timeout=30).json() for p in (a, b))
        assert ha["articles"] == hb["articles"] > 0 and ha["passages"] == hb["passages"]
        first_a, first_b = ask(a.url), ask(b.url)
        assert ANSWER in first_a["answer"] and same_answer(first_a, first_b)

        # Ingest through A; B sees it and answers with it, the same way A does.
        text = "据汉江流域管理局介绍，代号zq8two的水文监测站于2024年建成，配备了12名专职监测员。"
        r = httpx.post(f"{a.url}/api/articles", json={"title": "汉江水文监测站建成", "text": text, "source": "a"},
                       timeout=120)
        assert r.status_code == 201, r.text
        new_id = r.json()["added"][0]
        question = "代号zq8two的水文监测站配备了多少名专职监测员？"
        on_a, on_b = ask(a.url, question), ask(b.url, question)
        assert any(c["article_id"] == new_id for c in on_b["citations"]), on_b
        assert same_answer(on_a, on_b), (on_a["answer"], on_b["answer"])
        got = httpx.get(f"{b.url}/api/articles/{new_id}", timeout=30).json()
        assert got["text"] == text

        # Remove through B; A no longer returns it anywhere.
        assert httpx.delete(f"{b.url}/api/articles/{new_id}", timeout=60).status_code == 204
        assert httpx.get(f"{a.url}/api/articles/{new_id}", timeout=30).status_code == 404
        hits = httpx.get(f"{a.url}/api/search", params={"q": "zq8two 水文监测站", "k": 50}, timeout=60).json()["passages"]
        assert all(h["article_id"] != new_id for h in hits)
        assert all(c["article_id"] != new_id for c in ask(a.url, question)["citations"])

        # Writes from both at once: new articles, the same id from both, rewrites.
        errors: list[str] = []

        def writer(app: AppProcess, name: str) -> None:
            with httpx.Client(timeout=120) as client:
                for i in range(8):
                    for body in (
                        {"title": f"{name}写入的文章{i}", "text": f"{name}进程写入的第{i}篇文章，代号zq{name}{i}。",
                         "source": name},
                        {"id": f"shared-{i % 3}", "title": f"共享文章{i % 3}", "text": f"{name}改写的共享文章，第{i}版。",
                         "source": "shared"},
                    ):
                        resp = client.post(f"{app.url}/api/articles", json=body)
                        if resp.status_code not in (200, 201):
                            errors.append(f"{name}: HTTP {resp.status_code} {resp.text[:200]}")

        threads = [threading.Thread(target=writer, args=(a, "A")), threading.Thread(target=writer, args=(b, "B"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        ids_a = {x["id"] for x in httpx.get(f"{a.url}/api/articles", params={"limit": 1000}, timeout=30).json()}
        ids_b = {x["id"] for x in httpx.get(f"{b.url}/api/articles", params={"limit": 1000}, timeout=30).json()}
        assert ids_a == ids_b and {"shared-0", "shared-1", "shared-2"} <= ids_a
        assert len(ids_a) == ha["articles"] + 16 + 3
        for i in range(3):  # each shared article is whole: one of the versions written, with its passages
            art = httpx.get(f"{a.url}/api/articles/shared-{i}", timeout=30).json()
            assert art["text"].endswith("版。") and "改写的共享文章" in art["text"]
            hits = httpx.get(f"{b.url}/api/search", params={"q": art["text"], "k": 50}, timeout=60).json()["passages"]
            assert any(h["article_id"] == f"shared-{i}" and h["passage"] == art["text"] for h in hits)
        assert same_answer(ask(a.url), first_a) and same_answer(ask(b.url), first_a)
    finally:
        a.stop()
        b.stop()
    assert_consistent(data_dir, chroma_server.url, sweep=False)
    # The vectors: every registered chunk has one (checked with the model-agnostic id listing).
    import sqlite3

    import chromadb
    from chromadb.config import Settings as ChromaSettings

    db = sqlite3.connect(data_dir / "registry.sqlite3")
    registered = {r[0] for r in db.execute("SELECT id FROM chunks")}
    db.close()
    client = chromadb.HttpClient(host="127.0.0.1", port=chroma_server.port,
                                 settings=ChromaSettings(anonymized_telemetry=False))
    vectors = set(client.get_collection("news").get(include=[])["ids"])
    assert registered <= vectors, f"{len(registered - vectors)} registered chunks have no vector"
