"""How often the bot refuses to guess when the articles do not hold the answer (CMRC 2018 trial).

Indexes every other CMRC article (articles 0, 2, 4, …) into its own data dir, then asks all 1,000
questions: those written from an indexed article are answerable, those written from an article
that is not indexed should be abstained on. Prints and writes benchmarks/results/cmrc_abstention.json.

    .venv/bin/python benchmarks/cmrc_abstention.py [--data-dir data/eval-cmrc-half]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    from qa.components import build_service
    from qa.evaluation import evaluate, format_report
    from qa.settings import load_settings

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(ROOT / "data" / "eval-cmrc-half"))
    args = ap.parse_args()

    data = ROOT / "benchmarks" / "data"
    articles = [json.loads(x) for x in (data / "cmrc_trial_articles.jsonl").read_text(encoding="utf-8").splitlines()]
    kept = {a["id"] for i, a in enumerate(articles) if i % 2 == 0}
    svc = build_service(load_settings(data_dir=Path(args.data_dir)))
    with tempfile.TemporaryDirectory() as tmp:
        half = Path(tmp) / "cmrc_half.jsonl"
        half.write_text("".join(json.dumps(a, ensure_ascii=False) + "\n" for a in articles if a["id"] in kept), encoding="utf-8")
        svc.ingest_paths([half])
        questions = Path(tmp) / "questions.jsonl"
        rows = []
        for line in (data / "cmrc_trial_questions.jsonl").read_text(encoding="utf-8").splitlines():
            q = json.loads(line)
            if q["article_id"] not in kept:
                q["answers"] = []  # its article is not in the index: the right response is to abstain
            rows.append(json.dumps(q, ensure_ascii=False))
        questions.write_text("\n".join(rows) + "\n", encoding="utf-8")
        report = evaluate(svc, questions)
    out = ROOT / "benchmarks" / "results" / "cmrc_abstention.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
