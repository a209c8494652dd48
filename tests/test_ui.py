"""The chat page's rendering helpers and event handlers, without a browser."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest

from qa.answering.types import Answer, Citation, Source
from qa.web import ui
from vectorstore.records import ArticleRecord

EVIL_TITLE = "<script>alert(1)</script><img src=x onerror=alert(2)>"
EVIL_TEXT = "第一段有**bold**和<b>x</b>。\n第二段 <img src=x onerror=alert(3)> 与 ${1+1} {{value}}。\n第三段 & \"引号\"。"


class Dom(HTMLParser):
    """Tags, and the text inside <mark class="cited">, of an HTML fragment."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []
        self.marks: list[str] = []
        self._in_mark = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "mark" and "cited" in (dict(attrs).get("class") or ""):
            self._in_mark = True
            self.marks.append("")

    def handle_endtag(self, tag):
        if tag == "mark":
            self._in_mark = False

    def handle_data(self, data):
        self.text.append(data)
        if self._in_mark:
            self.marks[-1] += data


def evil_article(**kw) -> ArticleRecord:
    return ArticleRecord(id="a1", title=EVIL_TITLE, text=EVIL_TEXT, paragraphs=tuple(EVIL_TEXT.split("\n")),
                         source="<b>src</b>.jsonl", byline="<i>记者</i>", subtitle="**sub**", **kw)


# -- escaping and highlighting -----------------------------------------------------------------
def test_esc_turns_markup_into_text():
    assert ui.esc(EVIL_TITLE) == "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"
    assert ui.esc(None) == ""
    assert ui.esc('"\'&') == "&quot;&#x27;&amp;"


def test_answer_html_styles_markers_and_escapes_the_rest():
    out = ui.answer_html("李芳[1]。<b>x</b>**y**[12]\n下一行")
    dom = Dom(out)
    assert "b" not in dom.tags
    assert "".join(dom.text) == "李芳[1]。<b>x</b>**y**[12]下一行"
    assert out.count('class="cite-ref"') == 2
    assert "<br>" in out


@pytest.mark.parametrize("start,end", [(0, 5), (3, 9), (10, 40), (0, len(EVIL_TEXT)), (20, 21)])
def test_highlight_marks_exactly_the_span(start, end):
    dom = Dom(ui.highlighted_text_html(EVIL_TEXT, start, end))
    assert "\n".join(dom.marks) == EVIL_TEXT[start:end].strip("\n")
    assert set(dom.tags) <= {"p", "mark"}
    assert "".join(dom.text) == EVIL_TEXT.replace("\n", "")


def test_highlight_across_paragraphs_marks_each_part():
    first_nl = EVIL_TEXT.index("\n")
    start, end = first_nl - 3, first_nl + 4
    html = ui.highlighted_text_html(EVIL_TEXT, start, end)
    dom = Dom(html)
    assert len(dom.marks) == 2
    assert "\n".join(dom.marks) == EVIL_TEXT[start:end]
    assert html.count('id="qa-cited"') == 1


@pytest.mark.parametrize("start,end", [(None, None), (-5, -1), (50, 10), ("x", 3), (5, 5), (10_000, 20_000)])
def test_highlight_ignores_bad_spans(start, end):
    dom = Dom(ui.highlighted_text_html(EVIL_TEXT, start, end))
    assert dom.marks == []
    assert "".join(dom.text) == EVIL_TEXT.replace("\n", "")


def test_highlight_clamps_a_span_running_past_the_end():
    dom = Dom(ui.highlighted_text_html("一二三", 1, 99))
    assert dom.marks == ["二三"]


def test_article_html_shows_every_field_as_text():
    a = evil_article()
    html = ui.article_html(a, 0, 5)
    dom = Dom(html)
    assert not {"script", "img", "b", "i", "a"} & set(dom.tags)
    text = "".join(dom.text)
    for piece in (EVIL_TITLE, "**sub**", "<i>记者</i>", "<b>src</b>.jsonl", "a1"):
        assert piece in text
    assert dom.marks == [EVIL_TEXT[0:5]]
    assert "qa-cited-banner" in html
    assert "qa-cited-banner" not in ui.article_html(a)


def _answer(abstained=False, note="", standalone="") -> Answer:
    cites = [] if abstained else [Citation("a1", EVIL_TITLE, "第一段有**bold**", 0, 11, n=1)]
    sources = [Source("a1", EVIL_TITLE, "第一段有**bold**和<b>x</b>。", 0, 20, rank=1, score=0.5)]
    text = "资料中没有找到这个问题的答案。" if abstained else "第一段有**bold**[1]。"
    return Answer("q", text, abstained, cites, sources, note=note, standalone_question=standalone)


