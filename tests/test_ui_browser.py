"""The chat page in a real browser: Debian's Chromium driven by Playwright, against the real app.

Needs `apt-get install -y chromium fonts-wqy-microhei`; without Chromium these tests fail (CI installs it).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import threading
import time
from urllib.parse import urlsplit

import pytest

from conftest import free_port, model_cache_dir

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
QUESTION = "汉中市副市长是谁？"
FOLLOW_UP = "她介绍了哪些监测数据？"
TIMEOUT_MS = 90_000

EVIL_TITLE = "<script>alert(1)</script><img src=x onerror=alert(2)>"
EVIL_TEXT = [
    "滨江市发布了**bold**新规定，<b>x</b>标签不应加粗。",
    '模板${1+1}与{{value}}保持原样，<img src=x onerror="window.__pwned=1">不应加载。',
    "[链接](javascript:alert(3)) 和 # 标题 都只是文字。",
]
API_KEY = "s3cret-key-for-tests"


# -- the app and the browser -------------------------------------------------------------------
def make_app(settings, service):
    """The real app when `qa.web.app` exists; else the page alone, mounted the way the app mounts it."""
    if importlib.util.find_spec("qa.web.app") is not None:
        from qa.web.app import create_app

        return create_app(settings=settings, service=service)
    import gradio as gr
    from fastapi import FastAPI

    from qa.web.ui import build_ui

    return gr.mount_gradio_app(FastAPI(), build_ui(service, settings), path="/")


class LiveServer:
    """uvicorn on 127.0.0.1 in a background thread."""

    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the app did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(15)


def chromium_path() -> str:
    path = shutil.which("chromium")
    if not path:
        pytest.fail("Chromium is not installed, so the browser tests cannot run. Install it with "
                    "`apt-get install -y chromium fonts-wqy-microhei` (Debian); Playwright's own browser download "
                    "does not work offline.", pytrace=False)
    return path


@pytest.fixture(scope="module")
def browser():
    path = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Watched:
    """A page whose requests and dialogs are recorded."""

    def __init__(self, browser, server: LiveServer):
        self.server = server
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", self._dialog)
        self.page.set_default_timeout(TIMEOUT_MS)

    def _dialog(self, d):
        self.dialogs.append(f"{d.type}: {d.message}")
        d.dismiss()

    def open(self):
        self.page.goto(self.server.url, wait_until="load")
        self.page.locator("#question textarea").wait_for()
        return self.page

    def outside_requests(self) -> list[str]:
        return [u for u in self.requests
                if urlsplit(u).scheme not in ("data", "blob") and urlsplit(u).hostname != "127.0.0.1"]

    def close(self):
        self.context.close()


def ask(page, question: str, n: int, *, enter: bool = False):
    """Type a question, send it, wait for the n-th finished answer and return its locator."""
    box = page.locator("#question textarea")
    box.fill(question)
    if enter:
        box.press("Enter")
    else:
        page.locator("#send").click()
    answers = page.locator("#chat .qa-answer:not(.qa-streaming)")
    from playwright.sync_api import expect

    expect(answers).to_have_count(n, timeout=TIMEOUT_MS)
    return answers.nth(n - 1)


# -- the chat page over the default corpus -------------------------------------------------------
def test_ask_cite_open_and_follow_up(browser, seed_service):
    from playwright.sync_api import expect

    expected = seed_service.ask(QUESTION)
    assert not expected.abstained and expected.citations
    with LiveServer(make_app(seed_service.settings, seed_service)) as server:
        w = Watched(browser, server)
        try:
            page = w.open()
            expect(page.locator("#sources")).to_contain_text("引用来源")

            answer = ask(page, QUESTION, 1)
            expect(answer).to_contain_text("李芳")
            expect(answer).to_contain_text("[1]")
            assert "资料中没有找到答案" not in answer.inner_text()

            # The cited sources: title, byline and the cited passage, with a one-click open.
            cards = page.locator("#sources .qa-source")
            expect(cards.first).to_be_visible()
            first = expected.citations[0]
            byline = seed_service.get_article(first.article_id).byline
            expect(cards.first).to_contain_text(f"[{first.n}]")
            expect(cards.first).to_contain_text(first.title)
            expect(cards.first).to_contain_text(byline)
            assert cards.first.locator("blockquote.qa-passage").inner_text().strip() == first.passage.strip()

            cards.first.locator("button.qa-open").click()
            viewer = page.locator("#article-view")
            marks = viewer.locator("mark.cited")
            expect(marks.first).to_be_visible()
            assert "\n".join(marks.all_inner_texts()) == first.passage
            expect(viewer.locator("h2")).to_have_text(first.title)
            expect(viewer).to_contain_text(byline)
            # The whole article is there, not just the passage.
            article = seed_service.get_article(first.article_id)
            assert len(viewer.locator(".qa-article-body").inner_text()) > len(first.passage) + 100
            expect(viewer.locator(".qa-article-body")).to_contain_text(article.paragraphs[0][:20])

            # A follow-up that only makes sense with the history: the page passes the chat so far.
            history = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": expected.answer}]
            expected_follow = seed_service.ask(FOLLOW_UP, history=history)
            assert expected_follow.standalone_question  # the service read it with the history
            follow = ask(page, FOLLOW_UP, 2, enter=True)
            expect(follow).to_contain_text(expected_follow.standalone_question)
            expect(follow.locator(".qa-answer-text")).to_have_text(expected_follow.answer)
            if expected_follow.abstained:
                expect(follow).to_contain_text("资料中没有找到答案")
            else:
                assert "资料中没有找到答案" not in follow.inner_text()
                expect(follow).to_contain_text("[1]")
            expect(page.locator("#sources")).to_contain_text(expected_follow.sources[0].title)
            expect(page.locator("#chat")).to_contain_text(QUESTION)

            assert w.outside_requests() == [], w.outside_requests()
            assert any("127.0.0.1" in u for u in w.requests)
            assert w.dialogs == []
        finally:
            w.close()


def test_abstention_says_so_and_shows_nearest(browser, seed_service):
    from playwright.sync_api import expect

    with LiveServer(make_app(seed_service.settings, seed_service)) as server:
        w = Watched(browser, server)
        try:
            page = w.open()
            answer = ask(page, "火星上有多少只猫？", 1)
            expect(answer).to_contain_text("资料中没有找到答案")
            expect(page.locator("#sources")).to_contain_text("资料中没有找到答案")
            cards = page.locator("#sources .qa-source")
            expect(cards.first).to_be_visible()
            cards.first.locator("button.qa-open").click()
            expect(page.locator("#article-view mark.cited").first).to_be_visible()
            assert w.outside_requests() == []
        finally:
            w.close()


# -- article data is data: escaping, uploads and removal behind the key ------------------------
def test_article_content_is_never_markup(browser, tmp_path):
    from fakes import HashingEmbeddings
    from playwright.sync_api import expect

    from qa.components import build_service
    from qa.settings import Settings

    settings = Settings(data_dir=tmp_path / "index", model_cache_dir=model_cache_dir(), api_key=API_KEY)
    service = build_service(settings, embeddings=HashingEmbeddings())
    evil = tmp_path / "evil.jsonl"
    evil.write_text(json.dumps({"title": EVIL_TITLE, "byline": "<i>记者</i> 张三", "paragraphs": EVIL_TEXT},
                               ensure_ascii=False) + "\n", encoding="utf-8")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"title": "好文章", "text": "正文一句。"}\n{not json\n', encoding="utf-8")
    unsupported = tmp_path / "notes.csv"
    unsupported.write_text("a,b\n", encoding="utf-8")

    with LiveServer(make_app(settings, service)) as server:
        w = Watched(browser, server)
        try:
            page = w.open()
            page.get_by_role("tab", name="文章库 / Articles").click()
            expect(page.locator("#article-list")).to_contain_text("没有文章")

            # Upload without the key: refused, nothing indexed.
            upload = page.locator("#upload-files input[type=file]")
            upload.set_input_files([str(evil), str(broken), str(unsupported)])
            expect(page.locator("#upload-files")).to_contain_text("notes")
            page.locator("#ingest").click()
            expect(page.locator("#ingest-status")).to_contain_text("wrong or missing API key")
            assert service.is_empty()

            page.locator("#api-key input").fill(API_KEY)
            page.locator("#ingest").click()
            status = page.locator("#ingest-status")
            expect(status).to_contain_text("evil.jsonl: 1 articles (1 added")
            expect(status).to_contain_text("error: broken.jsonl: malformed JSONL line 2")
            expect(status).to_contain_text("error: notes.csv: unsupported file type '.csv'")

            # The title is shown literally in the list and in the article view.
            listing = page.locator("#article-list")
            expect(listing).to_contain_text(EVIL_TITLE)
            listing.get_by_role("button", name=EVIL_TITLE).click()
            view = page.locator("#library-article")
            expect(view.locator("h2")).to_have_text(EVIL_TITLE)
            expect(view).to_contain_text("<i>记者</i> 张三")
            body = view.locator(".qa-article-body")
            for paragraph in EVIL_TEXT:
                expect(body).to_contain_text(paragraph)

            # Search finds it by text, still literal.
            page.locator("#article-search textarea").fill("**bold**")
            page.locator("#article-search-btn").click()
            expect(listing).to_contain_text("找到 1 篇")
            expect(listing).to_contain_text(EVIL_TITLE)

            # In the chat: the question, the answer and the sources are literal too.
            page.get_by_role("tab", name="问答 / Ask").click()
            page.locator("#question textarea").wait_for()
            ask(page, "滨江市发布了什么新规定？<img src=x onerror=alert(4)>", 1)
            expect(page.locator("#chat")).to_contain_text("<img src=x onerror=alert(4)>")
            sources = page.locator("#sources")
            expect(sources).to_contain_text(EVIL_TITLE)
            expect(sources).to_contain_text("**bold**")
            sources.locator("button.qa-open").first.click()
            expect(page.locator("#article-view h2")).to_have_text(EVIL_TITLE)
            expect(page.locator("#article-view mark.cited").first).to_be_visible()

            # Nothing from the article became markup, and no script ran.
            for where in ("#chat", "#sources", "#article-view", "#library-article", "#article-list"):
                for tag in ("script", "img", "b", "i", "a"):
                    n = page.locator(f"{where} .qa-answer {tag}, {where} .qa-source {tag}, "
                                     f"{where} .qa-article {tag}, {where} .qa-list {tag}, "
                                     f"{where} .qa-question {tag}").count()
                    assert n == 0, f"a <{tag}> was rendered in {where}"
            assert page.evaluate("window.__pwned") is None

            # Removal needs the key too.
            page.get_by_role("tab", name="文章库 / Articles").click()
            listing.get_by_role("button", name=EVIL_TITLE).click()
            page.locator("#api-key input").fill("wrong")
            page.locator("#remove-article").click()
            expect(page.locator("#remove-status")).to_contain_text("wrong or missing API key")
            assert len(service.list_articles()) == 2
            page.locator("#api-key input").fill(API_KEY)
            page.locator("#remove-article").click()
            expect(page.locator("#remove-status")).to_contain_text("已删除")
            assert [a.title for a in service.list_articles()] == ["好文章"]
            page.locator("#article-search textarea").fill("")
            page.locator("#article-search-btn").click()
            expect(listing).to_contain_text("共 1 篇")

            assert w.dialogs == [], w.dialogs
            assert w.outside_requests() == [], w.outside_requests()
        finally:
            w.close()
