"""The same index operations against a real `chroma run` server (QA_CHROMA_URL)."""

import pytest
from chroma_server import ChromaServer
from conftest import free_port
from fakes import HashingEmbeddings

from qa.components import build_service
from qa.errors import StoreUnavailableError
from qa.ingest.parsed import ParsedArticle
from qa.settings import Settings

ARTICLES = [
    ParsedArticle(title="汉中市政协常委会会议", paragraphs=["据汉中市副市长李芳介绍，汉中市组建了网格员监测队伍。"]),
    ParsedArticle(title="同心助同城", paragraphs=["苏州市政协举办共商沪苏同城化发展研讨会。"]),
]


@pytest.fixture
def chroma_server(tmp_path):
    server = ChromaServer(tmp_path / "chroma-server", free_port()).start()
    yield server
    server.stop()


def test_server_mode_gives_the_same_results_as_embedded(tmp_path, chroma_server):
    embedded = build_service(Settings(data_dir=tmp_path / "a"), embeddings=HashingEmbeddings())
    remote = build_service(Settings(data_dir=tmp_path / "b", chroma_url=chroma_server.url), embeddings=HashingEmbeddings())
    for svc in (embedded, remote):
        svc.ingest_articles("page.txt", ARTICLES)
    assert remote.index.dense.ids() == remote.index.docs.chunk_ids()
    for q in ("汉中市副市长是谁", "沪苏同城化研讨会"):
        a = [(h.chunk.id, round(h.score, 4)) for h in embedded.retriever.search(q)]
        b = [(h.chunk.id, round(h.score, 4)) for h in remote.retriever.search(q)]
        assert a == b
    # Idempotent and removable against the server too.
    assert len(remote.ingest_articles("page.txt", ARTICLES).unchanged) == 2
    aid = remote.list_articles()[0].id
    remote.remove_article(aid)
    assert remote.index.dense.ids() == remote.index.docs.chunk_ids()


def test_a_dead_server_is_a_clear_error(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(StoreUnavailableError, match="127.0.0.1"):
        build_service(Settings(data_dir=tmp_path / "c", chroma_url=url), embeddings=HashingEmbeddings())