def test_sources_html_cites_with_open_buttons():
    html = ui.sources_html(_answer(), lambda aid: "<i>记者</i> · f.jsonl")
    dom = Dom(html)
    assert not {"script", "img", "b", "i"} & set(dom.tags)
    text = "".join(dom.text)
    assert "[1]" in text and EVIL_TITLE in text and "<i>记者</i> · f.jsonl" in text and "第一段有**bold**" in text
    assert 'data-article="a1" data-start="0" data-end="11"' in html
    assert "Retrieved passages (1)" in html
    assert ui.NO_ANSWER not in html


def test_sources_html_for_an_abstention_says_so_and_lists_nearest():
    html = ui.sources_html(_answer(abstained=True))
    assert ui.NO_ANSWER in html
    assert "Nearest passages" in html
    assert 'data-start="0" data-end="20"' in html
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


def test_sources_html_before_any_question():
    assert "Sources" in ui.sources_html(None)


def test_chat_answer_html():
    html = ui.chat_answer_html(_answer(note="LLM 超时，<改用>抽取式回答", standalone="汉中市副市长是谁？ 她呢"))
    dom = Dom(html)
    text = "".join(dom.text)
    assert "第一段有**bold**[1]。" in text
    assert "LLM 超时，<改用>抽取式回答" in text
    assert "汉中市副市长是谁？ 她呢" in text
    assert f"[1] {EVIL_TITLE}" in text
    assert not {"script", "img", "b"} & set(dom.tags)
    assert ui.NO_ANSWER not in html
    abstained = ui.chat_answer_html(_answer(abstained=True))
    assert ui.NO_ANSWER in abstained


def test_article_list_html_search_and_snippet():
    arts = [evil_article(), ArticleRecord(id="b2", title="汉中新闻", text="汉中市副市长李芳介绍。", paragraphs=("x",))]
    all_html = ui.article_list_html(arts)
    assert "共 2 篇" in all_html
    assert all_html.count('class="qa-open"') == 2
    found = ui.article_list_html(arts, "**BOLD**")
    assert "找到 1 篇" in found and 'data-article="a1"' in found and 'data-article="b2"' not in found
    assert '<mark class="hit">**bold**</mark>' in found
    dom = Dom(found)
    assert not {"script", "img", "b"} & set(dom.tags)
    assert "没有文章" in ui.article_list_html(arts, "不存在的词")


def test_key_ok_compares_keys():
    assert ui.key_ok(None, None) and ui.key_ok("", "anything")
    assert ui.key_ok("k3y", "k3y") and ui.key_ok("k3y", " k3y ")
    assert not ui.key_ok("k3y", "k3") and not ui.key_ok("k3y", "") and not ui.key_ok("k3y", None)
    assert not ui.key_ok("k3y", 123)
    assert ui.key_ok("密钥", "密钥")


# -- handlers ----------------------------------------------------------------------------------
class FakeService:
    """Records what the page asks; streams text, a discard, then the answer."""

    def __init__(self):
        self.calls = []
        self.article = ArticleRecord(id="a1", title="汉中新闻", text="汉中市副市长李芳介绍。", paragraphs=("x",),
                                     byline="本报记者")

    def ask_stream(self, question, k=None, history=None):
        self.calls.append((question, k, list(history or [])))
        yield "草稿"
        yield None
        yield "李芳"
        yield "[1]。"
        yield Answer(question, "李芳[1]。", False, [Citation("a1", "汉中新闻", "汉中市副市长李芳介绍。", 0, 11, n=1)], [])

    def get_article(self, article_id):
        from qa.errors import ArticleNotFoundError

        if article_id != "a1":
            raise ArticleNotFoundError(article_id)
        return self.article


def _run(gen):
    return list(gen)


def test_ask_streams_discards_and_passes_history():
    svc = FakeService()
    h = ui._Handlers(svc, SimpleNamespace(api_key=None, api_key_reads=False))
    steps = _run(h.ask("汉中市副市长是谁？", [], [], None))
    contents = [s[0][-1]["content"] for s in steps]
    assert "草稿" in contents[1] and "草稿" not in contents[2]  # None discarded the draft
    assert "qa-streaming" in contents[-2] and "qa-streaming" not in contents[-1]
    chat, history, sources, viewer, box = steps[-1]
    assert [m["role"] for m in chat] == ["user", "assistant"]
    assert history == [{"role": "user", "content": "汉中市副市长是谁？"}, {"role": "assistant", "content": "李芳[1]。"}]
    assert "本报记者" in sources and "汉中新闻" in sources
    assert box == ""
    steps = _run(h.ask("她介绍了哪些监测数据？", chat, history, None))
    assert svc.calls[-1] == ("她介绍了哪些监测数据？", None, history)
    assert len(steps[-1][1]) == 4


