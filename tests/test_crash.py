"""Crash consistency: `kill -9` an ingest at random points; the index stays consistent and recovers.

The experiment itself is benchmarks/crash_ingest.py (run it for more articles and kills). After every
kill: SQLite and FTS5 integrity checks pass, no article is partial (each registered article is a
version the corpus had, with exactly the chunks chunking gives it), and every registered chunk has its
vector. Then a re-run completes, sweeps orphan vectors, and the index holds exactly the final corpus.
"""

from __future__ import annotations

import os
import sys

import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from crash_ingest import check_complete, check_consistent, crash_rounds  # noqa: E402

SEED = int(os.environ.get("CRASH_SEED", "20240521"))


@pytest.mark.timeout(300)
def test_kill_9_at_random_points_never_leaves_a_partial_article(tmp_path):
    """120 articles in 4 JSONL files, 3 versions (edits and removals), killed 6 times at random moments."""
    lines: list[str] = []
    report = crash_rounds(tmp_path, n_articles=120, kills=6, seed=SEED, log=lines.append)
    detail = "\n".join(lines)
    assert not report["problems"], f"seed {SEED}:\n{detail}"
    # The kills must have hit something: at least most of them landed before the ingest finished.
    assert report["kills_that_landed"] >= 4, detail
    assert report["final"]["articles"] > 100 and report["final"]["chunks"] == report["final"]["chroma_ids"]


def test_the_checks_catch_a_partial_article_and_missing_vectors():
    """The checker is not vacuous: a registry missing a chunk, or a chunk missing its vector, fails it."""
    expected = {"a": ("h1", ["a:1", "a:2"]), "b": ("h2", ["b:1"])}
    versions = {aid: {(h, tuple(c))} for aid, (h, c) in expected.items()}
    good = {"integrity": ["ok"], "fts_integrity": "ok", "problems": [], "articles": {"a": "h1", "b": "h2"},
            "chunks": {"a": ["a:1", "a:2"], "b": ["b:1"]}, "chroma_ids": ["a:1", "a:2", "b:1", "orphan"]}
    assert check_consistent(good, versions) == []
    assert check_complete(good, expected) == ["Chroma ids != SQLite chunk ids: 1 orphan vectors, 0 missing"]
    partial = {**good, "chunks": {"a": ["a:1"], "b": ["b:1"]}}
    assert any("partial article" in p for p in check_consistent(partial, versions))
    unvectored = {**good, "chroma_ids": ["a:1", "b:1"]}
    assert any("no vector" in p for p in check_consistent(unvectored, versions))
    corrupt = {**good, "integrity": ["*** in database main ***"]}
    assert any("integrity_check" in p for p in check_consistent(corrupt, versions))


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_kill_9_of_the_real_cli_with_the_real_model(tmp_path):
    """`qa --data-dir D ingest FILES` as a user runs it (real model), killed mid-run, then re-run.
    (Each run loads the model; benchmarks/crash_ingest.py --real does more rounds.)"""
    lines: list[str] = []
    report = crash_rounds(tmp_path, n_articles=24, kills=1, real=True, seed=SEED, files=6, log=lines.append)
    detail = "\n".join(lines)
    assert not report["problems"], f"seed {SEED}:\n{detail}"
    assert report["kills_that_landed"] >= 1, detail
    assert report["final"]["chunks"] == report["final"]["chroma_ids"] > 0
