"""The `qa` command end to end: real model, real Chroma, each test its own data dir."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SEED

pytestmark = pytest.mark.slow

QA = [sys.executable, "-m", "qa.cli"]


def qa(*args, check=True, cwd=None):
    proc = subprocess.run([*QA, *args], capture_output=True, text=True, env=os.environ.copy(), timeout=300, cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"qa {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """One data dir with the default corpus, shared by the read-only tests of this module."""
    data = tmp_path_factory.mktemp("cli-index")
    os.environ["QA_DATA_DIR"] = str(data)
    first = qa("ingest", str(SEED))
    return data, first


@pytest.fixture
def env_index(indexed, monkeypatch):
    monkeypatch.setenv("QA_DATA_DIR", str(indexed[0]))
    return indexed


def test_ingest_then_reingest_adds_nothing(env_index):
    _, first = env_index
    assert "8 articles (8 added" in first.stdout
    again = qa("ingest", str(SEED))
    assert "(0 added, 0 updated, 8 unchanged, 0 removed)" in again.stdout


def test_ask_json_contract_matches_the_articles_text(env_index):
    arts = {a["id"]: a for a in json.loads(qa("articles", "--json").stdout)}
    assert len(arts) == 8 and all(set(a) >= {"id", "title", "subtitle", "byline", "source", "text", "paragraphs"} for a in arts.values())
    ans = json.loads(qa("ask", "--json", "汉中市副市长是谁？").stdout)
    assert set(ans) >= {"question", "answer", "abstained", "citations", "sources"}
    assert "李芳" in ans["answer"] and ans["abstained"] is False
    assert ans["citations"] and ans["sources"]
    for span in ans["citations"] + ans["sources"]:
        assert arts[span["article_id"]]["text"][span["start"] : span["end"]] == span["passage"]
    assert all(f"[{c['n']}]" in ans["answer"] for c in ans["citations"])


def test_abstains_when_the_corpus_does_not_hold_the_answer(env_index):
    ans = json.loads(qa("ask", "--json", "北京市政协主席是谁？").stdout)
    assert ans["abstained"] is True and ans["citations"] == [] and ans["sources"]


def test_questions_file_keeps_ids_and_reports_bad_lines(env_index, tmp_path):
    qfile = tmp_path / "q.jsonl"
    qfile.write_text(
        '{"id": "a", "question": "汉中市副市长是谁？"}\nnot json\n{"id": "b", "question": "“我们要上市”活动在哪里举行？"}\n',
        encoding="utf-8",
    )
    proc = qa("ask", "--json", "--questions", str(qfile), check=False)
    assert proc.returncode == 1 and "line 2" in proc.stderr
    rows = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["a", "b"]
    assert "西陵区三峡创客产业园" in rows[1]["answer"]


def test_bad_files_get_one_line_each_and_the_rest_goes_on(tmp_path, monkeypatch):
    monkeypatch.setenv("QA_DATA_DIR", str(tmp_path / "idx"))
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "empty.txt").write_bytes(b"")
    (folder / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (folder / "bad.jsonl").write_text('{"title": "甲", "text": "甲文章的正文。"}\n{"title": 3, "text": "x"}\n', encoding="utf-8")
    (folder / "good.md").write_text("# 乙文章\n\n乙文章的正文内容。\n", encoding="utf-8")
    proc = qa("ingest", str(folder), str(tmp_path / "missing.txt"), check=False)
    assert proc.returncode == 1
    err = proc.stderr
    assert "empty.txt: is empty" in err
    assert "binary.txt: is binary" in err
    assert "bad.jsonl: malformed JSONL line 2" in err
    assert "missing.txt" in err and "does not exist" in err
    titles = {a["title"] for a in json.loads(qa("articles", "--json").stdout)}
    assert titles == {"甲", "乙文章"}


def test_remove_deletes_an_article(tmp_path, monkeypatch):
    monkeypatch.setenv("QA_DATA_DIR", str(tmp_path / "idx"))
    qa("ingest", str(SEED))
    arts = json.loads(qa("articles", "--json").stdout)
    hanzhong = next(a["id"] for a in arts if "接力棒" in a["title"])
    assert f"removed {hanzhong}" in qa("remove", hanzhong).stdout
    again = qa("remove", hanzhong, check=False)
    assert again.returncode == 2 and "no article with id" in again.stderr
    ans = json.loads(qa("ask", "--json", "汉中市副市长是谁？").stdout)
    assert all(s["article_id"] != hanzhong for s in ans["sources"])


def test_eval_reports_metrics(env_index, tmp_path):
    qfile = tmp_path / "q.jsonl"
    qfile.write_text(
        json.dumps({"id": "1", "question": "汉中市副市长是谁？", "answers": ["李芳"]}, ensure_ascii=False) + "\n"
        + json.dumps({"id": "2", "question": "北京市政协主席是谁？", "answers": []}, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    report = json.loads(qa("eval", "--questions", str(qfile), "--json").stdout)
    assert report["hit@5"] == 1.0 and report["answer_contains_gold"] == 1.0
    assert report["abstained_on_unanswerable"] == 1.0


def test_a_bad_setting_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("QA_COLLECTION", "新闻")
    proc = qa("articles", check=False)
    assert proc.returncode == 2 and "QA_COLLECTION" in proc.stderr


def test_cli_script_exists_after_setup():
    assert (Path(sys.executable).parent / "qa").exists()
