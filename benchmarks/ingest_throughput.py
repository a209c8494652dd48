"""Ingest throughput: the whole pipeline vs the bare embedding model, chunks per second.

    .venv/bin/python benchmarks/ingest_throughput.py            # CMRC trial articles (649 chunks)
    .venv/bin/python benchmarks/ingest_throughput.py --quick    # the first 60 articles

Pipeline = `QAService.ingest_paths([jsonl])` into a fresh data dir: read the file, segment, chunk,
embed, write Chroma and the SQLite registry + FTS5 keyword index, sweep orphans.
Bare model = the same loaded model's `embed_documents` over exactly the strings the pipeline
embeds (`vectorstore.index.embedding_text` of every chunk), in one call, same batch size.

Both run in this process with the model and jieba already warm, alternating (bare, pipeline,
bare, pipeline, ...) so background load hits both alike. Target: pipeline >= 0.85 x bare.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    CMRC_ARTICLES, Timer, load_embeddings, machine_info, print_table, ratio, warm_tokenizer, write_result,
)

TARGET = 0.85


def chunk_texts(path: Path, settings) -> list[str]:
    """The exact strings the pipeline hands the model for `path`."""
    from qa.articles import to_records
    from qa.ingest.readers import read_file
    from vectorstore.index import embedding_text

    records = to_records(path.name, read_file(path).articles, chunk_size=settings.chunk_size,
                         overlap=settings.chunk_overlap_sentences)
    return [embedding_text(c) for _, chunks in records for c in chunks]


def run_pipeline(path: Path, embeddings, workdir: Path) -> tuple[float, int]:
    from qa.components import build_service
    from qa.settings import Settings

    data = Path(tempfile.mkdtemp(prefix="ingest-", dir=workdir))
    svc = build_service(Settings(data_dir=data), embeddings=embeddings)
    with Timer() as t:
        report = svc.ingest_paths([path])
    assert report.ok, report.errors
    n = svc.index.docs.count_chunks()
    assert svc.index.dense.count() == n, "Chroma and SQLite disagree"
    svc.index.docs.close()
    return t.seconds, n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="the first 60 CMRC articles, 2 rounds")
    ap.add_argument("--rounds", type=int, default=None, help="alternating bare/pipeline rounds (default 3; quick 2)")
    ap.add_argument("--articles", type=Path, default=CMRC_ARTICLES)
    ap.add_argument("--out", default=None, help="result name under benchmarks/results (default ingest_throughput[_quick])")
    args = ap.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 3)

    from qa.settings import Settings

    settings = Settings()
    info = machine_info()
    workdir = Path(tempfile.mkdtemp(prefix="qa-bench-ingest-"))
    try:
        corpus = args.articles
        if args.quick:
            corpus = workdir / "cmrc_quick.jsonl"
            lines = args.articles.read_text(encoding="utf-8").splitlines()[:60]
            corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")

        print("loading the model …", flush=True)
        embeddings = load_embeddings()
        warm_tokenizer()
        texts = chunk_texts(corpus, settings)
        chars = sum(len(t) for t in texts)
        print(f"{len(texts)} chunks, {chars} characters embedded; {rounds} rounds", flush=True)

        bare, pipe = [], []
        for r in range(rounds):
            with Timer() as t:
                vectors = embeddings.embed_documents(texts)
            assert len(vectors) == len(texts)
            bare.append(t.seconds)
            seconds, n = run_pipeline(corpus, embeddings, workdir)
            assert n == len(texts), f"the pipeline indexed {n} chunks, the bare run embedded {len(texts)}"
            pipe.append(seconds)
            print(f"round {r + 1}: bare {len(texts) / bare[-1]:.1f} chunks/s, pipeline {n / seconds:.1f} chunks/s "
                  f"(ratio {bare[-1] / seconds:.3f})", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    n = len(texts)
    per_round = [b / p for b, p in zip(bare, pipe)]
    bare_cps = n / statistics.median(bare)
    pipe_cps = n / statistics.median(pipe)
    result = {
        "benchmark": "ingest_throughput",
        "quick": args.quick,
        "corpus": str(args.articles.name) + (" (first 60 articles)" if args.quick else ""),
        "chunks": n,
        "characters_embedded": chars,
        "rounds": rounds,
        "embedding_batch_size": settings.embedding_batch_size,
        "bare_seconds": [round(x, 3) for x in bare],
        "pipeline_seconds": [round(x, 3) for x in pipe],
        "bare_chunks_per_s": round(bare_cps, 2),
        "pipeline_chunks_per_s": round(pipe_cps, 2),
        "ratio_pipeline_over_bare": ratio(pipe_cps, bare_cps),
        "ratio_per_round": [round(x, 3) for x in per_round],
        "ratio_median_of_rounds": round(statistics.median(per_round), 3),
        "target_ratio": TARGET,
        "target_met": statistics.median(per_round) >= TARGET,
        "machine": info,
    }
    path = write_result(args.out or ("ingest_throughput_quick" if args.quick else "ingest_throughput"), result)
    print()
    print_table(
        [
            ("bare model (embed_documents)", n, round(statistics.median(bare), 2), round(bare_cps, 1), 1.0),
            ("pipeline (ingest_paths)", n, round(statistics.median(pipe), 2), round(pipe_cps, 1),
             result["ratio_median_of_rounds"]),
        ],
        ("what", "chunks", "median s", "chunks/s", "x bare"),
    )
    print(f"\ntarget pipeline >= {TARGET} x bare: {'met' if result['target_met'] else 'NOT met'}  "
          f"(per round: {', '.join(f'{x:.3f}' for x in per_round)})")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
