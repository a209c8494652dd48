"""Behaviour at a few thousand chunks, through the real code path (not a speed test).

Filler: real CMRC/default-corpus sentences recombined into passages, vectors mixed from the real
model's vectors of some of those sentences (benchmarks/common.py), written with the product's
DocStore.replace_article (SQLite + FTS5) and DenseStore.add (Chroma). Planted articles go through
QAService.ingest_articles with the real model. Questions go through the HTTP API.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
FILLER_CHUNKS = 3000

PLANTED = [
    ("青石镇光伏电站建设提速", [
        "本报讯 记者从青石镇人民政府获悉，青石镇今年共建成光伏电站37座，总装机容量达到1.2万千瓦。",
        "据青石镇镇长王志强介绍，这些光伏电站全部建在农户屋顶和村集体闲置用地上。",
        "电站并网后，每年可为村集体增加收入约86万元。",
    ]),
    ("青石镇举办乡村振兴论坛", [
        "近日，青石镇在镇文化中心举办乡村振兴论坛，来自周边六个乡镇的干部参加。",
        "论坛围绕特色产业、人才回流和基层治理展开讨论。",
    ]),
]
QUESTION = "青石镇今年建成了多少座光伏电站？"


def _bench_common():
    spec = importlib.util.spec_from_file_location("bench_common", REPO / "benchmarks" / "common.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_common", mod)
    spec.loader.exec_module(mod)
    return mod


def _parsed(articles):
    from qa.ingest.parsed import ParsedArticle

    return [ParsedArticle(title=t, paragraphs=list(p)) for t, p in articles]


def _ids_agree(svc) -> set[str]:
    sqlite_ids = svc.index.docs.chunk_ids()
    chroma_ids = svc.index.dense.ids()
    assert sqlite_ids == chroma_ids, (len(sqlite_ids - chroma_ids), len(chroma_ids - sqlite_ids))
    return sqlite_ids


@pytest.fixture(scope="module")
def scaled(tmp_path_factory, real_embeddings):
    import numpy as np
    from fastapi.testclient import TestClient

    from qa.components import build_service
    from qa.settings import Settings
    from qa.web.app import create_app

    bc = _bench_common()
    from conftest import model_cache_dir

    sentences, titles = bc.sentence_pool()
    pool = sentences[:: max(len(sentences) // 120, 1)][:120]  # a fixed sample; the vectors cost seconds
    vectors = np.asarray(real_embeddings.embed_documents(pool), dtype=np.float32)
    settings = Settings(data_dir=tmp_path_factory.mktemp("scale") / "index", model_cache_dir=model_cache_dir(),
                        answerer="extractive")
    svc = build_service(settings, embeddings=real_embeddings)
    written = bc.write_synthetic(svc.index.docs, svc.index.dense,
                                 bc.synthetic_articles(FILLER_CHUNKS, pool, vectors, titles, seed=7))
    assert written == FILLER_CHUNKS
    report = svc.ingest_articles("planted.txt", _parsed(PLANTED))
    assert len(report.added) == len(PLANTED)
    with TestClient(create_app(settings, svc)) as client:
        yield svc, client


def _ask(client, question=QUESTION) -> dict:
    r = client.post("/api/ask", json={"question": question})
    assert r.status_code == 200, r.text
    return r.json()


def test_planted_question_is_answered_from_the_planted_article(scaled):
    svc, client = scaled
    assert svc.index.docs.count_chunks() > FILLER_CHUNKS
    planted_id = svc.index.docs.article_ids_from_source("planted.txt")[0]
    ans = _ask(client)
    assert not ans["abstained"], ans["answer"]
    assert ans["short_answer"] == "37座"
    assert ans["citations"] and ans["citations"][0]["article_id"] == planted_id
    assert ans["sources"][0]["article_id"] == planted_id
    article = client.get(f"/api/articles/{planted_id}").json()
    for c in ans["citations"]:
        assert article["text"][c["start"] : c["end"]] == c["passage"]
    who = _ask(client, "青石镇镇长是谁？")
    assert who["short_answer"] == "王志强"


def test_sqlite_and_chroma_ids_agree_through_updates_and_removals(scaled):
    svc, client = scaled
    before = _ids_agree(svc)
    assert len(before) == svc.index.dense.count() == svc.index.docs.count_chunks()

    # An edited article replaces its chunks; its old vectors go.
    edited = [(PLANTED[0][0], [PLANTED[0][1][0].replace("37座", "41座"), *PLANTED[0][1][1:]]), PLANTED[1]]
    report = svc.ingest_articles("planted.txt", _parsed(edited))
    assert len(report.updated) == 1 and len(report.unchanged) == 1
    after = _ids_agree(svc)
    assert len(after) == len(before)
    assert _ask(client)["short_answer"] == "41座"

    # A vector no registered chunk owns (a killed ingest) is never served and is swept.
    svc.index.dense.add(["ghost:000"], [svc.index.embeddings.embed_query(QUESTION)], ["ghost"])
    assert all(s["article_id"] != "ghost" for s in _ask(client)["sources"])
    assert svc.index.sweep_orphans() == 1
    _ids_agree(svc)

    # Removing articles removes their vectors.
    for aid in svc.index.docs.article_ids_from_source("planted.txt"):
        svc.remove_article(aid)
    remaining = _ids_agree(svc)
    assert len(remaining) == FILLER_CHUNKS
    assert all(s["article_id"].startswith("syn-") for s in _ask(client)["sources"])
