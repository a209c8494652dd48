"""Index bookkeeping against real Chroma and SQLite: idempotence, replacement, removal, crash safety."""

import pytest
from fakes import HashingEmbeddings

from qa.components import build_service
from qa.errors import ArticleNotFoundError, IndexMismatchError
from qa.ingest.parsed import ParsedArticle


def _articles(extra: str = ""):
    return [
        ParsedArticle(title="汉中市政协常委会会议", paragraphs=["据汉中市副市长李芳介绍，汉中市组建了网格员监测队伍。" + extra,
                                                          "市政协委员王雅茜认为，乡村振兴核心在于激发农民的主动性。"]),
        ParsedArticle(title="同心助同城", paragraphs=["苏州市政协举办共商沪苏同城化发展研讨会。"]),
    ]


def _state(svc):
    docs, dense = svc.index.docs, svc.index.dense
    return docs.count_articles(), docs.chunk_ids(), dense.ids()


def test_reingesting_the_same_articles_adds_and_embeds_nothing(hashing_service):
    svc = hashing_service
    first = svc.ingest_articles("page.txt", _articles())
    assert len(first.added) == 2
    before = _state(svc)
    calls = svc.index.embeddings.calls
    again = svc.ingest_articles("page.txt", _articles())
    assert again.added == [] and again.updated == [] and len(again.unchanged) == 2
    assert svc.index.embeddings.calls == calls
    assert _state(svc) == before
    assert before[1] == before[2]  # SQLite and Chroma agree on the chunk ids


def test_a_changed_article_replaces_its_chunks_everywhere(hashing_service):
    svc = hashing_service
    svc.ingest_articles("page.txt", _articles())
    aid = svc.list_articles()[0].id
    old = {c.id for c in svc.index.docs.chunks_of(aid)}
    rep = svc.ingest_articles("page.txt", _articles(extra="对全市脱贫不稳定户进行跟踪帮扶。"))
    assert rep.updated == [aid] and len(rep.unchanged) == 1
    new = {c.id for c in svc.index.docs.chunks_of(aid)}
    assert new and not (old & new)
    n, sql_ids, chroma_ids = _state(svc)
    assert n == 2 and sql_ids == chroma_ids and not (old & chroma_ids)
    hits = svc.index.keyword_search("跟踪帮扶", 5)
    assert hits and hits[0].chunk.article_id == aid
    assert "跟踪帮扶" in svc.get_article(aid).text


def test_articles_gone_from_a_source_are_removed_on_reingest(hashing_service):
    svc = hashing_service
    svc.ingest_articles("page.txt", _articles())
    rep = svc.ingest_articles("page.txt", _articles()[:1])
    assert len(rep.removed) == 1
    n, sql_ids, chroma_ids = _state(svc)
    assert n == 1 and sql_ids == chroma_ids


def test_remove_deletes_an_article_everywhere(hashing_service):
    svc = hashing_service
    svc.ingest_articles("page.txt", _articles())
    aid = next(a.id for a in svc.list_articles() if a.title == "同心助同城")
    svc.remove_article(aid)
    with pytest.raises(ArticleNotFoundError):
        svc.get_article(aid)
    assert not any(h.chunk.article_id == aid for h in svc.index.keyword_search("苏州 同城化", 10))
    assert not any(h.chunk.article_id == aid for h in svc.index.dense_search("苏州市政协举办共商沪苏同城化发展研讨会", 10))
    n, sql_ids, chroma_ids = _state(svc)
    assert n == 1 and sql_ids == chroma_ids
    with pytest.raises(ArticleNotFoundError):
        svc.remove_article(aid)


class _Crash(Exception):
    pass


def test_a_crash_between_vectors_and_registry_leaves_no_half_article(hashing_service, monkeypatch):
    svc = hashing_service
    svc.ingest_articles("page.txt", _articles()[1:])
    before_articles = svc.index.docs.count_articles()

    def boom(*a, **k):
        raise _Crash

    monkeypatch.setattr(svc.index.docs, "replace_article", boom)
    with pytest.raises(_Crash):
        svc.ingest_articles("other.txt", _articles()[:1])
    monkeypatch.undo()
    # The vectors were written, the article was not: it is invisible to every search.
    assert svc.index.docs.count_articles() == before_articles
    assert len(svc.index.dense.ids()) > len(svc.index.docs.chunk_ids())
    assert not any("李芳" in h.chunk.text for h in svc.index.dense_search("李芳", 10))
    assert svc.index.sweep_orphans() > 0
    assert svc.index.dense.ids() == svc.index.docs.chunk_ids()
    # And the ingest completes when run again.
    rep = svc.ingest_articles("other.txt", _articles()[:1])
    assert len(rep.added) == 1


def test_an_index_built_with_another_model_is_refused(settings):
    build_service(settings, embeddings=HashingEmbeddings(model_id="test/model-a"))
    with pytest.raises(IndexMismatchError, match="test/model-a"):
        build_service(settings, embeddings=HashingEmbeddings(model_id="test/model-b"))


def test_keyword_search_matches_traditional_and_simplified(hashing_service):
    svc = hashing_service
    svc.ingest_articles("page.txt", _articles())
    hits = svc.index.keyword_search("漢中市副市長", 3)
    assert hits and "汉中市副市长" in hits[0].chunk.text
    assert svc.index.keyword_search("完全无关的词汇组合xyz", 3) == []