def test_ask_ignores_an_empty_question_and_escapes_the_question():
    svc = FakeService()
    h = ui._Handlers(svc, SimpleNamespace(api_key=None, api_key_reads=False))
    steps = _run(h.ask("   ", [], [], None))
    assert len(steps) == 1 and steps[0][0] == [] and svc.calls == []
    steps = _run(h.ask("<img src=x onerror=alert(1)>", [], [], None))
    assert "&lt;img src=x onerror=alert(1)&gt;" in steps[-1][0][0]["content"]


def test_ask_shows_service_errors():
    from qa.errors import BadInputError

    class Failing(FakeService):
        def ask_stream(self, question, k=None, history=None):
            raise BadInputError("the question is too long (2000 characters; the limit is 1000)")
            yield

    h = ui._Handlers(Failing(), SimpleNamespace(api_key=None, api_key_reads=False))
    steps = _run(h.ask("问题", [], [], None))
    assert "the question is too long" in steps[-1][0][-1]["content"]
    assert steps[-1][1] == []


def test_reads_need_the_key_only_with_api_key_reads():
    svc = FakeService()
    open_reads = ui._Handlers(svc, SimpleNamespace(api_key="k", api_key_reads=False))
    assert "李芳" in _run(open_reads.ask("问题", [], [], None))[-1][0][-1]["content"]
    closed = ui._Handlers(svc, SimpleNamespace(api_key="k", api_key_reads=True))
    assert "API key" in _run(closed.ask("问题", [], [], "wrong"))[-1][0][-1]["content"]
    assert svc.calls == [("问题", None, [])]
    assert "李芳" in _run(closed.ask("问题", [], [], "k"))[-1][0][-1]["content"]


def test_open_cited_renders_the_highlighted_article():
    h = ui._Handlers(FakeService(), SimpleNamespace(api_key=None, api_key_reads=False))
    html = h.open_cited(None, SimpleNamespace(_data={"article_id": "a1", "start": 0, "end": 6}))
    assert Dom(html).marks == ["汉中市副市长"]
    missing = h.open_cited(None, SimpleNamespace(_data={"article_id": "nope", "start": 0, "end": 6}))
    assert "nope" in missing and "qa-error" in missing


def test_ingest_and_remove_need_the_key(hashing_service, tmp_path):
    svc = hashing_service
    settings = svc.settings.model_copy(update={"api_key": "k3y"})
    h = ui._Handlers(svc, settings)
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"title": EVIL_TITLE, "text": "正文**一**句。"}, ensure_ascii=False) + "\n{bad\n",
                    encoding="utf-8")
    bad = tmp_path / "notes.csv"
    bad.write_text("a,b", encoding="utf-8")

    status, listing, files = h.ingest([str(good)], "", "wrong")
    assert "wrong or missing API key" in status and svc.is_empty()

    status, listing, files = h.ingest([str(good), str(bad)], "", "k3y")
    text = "".join(Dom(status).text)
    assert "good.jsonl: 1 articles (1 added, 0 updated, 0 unchanged, 0 removed)" in text
    assert "error: good.jsonl: malformed JSONL line 2" in text
    assert "error: notes.csv: unsupported file type '.csv'" in text
    assert files is None
    assert "共 1 篇" in listing and ui.esc(EVIL_TITLE) in listing and EVIL_TITLE not in listing

    aid = svc.list_articles()[0].id
    view, current, _ = h.open_article(None, SimpleNamespace(_data={"article_id": aid}))
    assert current == aid and ui.esc(EVIL_TITLE) in view

    out = h.remove(aid, "", None)
    assert "wrong or missing API key" in out[0] and len(svc.list_articles()) == 1
    out = h.remove(aid, "", "k3y")
    assert "已删除" in out[0] and svc.is_empty() and out[3] is None
    assert "no article" in h.remove(aid, "", "k3y")[0]


def test_ingest_refuses_files_over_the_limit(hashing_service, tmp_path):
    settings = hashing_service.settings.model_copy(update={"max_upload_bytes": 1_000})
    h = ui._Handlers(hashing_service, settings)
    big = tmp_path / "big.txt"
    big.write_text("字" * 2_000, encoding="utf-8")
    status, _, _ = h.ingest([str(big)], "", None)
    assert "error: big.txt: is larger than" in status
    assert hashing_service.is_empty()


def test_build_ui_does_no_work_up_front(settings):
    """Building the page calls nothing on the service (it is mounted lazily by the app)."""

    class Untouchable:
        def __getattr__(self, name):
            raise AssertionError(f"build_ui used service.{name}")

    import gradio as gr

    demo = ui.build_ui(Untouchable(), settings)
    assert isinstance(demo, gr.Blocks)
    keyed = ui.build_ui(Untouchable(), settings.model_copy(update={"api_key": "k"}))
    ids = lambda blocks: {getattr(b, "elem_id", None) for b in blocks.blocks.values()}  # noqa: E731
    assert {"question", "send", "chat", "sources", "article-view", "article-list", "upload-files"} <= ids(demo)
    assert "api-key" in ids(keyed) and "api-key" not in ids(demo)
