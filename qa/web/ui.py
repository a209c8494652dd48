"""The chat page and the articles view: a Gradio Blocks app over `QAService`.

Everything that comes from articles or users (titles, text, bylines, file names, questions) is data:
it is HTML-escaped here, piece by piece, and never rendered as Markdown or HTML. The chat renders
messages as (sanitized) HTML with Markdown off, and every message is built by this module from
escaped pieces. Nothing here loads from an outside host.
"""

import hmac
import html
import os
import re
from collections.abc import Iterator

import gradio as gr

from qa.answering.types import Answer
from qa.errors import ArticleNotFoundError, BadInputError, QAError

NO_ANSWER = "资料中没有找到答案"
UNTITLED = "（无标题）"
HISTORY_MESSAGES = 20  # previous messages passed to the service with a follow-up question
LIST_LIMIT = 200  # articles shown at once in the articles view
SNIPPET_CHARS = 36

_MARKER = re.compile(r"\[(\d{1,3})\]")

CSS = """
#qa-app-header { display: flex; align-items: baseline; gap: 1rem; flex-wrap: wrap; margin: 0.2rem 0 0.4rem; }
#qa-app-header h1 { font-size: 1.55rem; margin: 0; font-weight: 700; }
#qa-app-header h1 small { font-size: 0.95rem; font-weight: 400; color: var(--body-text-color-subdued); margin-left: 0.4rem; }
#qa-app-header .qa-tagline { color: var(--body-text-color-subdued); font-size: 0.92rem; }
.qa-answer { line-height: 1.75; }
.qa-answer-text { white-space: normal; }
.cite-ref { color: var(--color-accent); font-weight: 600; font-size: 0.78em; position: relative; top: -0.45em;
  margin: 0 1px; white-space: nowrap; }
.qa-abstain { display: inline-block; font-weight: 700; color: #9a3412; background: #ffedd5; border-radius: 6px;
  padding: 1px 8px; margin-bottom: 4px; }
.qa-note { margin-top: 6px; font-size: 0.86em; color: #854d0e; background: #fef9c3; border-radius: 6px; padding: 3px 8px; }
.qa-meta { margin-top: 6px; font-size: 0.82em; color: var(--body-text-color-subdued); }
.qa-cites { margin-top: 6px; font-size: 0.84em; color: var(--body-text-color-subdued); }
.qa-error { color: #b91c1c; }
.qa-streaming::after { content: "▍"; animation: qa-blink 1s steps(2, start) infinite; }
@keyframes qa-blink { to { visibility: hidden; } }
.qa-panel-title { font-weight: 700; font-size: 1rem; margin: 0 0 0.5rem; }
.qa-empty { color: var(--body-text-color-subdued); font-size: 0.92rem; padding: 0.6rem 0.2rem; }
.qa-source { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 0.55rem 0.7rem;
  margin-bottom: 0.55rem; background: var(--background-fill-primary); }
.qa-source-head { font-weight: 600; line-height: 1.5; }
.qa-source-head .cite-ref { top: 0; font-size: 0.95em; margin-right: 4px; }
.qa-source-meta { font-size: 0.8rem; color: var(--body-text-color-subdued); margin: 2px 0 4px; }
#sources blockquote.qa-passage { margin: 4px 0 6px !important; padding: 4px 10px; border-left: 3px solid #f5c84c; background: var(--background-fill-secondary);
  font-size: 0.9rem; line-height: 1.65; white-space: pre-wrap; }
#sources button.qa-open, #article-view button.qa-open {
  font-size: 0.8rem !important; font-weight: 500 !important; padding: 1px 10px !important; border-radius: 6px !important;
  cursor: pointer; border: 1px solid var(--color-accent) !important; color: var(--color-accent) !important;
  background: transparent !important; box-shadow: none !important; line-height: 1.6 !important; margin: 0 !important; }
#sources button.qa-open:hover { background: var(--color-accent) !important; color: white !important; }
.qa-sources details { margin-top: 0.4rem; }
.qa-sources summary { cursor: pointer; font-size: 0.9rem; color: var(--body-text-color-subdued); margin-bottom: 0.4rem; }
.qa-article { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 0.7rem 0.9rem; }
.qa-article-head h2 { font-size: 1.2rem; margin: 0 0 0.2rem; line-height: 1.4; }
.qa-article-sub { color: var(--body-text-color-subdued); font-size: 0.95rem; margin-bottom: 0.2rem; }
.qa-article-meta { color: var(--body-text-color-subdued); font-size: 0.8rem; margin-bottom: 0.5rem; }
.qa-article-meta code { font-size: 0.78rem; }
.qa-article-body { position: relative; max-height: 42vh; overflow-y: auto; padding-right: 6px; }
.qa-article-body p { margin: 0 0 0.7em; line-height: 1.8; text-indent: 2em; }
mark.cited { background: #ffe066; color: #111; padding: 1px 0; border-radius: 2px; box-shadow: 0 0 0 2px #ffe066; }
mark.hit { background: #fff3bf; color: #111; }
.qa-cited-banner { font-size: 0.82rem; margin-bottom: 0.4rem; color: var(--body-text-color-subdued); }
.qa-mark-sample { background: #ffe066; color: #111; padding: 0 4px; margin: 0 3px; border-radius: 2px; }
#article-list table.qa-list { width: 100%; border-collapse: collapse; font-size: 0.9rem; margin: 0; border: none !important; }
#article-list table.qa-list tbody, #article-list table.qa-list tr { border: none !important; background: transparent !important; }
#article-list table.qa-list td { border: none !important; border-bottom: 1px solid var(--border-color-primary) !important;
  padding: 7px 4px !important; vertical-align: top; background: transparent !important; }
#article-list button.qa-open { all: unset; cursor: pointer; font-size: 0.95rem; font-weight: 600; line-height: 1.5;
  color: var(--body-text-color); }
#article-list button.qa-open:hover { color: var(--color-accent); text-decoration: underline; }
#article-list .qa-small { font-size: 0.78rem; color: var(--body-text-color-subdued); line-height: 1.5; }
.qa-status div { margin: 2px 0; font-size: 0.9rem; }
.qa-status .qa-err { color: #b91c1c; }
.qa-status .qa-ok { color: #15803d; }
"""

