"""Readers: every supported format, every encoding, and a clear one-line error for every bad file."""

from __future__ import annotations

import codecs
import io
import json
import random
import zipfile

import pytest

from qa.errors import BadInputError, UnsupportedFileError
from qa.ingest import formats
from qa.ingest.readers import SUPPORTED_SUFFIXES, ReadResult, decode_bytes, iter_input_files, read_file

SIMPLIFIED = "本报记者从市政协获悉，第十四届市政协常委会第五次会议于昨日召开。"
TRADITIONAL = "本報記者從市政協獲悉，第十四屆市政協常委會第五次會議於昨日召開。"

# .txt, .pdf and heading-less .md go through the newspaper splitter, which has its
# own tests; these only assert that the text arrives, not how it is split.


def all_text(result: ReadResult) -> str:
    return "\n".join(part for a in result.articles for part in (a.title, a.subtitle, *a.paragraphs))


def error_for(path, **kwargs) -> BadInputError:
    with pytest.raises(BadInputError) as caught:
        read_file(path, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    assert caught.value.source == path.name
    assert message.startswith(f"{path.name}: ")
    return caught.value


# --- encodings --------------------------------------------------------------

ENCODED = [
    ("utf-8", SIMPLIFIED),
    ("utf-8-sig", SIMPLIFIED),
    ("gb18030", SIMPLIFIED),
    ("gbk", SIMPLIFIED),
    ("gb2312", SIMPLIFIED),
    ("big5", TRADITIONAL),
    ("gb18030", TRADITIONAL),  # traditional characters in a GB18030 file stay GB18030
    ("utf-16", TRADITIONAL),  # Python writes a BOM
    ("utf-16-be", SIMPLIFIED),  # given a BOM by `encode` below
]


def encode(text: str, codec: str) -> bytes:
    return (codecs.BOM_UTF16_BE if codec == "utf-16-be" else b"") + text.encode(codec)


@pytest.mark.parametrize(("codec", "text"), ENCODED)
def test_decode_bytes_recognizes_the_encoding(codec, text):
    body = f"{text}\r\n第二段：{text}\n"
    assert decode_bytes(encode(body, codec), "x.txt") == f"{text}\n第二段：{text}\n"


@pytest.mark.parametrize(
    "text", ["今天天氣很好。", "政協工作動態", "臺灣新聞", "記者 王小明 報導", "經濟發展", "這是一個測試"]
)
def test_short_big5_texts_are_not_mistaken_for_gb18030(text):
    assert decode_bytes(text.encode("big5"), "x.txt") == text


@pytest.mark.parametrize("text", ["今天天气很好。", "政协工作动态", "朱镕基总理视察", "经济发展", "记者 王小明 报道"])
def test_short_gbk_texts_are_not_mistaken_for_big5(text):
    assert decode_bytes(text.encode("gbk"), "x.txt") == text


def test_decode_normalizes_newlines_and_drops_control_characters():
    assert decode_bytes(b"a\r\nb\rc\x07d\x1be\tf\x0cg", "x.txt") == "a\nb\ncd" + "e\tf\ng"


@pytest.mark.parametrize(("codec", "text"), ENCODED)
def test_txt_files_in_each_encoding_read_correctly(tmp_path, codec, text):
    path = tmp_path / "page.txt"
    path.write_bytes(encode(f"{text}\n\n{text}又一段。\n", codec))
    result = read_file(path)
    assert result.problems == []
    body = all_text(result)
    assert text in body and f"{text}又一段。" in body


# --- whole-file errors ------------------------------------------------------


def test_binary_file_is_rejected(tmp_path):
    path = tmp_path / "photo.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + random.Random(1).randbytes(2000))
    assert str(error_for(path)) == "photo.txt: is binary, not text"


def test_binary_without_nul_bytes_is_rejected(tmp_path):
    path = tmp_path / "data.txt"
    path.write_bytes(bytes(range(1, 9)) * 50)
    assert str(error_for(path)) == "data.txt: is binary, not text"


def test_zero_byte_file_is_empty(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    assert str(error_for(path)) == "empty.txt: is empty"


@pytest.mark.parametrize("suffix", [".txt", ".md", ".html", ".jsonl"])
def test_whitespace_only_file_is_empty(tmp_path, suffix):
    path = tmp_path / f"blank{suffix}"
    path.write_text(" \n\t\r\n\u3000\n", encoding="utf-8")
    assert "is empty" in str(error_for(path))


def test_undecodable_bytes_are_rejected(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("Une fiancée à Zürich, déjà célèbre.".encode("cp1252") + b"\xff\xfe\x80")
    assert str(error_for(path)) == "latin.txt: cannot be decoded as UTF-8, GB18030 or Big5"


def test_unsupported_suffix_is_rejected_with_the_supported_list(tmp_path):
    path = tmp_path / "sheet.xlsx"
    path.write_bytes(b"PK\x03\x04")
    error = error_for(path)
    assert isinstance(error, UnsupportedFileError)
    assert str(error).startswith("sheet.xlsx: unsupported file type '.xlsx' (supported: .txt, .md,")
    assert all(suffix in str(error) for suffix in SUPPORTED_SUFFIXES)


def test_too_large_file_is_rejected_before_reading(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("新闻" * 1000, encoding="utf-8")
    assert str(error_for(path, max_bytes=1000)) == "big.txt: is larger than 0.001 MB"
    assert str(error_for(path, max_bytes=0)).endswith("is larger than 0 MB")


def test_missing_file_and_directory(tmp_path):
    assert str(error_for(tmp_path / "gone.txt")) == "gone.txt: does not exist"
    (tmp_path / "folder.txt").mkdir()
    assert str(error_for(tmp_path / "folder.txt")) == "folder.txt: is a directory"


def test_suffix_is_case_insensitive(tmp_path):
    path = tmp_path / "NOTES.MD"
    path.write_text("# 标题\n\n正文。\n", encoding="utf-8")
    assert read_file(path).articles[0].title == "标题"


# --- JSON Lines -------------------------------------------------------------


def test_jsonl_keeps_good_lines_and_reports_each_bad_one(tmp_path):
    lines = [
        json.dumps({"id": "a1", "title": "第一篇", "text": "第一段。\n\n  第二段。  \n", "date": "2024-05-01"}),
        "{not json",
        json.dumps(["an", "array"]),
        "",
        json.dumps({"title": "没有正文"}),
        json.dumps({"title": 42, "text": "标题类型不对"}),
        json.dumps({"id": 7, "text": "整数编号", "source": "人民日报", "url": "https://example.cn/7"}),
        json.dumps({"text": "   "}),
        json.dumps({"id": 1.5, "text": "小数编号"}),
        json.dumps({"text": "x", "byline": ["记者"]}),
        json.dumps({"title": "分段", "paragraphs": ["甲段", " ", "乙段"]}),
        "[" * 100_000,
    ]
    path = tmp_path / "news.jsonl"
    path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    result = read_file(path)

    assert [a.external_id for a in result.articles] == ["a1", "7", ""]
    first, second, third = result.articles
    assert (first.title, first.paragraphs, first.date, first.kind) == ("第一篇", ["第一段。", "第二段。"], "2024-05-01", "article")
    assert (second.title, second.paragraphs, second.url, second.kind) == ("", ["整数编号"], "https://example.cn/7", "fragment")
    assert third.paragraphs == ["甲段", "乙段"]

    messages = [str(p) for p in result.problems]
    assert all(m.startswith("news.jsonl: malformed JSONL line ") and "\n" not in m for m in messages)
    assert messages == [
        "news.jsonl: malformed JSONL line 2: invalid JSON (Expecting property name enclosed in double quotes at column 2)",
        "news.jsonl: malformed JSONL line 3: expected a JSON object, got an array",
        'news.jsonl: malformed JSONL line 5: missing "text"',
        'news.jsonl: malformed JSONL line 6: "title" must be a string, got a number',
        'news.jsonl: malformed JSONL line 8: "text" is empty',
        'news.jsonl: malformed JSONL line 9: "id" must be a string or an integer, got a number',
        'news.jsonl: malformed JSONL line 10: "byline" must be a string, got an array',
        "news.jsonl: malformed JSONL line 12: invalid JSON (nested too deeply)",
    ]


def test_jsonl_keeps_raw_unicode_line_separators_inside_strings(tmp_path):
    path = tmp_path / "sep.jsonl"
    path.write_bytes('{"title": "甲", "text": "第一句\u2028第二句"}\r\n{"text": "乙"}\r\n'.encode("utf-8"))
    result = read_file(path)
    assert result.problems == []
    assert [a.paragraphs for a in result.articles] == [["第一句", "第二句"], ["乙"]]


def test_jsonl_with_only_bad_lines_returns_problems_not_articles(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": 1}\n', encoding="utf-8")
    result = read_file(path)
    assert result.articles == []
    assert [str(p) for p in result.problems] == ['bad.jsonl: malformed JSONL line 1: "text" must be a string, got a number']


def test_pretty_printed_json_is_named_as_such(tmp_path):
    path = tmp_path / "dump.jsonl"
    path.write_text(json.dumps([{"text": "正文"}], indent=2), encoding="utf-8")
    assert str(error_for(path)) == "dump.jsonl: is one JSON document, not JSON Lines (one object per line)"


# --- Markdown ---------------------------------------------------------------


def test_markdown_headings_start_articles_and_syntax_is_stripped(tmp_path):
    path = tmp_path / "notes.md"
    path.write_text(
        "导语在第一个标题之前。\n\n"
        "# 第一篇 **重要**\n\n"
        "这是*强调*和[链接文字](https://example.cn)，还有 `代码` 与 snake_case_name。\n"
        "同一段的续行。\n\n"
        "- 列表一\n* 列表二\n1. 编号项\n\n"
        "## 小节\n\n"
        "> 引用的话\n\n"
        "```python\nprint('代码块')\n```\n\n"
        "Second\n======\n\n"
        "| 甲 | 乙 |\n|---|---|\n| 1 | 2 |\n\n"
        "![图片说明](a.png) 和 \\*星号\\*\n\n"
        "[注]: 本文有删节。\n"
        '[1]: https://example.cn/ref "参考"\n',
        encoding="utf-8",
    )
    fragment, first, second = read_file(path).articles
    assert (fragment.kind, fragment.title, fragment.paragraphs) == ("fragment", "", ["导语在第一个标题之前。"])
    assert first.title == "第一篇 重要"
    assert first.paragraphs == [
        "这是强调和链接文字，还有 代码 与 snake_case_name。同一段的续行。",
        "列表一",
        "列表二",
        "编号项",
        "小节",
        "引用的话",
        "print('代码块')",
    ]
    assert second.title == "Second"
    assert second.paragraphs == ["甲 | 乙", "1 | 2", "图片说明 和 *星号*", "[注]: 本文有删节。"]


def test_markdown_without_headings_goes_through_the_splitter(tmp_path):
    path = tmp_path / "plain.md"
    path.write_text(f"{SIMPLIFIED}\n\n**{TRADITIONAL}**\n", encoding="utf-8")
    body = all_text(read_file(path))
    assert SIMPLIFIED in body and TRADITIONAL in body and "**" not in body


# --- HTML -------------------------------------------------------------------

PAGE = """<!doctype html>
<html><head><title>网页标题 - 某某网</title>
<meta property="article:published_time" content="2024-05-02T08:00:00+08:00">
<style>p { color: red }</style><script>var secret = "脚本内容";</script></head>
<body>
<nav><h1>某某网</h1><a href="/">首页</a> <a href="/news">新闻</a></nav>
<article>
  <h1>市政协召开<em>常委会</em>会议</h1>
  <h2>聚焦城市更新</h2>
  <p class="article-author">记者 王小明</p>
  <p>第一段，
  跨行的中文。</p>
  <div>块级文字<br>换行之后</div>
  <ul><li>要点一</li><li>要点二</li></ul>
  <!-- 注释不要 -->
  <pre>第一行
第二行</pre>
  <script>document.write("也是脚本")</script>
</article>
<footer>版权所有</footer>
</body></html>"""


def test_html_article_fields_and_paragraphs(tmp_path):
    path = tmp_path / "page.html"
    path.write_text(PAGE, encoding="utf-8")
    (article,) = read_file(path).articles
    assert article.title == "市政协召开常委会会议"
    assert article.subtitle == "聚焦城市更新"
    assert article.byline == "记者 王小明"
    assert article.date == "2024-05-02T08:00:00+08:00"
    assert article.paragraphs == ["第一段，跨行的中文。", "块级文字", "换行之后", "要点一", "要点二", "第一行", "第二行"]
    text = all_text(read_file(path))
    for unwanted in ("脚本", "secret", "首页", "某某网", "版权", "注释", "color"):
        assert unwanted not in text


def test_html_title_element_and_time_datetime(tmp_path):
    path = tmp_path / "page.htm"
    path.write_text(
        '<html><head><title>只有标题元素</title></head><body><p>正文<time datetime="2024-01-02">1月2日</time>。</p>'
        '<span itemprop="author">李四</span></body></html>',
        encoding="utf-8",
    )
    (article,) = read_file(path).articles
    assert (article.title, article.date, article.byline) == ("只有标题元素", "2024-01-02", "李四")
    assert article.paragraphs == ["正文1月2日。"]


def test_html_meta_charset_is_honored(tmp_path):
    path = tmp_path / "gbk.html"
    path.write_bytes(
        f'<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312"></head>'
        f"<body><p>{SIMPLIFIED}</p><p>镕</p></body></html>".encode("gbk")
    )
    assert read_file(path).articles[0].paragraphs == [SIMPLIFIED, "镕"]


def test_html_with_a_wrong_meta_charset_is_still_decoded(tmp_path):
    path = tmp_path / "wrong.html"
    path.write_bytes(f'<meta charset="utf-8"><p>{TRADITIONAL}</p>'.encode("big5"))
    assert read_file(path).articles[0].paragraphs == [TRADITIONAL]


def test_html_without_body_text_has_no_text(tmp_path):
    path = tmp_path / "shell.html"
    path.write_text("<html><head><title>空页</title><script>app()</script></head><body><div></div></body></html>")
    assert str(error_for(path)) == "shell.html: has no text (no body text in the page)"


def test_deeply_nested_html_is_read(tmp_path):
    depth = 5000
    path = tmp_path / "deep.html"
    path.write_text(f"<html><body>{'<div>' * depth}<p>最深处的文字</p>{'</div>' * depth}<p>之后</p></body></html>")
    (article,) = read_file(path).articles
    assert article.paragraphs == ["最深处的文字", "之后"]


def test_html_falls_back_to_tag_stripping_on_recursion_error(tmp_path, monkeypatch):
    def overflow(markup):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(formats, "_html_article", overflow)
    path = tmp_path / "page.html"
    path.write_text(PAGE, encoding="utf-8")
    (article,) = read_file(path).articles
    assert article.title == "市政协召开常委会会议"
    assert "第一段，跨行的中文。" in article.paragraphs and "要点二" in article.paragraphs
    assert not any("脚本" in p or "首页" in p or "版权" in p for p in article.paragraphs)


# --- DOCX -------------------------------------------------------------------


def test_docx_title_paragraphs_and_tables(tmp_path):
    docx = pytest.importorskip("docx")
    document = docx.Document()
    document.add_heading("政协会议召开", level=0)
    document.add_paragraph("聚焦民生", style="Subtitle")
    document.add_paragraph("第一段正文。")
    paragraph = document.add_paragraph("第二段")
    paragraph.add_run("，接着写。")
    paragraph.add_run().add_break()
    paragraph.add_run("软换行之后。")
    table = document.add_table(rows=2, cols=2)
    for row, cells in zip(table.rows, [("甲", "乙"), ("丙", "")]):
        for cell, text in zip(row.cells, cells):
            cell.text = text
    document.add_paragraph("表格之后。")
    path = tmp_path / "report.docx"
    document.save(path)

    (article,) = read_file(path).articles
    assert (article.title, article.subtitle, article.kind) == ("政协会议召开", "聚焦民生", "article")
    assert article.paragraphs == ["第一段正文。", "第二段，接着写。", "软换行之后。", "甲", "乙", "丙", "表格之后。"]


def test_docx_without_heading_uses_a_short_first_paragraph_as_title(tmp_path):
    docx = pytest.importorskip("docx")
    document = docx.Document()
    document.add_paragraph("短标题")
    document.add_paragraph("正文第一段。")
    path = tmp_path / "plain.docx"
    document.save(path)
    (article,) = read_file(path).articles
    assert (article.title, article.paragraphs) == ("短标题", ["正文第一段。"])


def test_corrupt_docx_is_rejected(tmp_path):
    path = tmp_path / "broken.docx"
    path.write_bytes(b"this is not a zip archive")
    assert str(error_for(path)) == "broken.docx: is not a valid DOCX file"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "a zip, but not a Word document")
    path.write_bytes(buffer.getvalue())
    assert str(error_for(path)) == "broken.docx: is not a valid DOCX file"


# --- PDF --------------------------------------------------------------------


def minimal_pdf(content: bytes) -> bytes:
    """A one-page PDF whose page draws `content` with Helvetica as /F1."""
    stream = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        stream,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return out


def test_pdf_text_is_extracted(tmp_path):
    path = tmp_path / "page.pdf"
    path.write_bytes(minimal_pdf(b"BT /F1 18 Tf 72 720 Td (City council meets today.) Tj 0 -30 Td (Second line of text.) Tj ET"))
    body = all_text(read_file(path))
    assert "City council meets today." in body and "Second line of text." in body


def test_pdf_without_text_layer_has_no_text(tmp_path):
    path = tmp_path / "scan.pdf"
    path.write_bytes(minimal_pdf(b"0 0 m 100 100 l S"))
    assert str(error_for(path)) == "scan.pdf: has no text (no text layer; a scanned PDF needs OCR first)"


def test_corrupt_pdf_is_rejected(tmp_path):
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.4\nthis is not really a pdf\n")
    assert str(error_for(path)) == "broken.pdf: is not a valid PDF file"


def test_encrypted_pdf_is_rejected(tmp_path):
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(612, 792)
    writer.encrypt("secret", algorithm="RC4-128")
    path = tmp_path / "locked.pdf"
    with path.open("wb") as f:
        writer.write(f)
    assert str(error_for(path)) == "locked.pdf: is encrypted (password-protected)"


# --- choosing files ---------------------------------------------------------


def test_iter_input_files_walks_folders_in_order(tmp_path):
    corpus = tmp_path / "corpus"
    for name in ["b.txt", "a.md", "sub/z.html", "sub/deeper/y.jsonl", "A/x.pdf", "notes.xyz", "README",
                 ".hidden.txt", ".git/config.txt", "sub/.cache/c.txt", "~$draft.docx"]:
        (corpus / name).parent.mkdir(parents=True, exist_ok=True)
        (corpus / name).write_text("x")
    explicit_bad = tmp_path / "table.csv"
    explicit_bad.write_text("a,b")
    explicit_hidden = corpus / ".hidden.txt"
    empty_folder = tmp_path / "nothing"
    empty_folder.mkdir()

    files, errors = iter_input_files(
        [corpus, explicit_bad, tmp_path / "missing.txt", explicit_hidden, corpus / "a.md", empty_folder]
    )
    assert [f.relative_to(corpus).as_posix() for f in files] == [
        "A/x.pdf", "a.md", "b.txt", "sub/deeper/y.jsonl", "sub/z.html", ".hidden.txt",
    ]
    messages = [str(e) for e in errors]
    assert messages[0].startswith(f"{explicit_bad}: unsupported file type '.csv' (supported: .txt")
    assert isinstance(errors[0], UnsupportedFileError)
    assert messages[1] == f"{tmp_path / 'missing.txt'}: does not exist"
    assert messages[2].startswith(f"{empty_folder}: contains no supported files (supported: .txt")
    assert len(errors) == 3
    assert iter_input_files([corpus]) == iter_input_files([corpus])
