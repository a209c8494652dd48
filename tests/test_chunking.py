from qa.chunking import chunk_text, sentence_spans

TEXT = (
    "“上海、苏州均为信息化、工业化大市。两地要一同强化科研布局！”10月20日，院长贺仁龙在苏州说。\n"
    "当天，苏州市政协举办研讨会；来自两地的专家参加。这是重要举措吗？是的。"
)


def test_sentences_end_at_chinese_stops_and_keep_closing_quotes():
    spans = [TEXT[s.start : s.end] for s in sentence_spans(TEXT)]
    assert spans[0] == "“上海、苏州均为信息化、工业化大市。"
    assert spans[1] == "两地要一同强化科研布局！”"
    assert spans[2] == "10月20日，院长贺仁龙在苏州说。"
    assert "当天，苏州市政协举办研讨会；" in spans
    assert spans[-1] == "是的。"


def test_every_chunk_is_an_exact_span_and_chunks_cover_the_text():
    chunks = chunk_text(TEXT * 5, size=60, overlap_sentences=1)
    text = TEXT * 5
    assert len(chunks) > 3
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert len(c.text) <= 60
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


def test_consecutive_chunks_overlap_by_one_sentence():
    chunks = chunk_text(TEXT * 3, size=80, overlap_sentences=1)
    for a, b in zip(chunks, chunks[1:]):
        assert b.start < a.end  # shared sentence
        assert b.start > a.start  # progress


def test_overlong_sentence_is_cut_at_clause_marks():
    long = "，".join(["这是一个很长的分句"] * 40) + "。"
    chunks = chunk_text(long, size=100, overlap_sentences=0)
    assert all(len(c.text) <= 100 for c in chunks)
    assert "".join(c.text for c in chunks) == long


def test_empty_and_blank_text_give_no_chunks():
    assert chunk_text("") == []
    assert chunk_text("  \n\n ") == []