# Clicks on buttons inside our HTML panels become one server event carrying the button's data.
_JS_OPEN_BUTTONS = """
element.addEventListener('click', (e) => {
  const b = e.target.closest('button[data-article]');
  if (!b) return;
  trigger('click', {article_id: b.dataset.article, start: Number(b.dataset.start || -1),
                    end: Number(b.dataset.end || -1)});
});
"""
# Scroll the article body so the highlighted span is in view whenever a new article opens.
_JS_SCROLL_TO_MARK = """
const qaScroll = () => {
  const body = element.querySelector('.qa-article-body');
  const m = element.querySelector('mark.cited');
  if (body && m) body.scrollTop = Math.max(0, m.offsetTop - body.clientHeight / 3);
};
watch('value', () => requestAnimationFrame(qaScroll));
"""


# -- escaping and rendering (pure functions: article data in, escaped HTML out) ----------------
def esc(value: object) -> str:
    """Text as HTML text: nothing in it can become markup."""
    return html.escape("" if value is None else str(value), quote=True)


def answer_html(text: str) -> str:
    """An answer's text, escaped, with its [n] markers styled (they stay the literal text "[n]")."""
    return _MARKER.sub(r'<span class="cite-ref">[\1]</span>', esc(text)).replace("\n", "<br>")


def _clamp_span(text: str, start, end) -> tuple[int, int] | None:
    try:
        s, e = int(start), int(end)
    except (TypeError, ValueError):
        return None
    s, e = max(0, min(s, len(text))), max(0, min(e, len(text)))
    return (s, e) if s < e else None


def highlighted_text_html(text: str, start=None, end=None, mark_class: str = "cited") -> str:
    """The article text as escaped paragraphs, with text[start:end] inside <mark class="cited">.

    Paragraphs are the text's lines. A span that crosses paragraphs is marked in each of them, so
    the marks' texts joined by "\\n" equal text[start:end].
    """
    span = _clamp_span(text, start, end)
    out: list[str] = []
    first = True
    a = 0
    for line in text.split("\n"):
        b = a + len(line)
        s, e = (max(a, span[0]), min(b, span[1])) if span else (0, 0)
        if s < e:
            attrs = f' class="{mark_class}"' + (' id="qa-cited"' if first else "")
            first = False
            body = f"{esc(text[a:s])}<mark{attrs}>{esc(text[s:e])}</mark>{esc(text[e:b])}"
        else:
            body = esc(line)
        if line:
            out.append(f"<p>{body}</p>")
        a = b + 1
    return "".join(out)


