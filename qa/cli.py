"""The `qa` command. Domain errors become one-line messages here and nowhere else."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from qa.articles import article_to_dict
from qa.errors import QAError

SAMPLE_QUESTION = "汉中市副市长是谁？"


def _settings(args, **overrides):
    from qa.settings import load_settings

    if getattr(args, "data_dir", None):
        overrides["data_dir"] = Path(args.data_dir)
    return load_settings(**overrides)


def _service(args, **overrides):
    from qa.components import build_service

    return build_service(_settings(args, **overrides))


def _print_json(obj) -> None:
    print(json.dumps(obj, ensure_ascii=False))


# -- ingest ------------------------------------------------------------------------------------
def cmd_ingest(args) -> int:
    svc = _service(args)
    return _ingest(svc, [Path(p) for p in args.paths], as_json=args.json)


def _ingest(svc, paths: list[Path], as_json: bool = False) -> int:
    shown: set[str] = set()

    def on_file(fr, error):
        if as_json:
            return
        if error:
            print(f"error: {error}", file=sys.stderr)
            shown.add(error)
            return
        print(f"{fr.source}: {fr.articles} articles ({len(fr.added)} added, {len(fr.updated)} updated, "
              f"{len(fr.unchanged)} unchanged, {len(fr.removed)} removed)")
        for p in fr.problems:
            print(f"error: {p}", file=sys.stderr)

    t0 = time.perf_counter()
    report = svc.ingest_paths(paths, on_file=on_file)
    if as_json:
        from dataclasses import asdict

        _print_json({"files": [asdict(f) for f in report.files], "errors": report.errors})
    else:
        # Every error not shown as its file was read: missing paths, unsupported or special files
        # (a FIFO, a device), folders with nothing to read.
        for e in report.errors:
            if e not in shown:
                print(f"error: {e}", file=sys.stderr)
        print(f"indexed {svc.index.docs.count_articles()} articles, {svc.index.docs.count_chunks()} passages "
              f"in {time.perf_counter() - t0:.1f}s")
    return 0 if report.ok else 1


# -- ask ---------------------------------------------------------------------------------------
def _format_answer(ans) -> str:
    lines = [ans.answer, ""]
    if ans.abstained:
        lines.append("最接近的段落：")
        for s in ans.sources[:3]:
            lines.append(f"  · {s.title or '（无标题）'} [{s.article_id} {s.start}-{s.end}] {s.passage[:80]}…")
        return "\n".join(lines)
    for c in ans.citations:
        lines.append(f"[{c.n}] {c.title or '（无标题）'}  ({c.article_id}, 字符 {c.start}-{c.end})")
        lines.append(f"    {c.passage}")
    return "\n".join(lines)


def cmd_ask(args) -> int:
    if bool(args.question) == bool(args.questions):
        raise QAError("give either a question or --questions FILE.jsonl")
    # One question: FTS5 ranks it at once, with the same results; building the in-memory keyword index
    # for it would cost more than it saves (about 1.5 s at 20k chunks).
    svc = _service(args, **({"keyword_in_memory": False} if args.question else {}))
    if args.question:
        ans = svc.ask(args.question, k=args.k)
        print(json.dumps(ans.to_dict(), ensure_ascii=False, indent=None) if args.json else _format_answer(ans))
        return 0
    status = 0
    for lineno, item, error in _read_questions(Path(args.questions)):
        if error:
            print(f"error: {args.questions}: line {lineno}: {error}", file=sys.stderr)
            status = 1
            continue
        try:
            ans = svc.ask(item["question"], k=args.k)
        except QAError as exc:
            print(f"error: {args.questions}: line {lineno}: {exc}", file=sys.stderr)
            status = 1
            continue
        if args.json:
            _print_json({"id": item.get("id"), **ans.to_dict()})
        else:
            print(f"# {item.get('id', lineno)} {item['question']}\n{_format_answer(ans)}\n")
    return status


def _read_questions(path: Path):
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise QAError(f"{path}: does not exist") from None
    except UnicodeDecodeError:
        raise QAError(f"{path}: is not UTF-8 text") from None
    for lineno, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            yield lineno, None, f"not valid JSON ({exc.msg})"
            continue
        if not isinstance(item, dict) or not isinstance(item.get("question"), str):
            yield lineno, None, 'expected an object with a string "question"'
            continue
        yield lineno, item, None


# -- articles ----------------------------------------------------------------------------------
def cmd_articles(args) -> int:
    svc = _service(args)
    arts = svc.list_articles()
    if args.json:
        _print_json([article_to_dict(a) for a in arts])
        return 0
    for a in arts:
        print(f"{a.id}  {a.title or '（无标题）'}  [{a.source}, {len(a.text)} 字]")
    print(f"{len(arts)} articles")
    return 0


def cmd_article(args) -> int:
    a = _service(args).get_article(args.id)
    if args.json:
        _print_json(article_to_dict(a))
    else:
        print("\n".join(x for x in (a.title, a.subtitle, a.byline) if x))
        print()
        print(a.text)
    return 0


def cmd_remove(args) -> int:
    svc = _service(args)
    for article_id in args.ids:
        svc.remove_article(article_id)
        print(f"removed {article_id}")
    return 0


# -- eval, run ---------------------------------------------------------------------------------
def cmd_eval(args) -> int:
    from qa.evaluation import evaluate, format_report

    svc = _service(args)
    if args.articles:
        code = _ingest(svc, [Path(args.articles)])
        if code:
            return code
    report = evaluate(svc, Path(args.questions), k=args.k, limit=args.limit, out=Path(args.out) if args.out else None)
    print(json.dumps(report, ensure_ascii=False, indent=2) if args.json else format_report(report))
    return 0


def cmd_run(args) -> int:
    svc = _service(args)
    if svc.is_empty():
        print(f"building the index of {svc.settings.corpus_dir} …")
        _ingest(svc, [svc.settings.corpus_dir])
    questions = [args.question or SAMPLE_QUESTION]
    print(f"\n问：{questions[0]}")
    print(_format_answer(svc.ask(questions[0])))
    if sys.stdin.isatty() and not args.question:
        print("\n输入问题（空行退出）：")
        for line in sys.stdin:
            if not line.strip():
                break
            try:
                print(_format_answer(svc.ask(line)) + "\n")
            except QAError as exc:
                print(f"error: {exc}", file=sys.stderr)
    return 0


def cmd_serve(args) -> int:
    from qa.web.server import serve

    return serve(_settings(args))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qa", description="Ask questions over Chinese news articles; every answer cites its sources.")
    p.add_argument("--data-dir", help="index location (default: QA_DATA_DIR or data/index)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("ingest", help="index files or folders (.txt .md .html .jsonl .docx .pdf)")
    s.add_argument("paths", nargs="+")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_ingest)

    s = sub.add_parser("ask", help="answer a question (or a JSONL file of questions)")
    s.add_argument("question", nargs="?")
    s.add_argument("--questions", help='JSONL file of {"id", "question"} lines')
    s.add_argument("-k", type=int, default=None, help="passages to return (1-50)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_ask)

    s = sub.add_parser("articles", help="list indexed articles")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_articles)

    s = sub.add_parser("article", help="show one article")
    s.add_argument("id")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_article)

    s = sub.add_parser("remove", help="delete articles from the index")
    s.add_argument("ids", nargs="+")
    s.set_defaults(fn=cmd_remove)

    s = sub.add_parser("eval", help="retrieval and answer metrics on a question set")
    s.add_argument("--questions", required=True)
    s.add_argument("--articles", help="JSONL articles to ingest first")
    s.add_argument("-k", type=int, default=5)
    s.add_argument("--limit", type=int, default=None)
    s.add_argument("--out", help="write per-question results as JSONL")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_eval)

    s = sub.add_parser("serve", help="serve the chat page and the HTTP API (indexes the default corpus if empty)")
    s.set_defaults(fn=cmd_serve)

    s = sub.add_parser("run", help="index the default corpus if needed, answer a sample question, then prompt")
    s.add_argument("question", nargs="?")
    s.set_defaults(fn=cmd_run)
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `qa articles | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
