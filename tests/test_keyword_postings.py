"""The in-memory keyword mirror ranks exactly as SQLite FTS5 does, and follows every write.

Real SQLite files, real jieba tokens, CMRC trial articles and questions (CC BY-SA 4.0, see
benchmarks/data/README.md). "Another process" is a second DocStore on the same file: it shares
nothing in memory with the first, only the file.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import vectorstore.docstore as docstore_mod
import vectorstore.keyword_postings as postings_mod
from vectorstore.docstore import DocStore
from vectorstore.keyword import tokenize
from vectorstore.records import ArticleRecord, ChunkRecord

DATA = Path(__file__).resolve().parent.parent / "benchmarks" / "data"
K = 30


def _cmrc(n_articles: int) -> tuple[list[tuple[ArticleRecord, list[ChunkRecord]]], list[str]]:
    with open(DATA / "cmrc_trial_articles.jsonl", encoding="utf-8") as f:
        raw = [json.loads(line) for line in f][:n_articles]
    with open(DATA / "cmrc_trial_questions.jsonl", encoding="utf-8") as f:
        keep = {a["id"] for a in raw}
        questions = [q["question"] for q in map(json.loads, f) if q["article_id"] in keep]
    items = []
    for a in raw:
        text = a["text"]
        art = ArticleRecord(id=a["id"], title=a["title"], text=text, paragraphs=(text,), source="cmrc.jsonl")
        chunks = [
            ChunkRecord(id=f"{a['id']}-{i}", article_id=a["id"], ordinal=i, start=s, end=min(s + 120, len(text)),
                        text=text[s : s + 120], title=a["title"])
            for i, s in enumerate(range(0, len(text), 120))
        ]
        items.append((art, chunks))
    return items, questions


def _fts(store: DocStore, query: str, k: int = K):
    with store._snapshot() as db:
        return store._fts_search(db, store.keyword_terms(tokenize(query)), k)


def _assert_same(mirror_hits, fts_hits):
    assert [h.chunk.id for h in mirror_hits] == [h.chunk.id for h in fts_hits]
    for a, b in zip(mirror_hits, fts_hits):
        assert a.score == pytest.approx(b.score, rel=1e-12, abs=1e-12)
        assert a.rank == b.rank and a.chunk == b.chunk


@pytest.fixture(scope="module")
def corpus():
    return _cmrc(60)


@pytest.fixture
def store(tmp_path, corpus):
    s = DocStore(tmp_path / "registry.sqlite3")
    for art, chunks in corpus[0]:
        s.replace_article(art, chunks)
    yield s
    s.close()


def test_mirror_ranks_exactly_as_fts5(store, corpus):
    questions = corpus[1]
    assert len(questions) > 100
    for q in questions:
        hits = store.keyword_search(q, K)
        assert store._mirror is not None, "a small index builds its mirror inside the first search"
        _assert_same(hits, _fts(store, q))
    assert any(len(store.keyword_search(q, K)) == K for q in questions)


def test_budget_leaves_out_the_same_words_in_both_paths(store, corpus, monkeypatch):
    monkeypatch.setattr(docstore_mod, "KEYWORD_MAX_POSTINGS", 40)
    q = next(q for q in corpus[1] if sum(store.document_frequencies(tokenize(q)).values()) > 80)
    store.keyword_search(q, K)
    mirror_terms = store.keyword_terms(tokenize(q), mirror=store._mirror)
    assert mirror_terms == store.keyword_terms(tokenize(q))
    assert len(mirror_terms) < len(set(tokenize(q)))
    _assert_same(store.keyword_search(q, K), _fts(store, q))


def test_mirror_follows_writes_from_another_process(store, corpus, tmp_path):
    items, questions = corpus
    store.keyword_search(questions[0], K)  # built now, at this generation
    built = store._mirror
    other = DocStore(store.path)
    try:
        # Remove some, replace one with new text (its rows are deleted, new rowids added), add a new one.
        for art, _ in items[:5]:
            other.delete_article(art.id)
        art, chunks = items[10]
        changed = [ChunkRecord(id=c.id + "x", article_id=c.article_id, ordinal=c.ordinal, start=c.start, end=c.end,
                               text=c.text[::-1], title=c.title) for c in chunks]
        other.replace_article(art, changed)
        new = ArticleRecord(id="NEW", title="青石镇光伏电站", text="青石镇今年建成光伏电站37座。", paragraphs=("x",))
        other.replace_article(new, [ChunkRecord(id="NEW-0", article_id="NEW", ordinal=0, start=0, end=14,
                                                text=new.text, title=new.title)])
        # The highest rowid was deleted and is reused by the next insert: the mirror must not mix them up.
        other.delete_article("NEW")
        again = ArticleRecord(id="AGAIN", title="石桥村", text="石桥村修建了新桥。", paragraphs=("x",))
        other.replace_article(again, [ChunkRecord(id="AGAIN-0", article_id="AGAIN", ordinal=0, start=0, end=9,
                                                  text=again.text, title=again.title)])
    finally:
        other.close()
    for q in questions + ["青石镇光伏电站", "石桥村新桥"]:
        _assert_same(store.keyword_search(q, K), _fts(store, q))
    assert store._mirror is built, "caught up from the change log, not rebuilt"
    assert [h.chunk.id for h in store.keyword_search("石桥村新桥", K)] == ["AGAIN-0"]
    assert "NEW-0" not in {h.chunk.id for h in store.keyword_search("青石镇光伏电站", K)}
    removed = {c.id for _, chunks in items[:5] for c in chunks}
    assert not removed & {h.chunk.id for q in questions for h in store.keyword_search(q, K)}


def test_merging_added_postings_keeps_the_ranking(tmp_path, corpus, monkeypatch):
    monkeypatch.setattr(postings_mod, "MERGE_MIN_POSTINGS", 500)
    items, questions = corpus
    s = DocStore(tmp_path / "r.sqlite3")
    s.replace_article(*items[0])
    s.keyword_search(questions[0], K)  # built with one article; the rest arrive through the log
    main_postings = len(s._mirror._slots)
    for art, chunks in items[1:]:
        s.replace_article(art, chunks)
        if art.id.endswith("3"):
            s.delete_article(items[1][0].id)
    for q in questions:
        _assert_same(s.keyword_search(q, K), _fts(s, q))
    assert len(s._mirror._slots) > main_postings, "added postings were merged into the main arrays"
    assert len(s._mirror) == s.count_chunks()
    s.close()


def test_a_mirror_behind_a_pruned_log_is_rebuilt(tmp_path, corpus, monkeypatch):
    monkeypatch.setattr(docstore_mod, "CHUNK_LOG_KEEP", 20)
    items, questions = corpus
    s = DocStore(tmp_path / "r.sqlite3")
    s.replace_article(*items[0])
    s.keyword_search(questions[0], K)
    old = s._mirror
    other = DocStore(s.path)
    for art, chunks in items[1:20]:
        other.replace_article(art, chunks)
    other.close()
    assert s.get_meta("chunk_log_pruned_through") is not None
    # The first search after that answers from FTS5 (same results) while the mirror is rebuilt.
    for q in questions[:40]:
        _assert_same(s.keyword_search(q, K), _fts(s, q))
    deadline = time.time() + 30
    while (s._mirror is None or s._mirror is old) and time.time() < deadline:
        time.sleep(0.05)
        s.keyword_search(questions[0], K)
    assert s._mirror is not None and s._mirror is not old
    for q in questions:
        _assert_same(s.keyword_search(q, K), _fts(s, q))
    s.close()


def test_a_large_index_builds_its_mirror_in_the_background(store, corpus, monkeypatch):
    monkeypatch.setattr(docstore_mod, "MIRROR_SYNC_BUILD_CHUNKS", 0)
    q = corpus[1][0]
    first = store.keyword_search(q, K)  # FTS5 answers; the mirror is being built
    _assert_same(first, _fts(store, q))
    deadline = time.time() + 30
    while store._mirror is None and time.time() < deadline:
        time.sleep(0.05)
    assert store._mirror is not None
    _assert_same(store.keyword_search(q, K), first)


def test_prepare_builds_it_and_the_setting_turns_it_off(tmp_path, corpus):
    items, questions = corpus
    on = DocStore(tmp_path / "r.sqlite3")
    for art, chunks in items[:10]:
        on.replace_article(art, chunks)
    on.prepare_keyword_search()
    assert len(on._mirror) == on.count_chunks()
    off = DocStore(tmp_path / "r.sqlite3", keyword_in_memory=False)
    off.prepare_keyword_search()
    for q in questions[:50]:
        _assert_same(on.keyword_search(q, K), off.keyword_search(q, K))
    assert off._mirror is None
    on.close()
    off.close()


def test_empty_and_unknown_words(tmp_path):
    s = DocStore(tmp_path / "r.sqlite3")
    assert s.keyword_search("汉中市副市长是谁？", K) == []
    assert s._mirror is not None and len(s._mirror) == 0
    art = ArticleRecord(id="A", title="汉中", text="李芳是汉中市副市长。", paragraphs=("x",))
    s.replace_article(art, [ChunkRecord(id="A-0", article_id="A", ordinal=0, start=0, end=10, text=art.text)])
    assert [h.chunk.id for h in s.keyword_search("汉中市副市长是谁？", K)] == ["A-0"]
    assert s.keyword_search("完全无关的词语组合", K) == _fts(s, "完全无关的词语组合")
    s.close()