def article_html(article, start=None, end=None) -> str:
    """The whole article: title, subtitle, byline, source and the text, with an optional highlight."""
    meta = [x for x in (article.byline, article.date, article.column) if x]
    meta_html = " · ".join(esc(x) for x in meta)
    source = f"来源文件 / source：{esc(article.source)}" if article.source else ""
    ident = f"<code>{esc(article.id)}</code>"
    meta_line = " · ".join(x for x in (meta_html, source, ident) if x)
    sub = f'<div class="qa-article-sub">{esc(article.subtitle)}</div>' if article.subtitle else ""
    span = _clamp_span(article.text, start, end)
    banner_html = ""
    if span:
        banner_html = ('<div class="qa-cited-banner">引用的段落已用<span class="qa-mark-sample">高亮</span>标出'
                       " / the cited passage is highlighted</div>")
    return (
        '<div class="qa-article">'
        f'<div class="qa-article-head"><h2 class="qa-article-title">{esc(article.title or UNTITLED)}</h2>{sub}'
        f'<div class="qa-article-meta">{meta_line}</div></div>'
        f"{banner_html}"
        f'<div class="qa-article-body">{highlighted_text_html(article.text, *(span or (None, None)))}</div>'
        "</div>"
    )


def _open_button(article_id: str, start: int, end: int, label: str) -> str:
    return (f'<button type="button" class="qa-open" data-article="{esc(article_id)}" data-start="{int(start)}" '
            f'data-end="{int(end)}">{esc(label)}</button>')


def _source_card(label_html: str, title: str, meta: str, passage: str, article_id: str, start: int, end: int) -> str:
    return (
        f'<div class="qa-source" data-article="{esc(article_id)}">'
        f'<div class="qa-source-head">{label_html}<span class="qa-source-title">{esc(title or UNTITLED)}</span></div>'
        f'<div class="qa-source-meta">{esc(meta)}</div>'
        f'<blockquote class="qa-passage">{esc(passage)}</blockquote>'
        f"{_open_button(article_id, start, end, '打开原文并高亮 / Open article')}"
        "</div>"
    )


def sources_html(answer: Answer | None, meta_of=lambda article_id: "") -> str:
    """The panel beside the chat: the cited passages, or for an abstention the nearest ones."""
    if answer is None:
        return ('<div class="qa-sources"><div class="qa-panel-title">引用来源 / Sources</div>'
                '<div class="qa-empty">提问后，这里列出回答引用的原文段落；点击可打开全文并高亮引用处。<br>'
                "Cited passages appear here after you ask.</div></div>")
    parts = ['<div class="qa-sources">']
    if answer.abstained or not answer.citations:
        parts.append(f'<div class="qa-panel-title qa-no-answer">{NO_ANSWER} / No answer found</div>')
        if answer.sources:
            parts.append('<div class="qa-empty">最接近的段落（仅供参考） / Nearest passages:</div>')
        for s in answer.sources:
            parts.append(_source_card(f'<span class="cite-ref">#{s.rank}</span>', s.title, meta_of(s.article_id),
                                      s.passage, s.article_id, s.start, s.end))
    else:
        parts.append('<div class="qa-panel-title">引用来源 / Cited sources</div>')
        for c in answer.citations:
            parts.append(_source_card(f'<span class="cite-ref">[{c.n}]</span>', c.title, meta_of(c.article_id),
                                      c.passage, c.article_id, c.start, c.end))
        if answer.sources:
            parts.append(f"<details><summary>检索到的段落 / Retrieved passages ({len(answer.sources)})</summary>")
            for s in answer.sources:
                parts.append(_source_card(f'<span class="cite-ref">#{s.rank}</span>', s.title, meta_of(s.article_id),
                                          s.passage, s.article_id, s.start, s.end))
            parts.append("</details>")
    parts.append("</div>")
    return "".join(parts)


