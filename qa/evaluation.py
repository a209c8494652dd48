"""Retrieval and answer metrics on a question set (CMRC 2018 layout: id, question, answers, article_id).

The system under test sees only the question text, never the id or gold fields. A question with
`"answers": []` is one the corpus cannot answer: the right response is to abstain.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from pathlib import Path

from qa.errors import QAError

_MARKER = re.compile(r"\[\d+\]")


def _load(path: Path, limit: int | None) -> list[dict]:
    items = []
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise QAError(f"{path}: does not exist") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QAError(f"{path}: line {n}: not valid JSON ({exc.msg})") from None
        if not isinstance(item, dict) or not isinstance(item.get("question"), str):
            raise QAError(f'{path}: line {n}: expected an object with a string "question"')
        items.append(item)
        if limit and len(items) >= limit:
            break
    return items


def evaluate(svc, questions: Path, k: int = 5, limit: int | None = None, out: Path | None = None) -> dict:
    items = _load(questions, limit)
    rows = []
    for item in items:
        t0 = time.perf_counter()
        ans = svc.ask(item["question"], k=k)
        elapsed = time.perf_counter() - t0
        gold = [a for a in item.get("answers", []) if a]
        passages = [s.passage for s in ans.sources]
        first_hit = next((i for i, p in enumerate(passages, 1) if any(g in p for g in gold)), None)
        text = _MARKER.sub("", ans.answer)
        rows.append({
            "id": item.get("id"), "question": item["question"], "answerable": bool(gold),
            "first_hit": first_hit,
            "article_hit": item.get("article_id") in {s.article_id for s in ans.sources} if item.get("article_id") else None,
            "answer": ans.answer, "answer_chars": len(text), "short_answer": ans.short_answer,
            "contains_gold": any(g in text for g in gold), "abstained": ans.abstained, "seconds": elapsed,
        })
    if out:
        out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return summarize(rows, k)


def summarize(rows: list[dict], k: int) -> dict:
    ans = [r for r in rows if r["answerable"]]
    neg = [r for r in rows if not r["answerable"]]
    n = len(ans) or 1
    report = {
        "questions": len(rows),
        "answerable": len(ans),
        "hit@1": sum(1 for r in ans if r["first_hit"] == 1) / n,
        f"hit@{k}": sum(1 for r in ans if r["first_hit"]) / n,
        "mrr": sum(1 / r["first_hit"] for r in ans if r["first_hit"]) / n,
        "answer_contains_gold": sum(1 for r in ans if r["contains_gold"]) / n,
        "abstained_on_answerable": sum(1 for r in ans if r["abstained"]) / n,
        "short_answer_rate": sum(1 for r in ans if r["short_answer"]) / n,
        "answer_chars_max": max((r["answer_chars"] for r in rows), default=0),
        "seconds_per_question_median": statistics.median([r["seconds"] for r in rows]) if rows else 0.0,
    }
    if any(r["article_hit"] is not None for r in ans):
        report[f"gold_article@{k}"] = sum(1 for r in ans if r["article_hit"]) / n
    if neg:
        report["unanswerable"] = len(neg)
        report["abstained_on_unanswerable"] = sum(1 for r in neg if r["abstained"]) / len(neg)
    return report


def format_report(report: dict) -> str:
    return "\n".join(
        f"{k:>28}: {v:.3f}" if isinstance(v, float) else f"{k:>28}: {v}" for k, v in report.items()
    )