def chat_answer_html(answer: Answer) -> str:
    """The final assistant message: the answer with [n] markers, and what a reader should know."""
    parts = ['<div class="qa-answer">']
    if answer.abstained:
        parts.append(f'<div class="qa-abstain">{NO_ANSWER} / No answer in the articles</div>')
    parts.append(f'<div class="qa-answer-text">{answer_html(answer.answer)}</div>')
    if answer.note:
        parts.append(f'<div class="qa-note">注 / Note：{esc(answer.note)}</div>')
    if answer.standalone_question:
        parts.append(f'<div class="qa-meta">按上下文检索 / searched as：{esc(answer.standalone_question)}</div>')
    if answer.citations:
        seen: dict[int, str] = {}
        for c in answer.citations:
            seen.setdefault(c.n, c.title or UNTITLED)
        cites = "　".join(f"[{n}] {esc(t)}" for n, t in seen.items())
        parts.append(f'<div class="qa-cites">来源 / Sources：{cites}</div>')
    elif answer.abstained and answer.sources:
        parts.append('<div class="qa-cites">最接近的段落见右侧 / nearest passages are listed beside the chat.</div>')
    parts.append("</div>")
    return "".join(parts)


def streaming_html(text: str) -> str:
    return f'<div class="qa-answer qa-streaming"><div class="qa-answer-text">{answer_html(text)}</div></div>'


def _snippet(text: str, query: str) -> str:
    i = text.lower().find(query.lower()) if query else -1
    if i < 0:
        return ""
    a, b = max(0, i - SNIPPET_CHARS), min(len(text), i + len(query) + SNIPPET_CHARS)
    pre = ("…" if a > 0 else "") + text[a:i]
    post = text[i + len(query):b] + ("…" if b < len(text) else "")
    return f'{esc(pre)}<mark class="hit">{esc(text[i:i + len(query)])}</mark>{esc(post)}'.replace("\n", " ")


def matches(article, query: str) -> bool:
    q = query.strip().lower()
    if not q:
        return True
    return any(q in (x or "").lower() for x in (article.title, article.subtitle, article.byline, article.text))


def article_list_html(articles: list, query: str = "", total: int | None = None) -> str:
    """The articles view's list: title (a button that opens it), byline, source, size; a snippet when searching."""
    query = (query or "").strip()
    found = [a for a in articles if matches(a, query)]
    total = len(articles) if total is None else total
    if query:
        head = f"找到 {len(found)} 篇（共 {total} 篇） / {len(found)} of {total} articles match「{esc(query)}」"
    else:
        head = f"共 {total} 篇文章 / {total} articles"
    rows = []
    for a in found[:LIST_LIMIT]:
        small = " · ".join(esc(x) for x in (a.byline, a.source, f"{len(a.text)} 字") if x)
        snip = _snippet(a.text, query) if query and query.lower() not in (a.title or "").lower() else ""
        rows.append(
            f'<tr data-article="{esc(a.id)}"><td>'
            f"{_open_button(a.id, -1, -1, a.title or UNTITLED)}"
            f'<div class="qa-small">{small}</div>'
            + (f'<div class="qa-small qa-snippet">{snip}</div>' if snip else "")
            + "</td></tr>"
        )
    more = (f'<div class="qa-empty">只显示前 {LIST_LIMIT} 篇，请用搜索缩小范围 / showing the first {LIST_LIMIT}</div>'
            if len(found) > LIST_LIMIT else "")
    if not found:
        body = '<div class="qa-empty">没有文章 / no articles</div>'
    else:
        body = f'<table class="qa-list"><tbody>{"".join(rows)}</tbody></table>'
    return f'<div class="qa-panel-title">{head}</div>{body}{more}'


def status_html(lines: list[tuple[bool, str]]) -> str:
    return '<div class="qa-status">' + "".join(
        f'<div class="{"qa-ok" if ok else "qa-err"}">{esc(text)}</div>' for ok, text in lines) + "</div>"


def key_ok(expected: str | None, given: object) -> bool:
    """True when no key is configured, or `given` equals it (compared in constant time)."""
    if not expected:
        return True
    if not isinstance(given, str) or not given.strip():
        return False
    return hmac.compare_digest(given.strip().encode("utf-8"), expected.encode("utf-8"))


def _file_report_lines(fr) -> list[tuple[bool, str]]:
    lines = [(True, f"{fr.source}: {fr.articles} articles ({len(fr.added)} added, {len(fr.updated)} updated, "
                    f"{len(fr.unchanged)} unchanged, {len(fr.removed)} removed)")]
    lines += [(False, f"error: {p}") for p in fr.problems]
    return lines


# -- the page ----------------------------------------------------------------------------------
class _Handlers:
    """What the page's events do; everything goes through the service."""

    def __init__(self, service, settings):
        self.service = service
        self.settings = settings
        self.api_key = getattr(settings, "api_key", None) or None
        self.key_for_reads = bool(self.api_key and getattr(settings, "api_key_reads", False))

    # access
    def _reads_ok(self, key) -> bool:
        return not self.key_for_reads or key_ok(self.api_key, key)

    def _writes_ok(self, key) -> bool:
        return key_ok(self.api_key, key)

    def _meta(self, article_id: str) -> str:
        try:
            a = self.service.get_article(article_id)
        except QAError:
            return ""
        return " · ".join(x for x in (a.byline, a.source) if x)

    # chat
    def ask(self, question, chat, history, key) -> Iterator[tuple]:
        chat = list(chat or [])
        history = list(history or [])
        question = (question or "").strip()
        if not question:
            yield list(chat), history, gr.skip(), gr.skip(), ""
            return
        chat.append({"role": "user", "content": f'<div class="qa-question">{esc(question)}</div>'})
        if not self._reads_ok(key):
            chat.append({"role": "assistant",
                         "content": '<div class="qa-error">需要管理密钥 / enter the API key first.</div>'})
            yield list(chat), history, gr.skip(), gr.skip(), question
            return
        chat.append({"role": "assistant", "content": streaming_html("")})
        yield list(chat), history, _searching_placeholder(), _viewer_placeholder(), ""
        text = ""
        final: Answer | None = None
        try:
            for event in self.service.ask_stream(question, None, history[-HISTORY_MESSAGES:]):
                if isinstance(event, Answer):
                    final = event
                elif event is None:
                    text = ""
                    chat[-1] = {"role": "assistant", "content": streaming_html(text)}
                    yield list(chat), history, gr.skip(), gr.skip(), ""
                elif isinstance(event, str) and event:
                    text += event
                    chat[-1] = {"role": "assistant", "content": streaming_html(text)}
                    yield list(chat), history, gr.skip(), gr.skip(), ""
        except QAError as exc:
            chat[-1] = {"role": "assistant", "content": f'<div class="qa-error">出错了 / Error：{esc(exc)}</div>'}
            yield list(chat), history, sources_html(None), gr.skip(), ""
            return
        if final is None:  # a stream that ended without its Answer
            chat[-1] = {"role": "assistant", "content": '<div class="qa-error">没有得到回答 / no answer came back</div>'}
            yield list(chat), history, sources_html(None), gr.skip(), ""
            return
        chat[-1] = {"role": "assistant", "content": chat_answer_html(final)}
        history = history + [{"role": "user", "content": question},
                             {"role": "assistant", "content": final.answer}]
        yield chat, history[-HISTORY_MESSAGES:], sources_html(final, self._meta), _viewer_placeholder(), ""

    def open_cited(self, key, evt: gr.EventData):
        if not self._reads_ok(key):
            return '<div class="qa-error">需要管理密钥 / enter the API key first.</div>'
        data = getattr(evt, "_data", None) or {}
        article_id = data.get("article_id")
        if not isinstance(article_id, str):
            return gr.skip()
        try:
            article = self.service.get_article(article_id)
        except ArticleNotFoundError:
            return f'<div class="qa-error">找不到这篇文章（可能已删除） / no article with id {esc(article_id)}</div>'
        return article_html(article, data.get("start"), data.get("end"))

    # articles
    def list_articles(self, query, key):
        if not self._reads_ok(key):
            return '<div class="qa-empty">请先输入管理密钥 / enter the API key to see the articles.</div>'
        return article_list_html(self.service.list_articles(), query or "")

    def open_article(self, key, evt: gr.EventData):
        if not self._reads_ok(key):
            return '<div class="qa-error">需要管理密钥 / enter the API key first.</div>', None, gr.update(interactive=False)
        data = getattr(evt, "_data", None) or {}
        article_id = data.get("article_id")
        if not isinstance(article_id, str):
            return gr.skip(), gr.skip(), gr.skip()
        try:
            article = self.service.get_article(article_id)
        except ArticleNotFoundError:
            return (f'<div class="qa-error">找不到这篇文章 / no article with id {esc(article_id)}</div>', None,
                    gr.update(interactive=False))
        return article_html(article), article.id, gr.update(interactive=True)

    def remove(self, article_id, query, key):
        if not article_id:
            return status_html([(False, "error: 先打开一篇文章 / open an article first")]), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        if not self._writes_ok(key):
            return (status_html([(False, "error: 管理密钥不正确 / wrong or missing API key")]),
                    gr.skip(), gr.skip(), gr.skip(), gr.skip())
        try:
            title = self.service.get_article(article_id).title or UNTITLED
            self.service.remove_article(article_id)
        except QAError as exc:
            return status_html([(False, f"error: {exc}")]), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        return (status_html([(True, f"已删除 / removed {article_id}  {title}")]),
                self.list_articles(query, key), _library_placeholder(), None, gr.update(interactive=False))

    def ingest(self, files, query, key):
        if not files:
            return status_html([(False, "error: 请先选择文件 / choose files first")]), gr.skip(), gr.skip()
        if not self._writes_ok(key):
            return status_html([(False, "error: 管理密钥不正确 / wrong or missing API key")]), gr.skip(), gr.skip()
        lines: list[tuple[bool, str]] = []
        for f in files if isinstance(files, list) else [files]:
            path = getattr(f, "name", f)
            name = os.path.basename(str(path))
            try:
                size = os.path.getsize(path)
                if size > self.settings.max_upload_bytes:
                    raise BadInputError(f"is larger than {self.settings.max_upload_bytes // 1_000_000} MB", source=name)
                with open(path, "rb") as fh:
                    data = fh.read()
                fr = self.service.ingest_upload(name, data)
            except QAError as exc:
                lines.append((False, f"error: {exc}"))
                continue
            except OSError as exc:
                lines.append((False, f"error: {name}: could not be read ({exc.strerror or exc})"))
                continue
            lines += _file_report_lines(fr)
        return status_html(lines), self.list_articles(query, key), None


def _viewer_placeholder() -> str:
    return ('<div class="qa-empty">点击来源下的「打开原文」查看全文，引用处会高亮显示。<br>'
            "Open a source to read the whole article with the cited passage highlighted.</div>")


def _searching_placeholder() -> str:
    return ('<div class="qa-sources"><div class="qa-panel-title">引用来源 / Sources</div>'
            '<div class="qa-empty">正在检索… / Searching…</div></div>')


def _library_placeholder() -> str:
    return '<div class="qa-empty">在左侧列表中点击标题打开文章 / click a title to open the article.</div>'


def build_ui(service, settings) -> gr.Blocks:
    """The page: a chat tab and an articles tab. Mounted at / by `qa.web.app.create_app`."""
    h = _Handlers(service, settings)
    private = {"api_visibility": "private"}

    with gr.Blocks(title="新闻问答 / News QA", analytics_enabled=False) as demo:
        # Inline, so the page looks right however it is mounted (mount_gradio_app replaces `css`).
        gr.HTML(f"<style>{CSS}</style>", elem_id="qa-css", js_on_load=None)
        with gr.Row(equal_height=True):
            with gr.Column(scale=4):
                gr.HTML(
                    '<div id="qa-app-header"><h1>新闻问答<small>News QA</small></h1>'
                    '<span class="qa-tagline">根据已收录的新闻文章回答问题，每句回答都注明出处，可打开原文核对。'
                    " / Answers from the indexed articles, each sentence cited.</span></div>",
                    js_on_load=None,
                )
            if h.api_key:
                with gr.Column(scale=1, min_width=260):
                    key = gr.Textbox(
                        label="管理密钥 / API key", type="password", elem_id="api-key",
                        placeholder="全部操作需要 / needed for all actions" if h.key_for_reads
                        else "导入、删除需要 / for upload and remove",
                    )
            else:
                key = gr.State(None)

        with gr.Tabs(elem_id="qa-tabs"):
            with gr.Tab("问答 / Ask", id="ask", elem_id="tab-ask"):
                history = gr.State([])
                with gr.Row():
                    with gr.Column(scale=11, min_width=380):
                        chat = gr.Chatbot(
                            label="对话 / Chat", elem_id="chat", height=620, render_markdown=False,
                            sanitize_html=True, latex_delimiters=[], feedback_options=None, allow_tags=False,
                            buttons=[], placeholder="问一个关于已收录新闻的问题，例如：汉中市副市长是谁？",
                        )
                        with gr.Row(equal_height=True):
                            question = gr.Textbox(
                                show_label=False, placeholder="输入问题，回车发送 / Type a question, press Enter",
                                elem_id="question", scale=6, max_length=1000, autofocus=True, container=False,
                            )
                            send = gr.Button("提问 / Ask", variant="primary", elem_id="send", scale=0, min_width=140)
                            clear = gr.Button("清空 / Clear", elem_id="clear", scale=0, min_width=140)
                    with gr.Column(scale=9, min_width=340):
                        sources = gr.HTML(sources_html(None), elem_id="sources", js_on_load=_JS_OPEN_BUTTONS,
                                          max_height=280, padding=False)
                        viewer = gr.HTML(_viewer_placeholder(), elem_id="article-view", js_on_load=_JS_SCROLL_TO_MARK)

            with gr.Tab("文章库 / Articles", id="articles", elem_id="tab-articles"):
                current = gr.State(None)
                with gr.Row():
                    with gr.Column(scale=2, min_width=320):
                        with gr.Row(equal_height=True):
                            search = gr.Textbox(show_label=False, placeholder="搜索标题或正文 / Search title or text",
                                                elem_id="article-search", scale=4, container=False)
                            search_btn = gr.Button("搜索 / Search", elem_id="article-search-btn", scale=0, min_width=140)
                        article_list = gr.HTML('<div class="qa-empty">…</div>', elem_id="article-list",
                                               js_on_load=_JS_OPEN_BUTTONS, max_height=520)
                        with gr.Accordion("导入文件 / Upload files", open=True, elem_id="upload-box"):
                            files = gr.File(label=".txt .md .html .jsonl .docx .pdf", file_count="multiple",
                                            elem_id="upload-files", height=120)
                            ingest_btn = gr.Button("导入 / Ingest", variant="primary", elem_id="ingest")
                            ingest_status = gr.HTML("", elem_id="ingest-status", js_on_load=None)
                    with gr.Column(scale=3, min_width=380):
                        library_view = gr.HTML(_library_placeholder(), elem_id="library-article", js_on_load=None)
                        with gr.Row():
                            remove_btn = gr.Button("删除这篇文章 / Remove", variant="stop", elem_id="remove-article",
                                                   interactive=False, size="sm", scale=0, min_width=220)
                        remove_status = gr.HTML("", elem_id="remove-status", js_on_load=None)

        ask_io = dict(inputs=[question, chat, history, key], outputs=[chat, history, sources, viewer, question])
        question.submit(h.ask, **ask_io, **private)
        send.click(h.ask, **ask_io, **private)
        clear.click(lambda: ([], [], sources_html(None), _viewer_placeholder(), ""), None,
                    [chat, history, sources, viewer, question], **private)
        chat.clear(lambda: ([], sources_html(None), _viewer_placeholder()), None, [history, sources, viewer], **private)
        sources.click(h.open_cited, [key], [viewer], **private)

        search.submit(h.list_articles, [search, key], [article_list], **private)
        search_btn.click(h.list_articles, [search, key], [article_list], **private)
        article_list.click(h.open_article, [key], [library_view, current, remove_btn], **private)
        remove_btn.click(h.remove, [current, search, key],
                         [remove_status, article_list, library_view, current, remove_btn], **private)
        ingest_btn.click(h.ingest, [files, search, key], [ingest_status, article_list, files], **private)
        if h.api_key:
            key.submit(h.list_articles, [search, key], [article_list], **private)
        demo.load(h.list_articles, [search, key], [article_list], **private)
    return demo


__all__ = ["build_ui", "CSS", "esc", "answer_html", "article_html", "highlighted_text_html", "sources_html",
           "chat_answer_html", "article_list_html", "key_ok"]
