"""Query latency of POST /api/ask (extractive) at the default corpus, 10k and 100k chunks; server memory at 100k.

    .venv/bin/python benchmarks/query_latency.py                 # full run (builds the indexes once)
    .venv/bin/python benchmarks/query_latency.py --quick         # 10k only, 30 questions, no memory run
    .venv/bin/python benchmarks/query_latency.py --skip-memory   # latency only

Indexes (built once, cached under data/bench-*/, deterministic):
  default  the default corpus (data/articles) ingested through QAService.ingest_paths, real model;
  10k/100k the same, plus synthetic chunks written through the real DocStore.replace_article
           (SQLite + FTS5) and DenseStore.add (Chroma): real CMRC/default-corpus sentences
           recombined into ~300-character passages, vectors mixed from the real model's sentence
           vectors plus noise (see common.synthetic_articles).

Latency: one process holds the three apps (`create_app(settings, service)` around one shared model)
behind `fastapi.testclient.TestClient`; for each question it times one embed_query and one
POST /api/ask per corpus, in a rotating order, so every ratio compares requests made at the same
moment. Targets: p50(100k) <= 1.5 x p50(default); p50(ask) <= 3 x p50(embed_query).

Keyword budget (--keyword-budget-eval): the CMRC trial eval over the 100k index plus the CMRC
articles, with vectorstore.docstore.KEYWORD_MAX_POSTINGS off and at a few values, to show what
leaving the most common words out of large keyword searches costs in quality and buys in time.

Memory: `python app.py` as a subprocess (QA_DATA_DIR = the 100k index), a few hundred asks over
HTTP, then VmHWM (peak RSS) from /proc/PID/status; the same for the default corpus for comparison.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    stop_process_group,
    BENCH_CACHE, CMRC_QUESTIONS, REPO, SYNTH_VERSION, Timer, load_embeddings, machine_info, ms_stats, print_table,
    python_exe, ratio, read_jsonl, sentence_pool, sentence_vectors, synthetic_articles, warm_tokenizer,
    write_synthetic, write_result,
)

TARGET_SCALE = 1.5
TARGET_EMBED = 3.0
MANIFEST = "bench-manifest.json"

# Questions about the default corpus (a newspaper page); the rest are CMRC trial questions, whose
# words the synthetic passages (recombined CMRC sentences) use.
SEED_QUESTIONS = [
    "上海流程智造科技创新研究院院长是谁？",
    "上海长三角科创企业服务中心苏南中心在哪里揭牌？",
    "苏南中心是什么时候揭牌的？",
    "宜昌市政协举办的是第几期“委员e家”？",
    "市政协将多少个界别分成10个界别联组？",
    "宜昌市生态环境局法规科科长是谁？",
    "黄恩提前赶到了哪里？",
    "娄底市政协委员学习联络委主任是谁？",
    "上海市嘉定区政协党组书记是谁？",
    "多少名委员全部进组？",
    "汉中市副市长是谁？",
    "北京市政协主席是谁？",
]
WARMUP_QUESTIONS = ["苏州市政协举办了什么研讨会？", "什么是沪苏同城化？", "河南省政协举行了什么会议？"]


def index_dir(name: str) -> Path:
    return REPO / "data" / f"bench-{name}"


def question_set(n: int) -> list[str]:
    cmrc = [q["question"] for q in read_jsonl(CMRC_QUESTIONS)]
    step = max(len(cmrc) // max(n - len(SEED_QUESTIONS), 1), 1)
    picked = cmrc[::step][: max(n - len(SEED_QUESTIONS), 0)]
    return list(dict.fromkeys(SEED_QUESTIONS + picked))[:n]


# -- building the indexes --------------------------------------------------------------------------
def ensure_index(name: str, n_chunks: int | None, embeddings) -> Path:
    """The default-corpus index (n_chunks None) or one padded with synthetic chunks to n_chunks."""
    from qa.components import build_service
    from qa.settings import Settings

    path = index_dir(name)
    want = {"version": SYNTH_VERSION, "chunks": n_chunks, "seed": 0, "model": embeddings.model_id}
    sentences, titles = sentence_pool()
    if n_chunks:
        import hashlib

        want["sentences"] = hashlib.sha256("\x1f".join(sentences + titles).encode()).hexdigest()[:16]
    manifest = path / MANIFEST
    if manifest.exists():
        have = json.loads(manifest.read_text())
        if {k: have.get(k) for k in want} == want:
            return path
    print(f"building {path} …", flush=True)
    shutil.rmtree(path, ignore_errors=True)
    t0 = time.perf_counter()
    settings = Settings(data_dir=path)
    svc = build_service(settings, embeddings=embeddings)
    report = svc.ingest_paths([settings.corpus_dir])
    assert report.ok, report.errors
    seed_chunks = svc.index.docs.count_chunks()
    if n_chunks:
        vectors = sentence_vectors(embeddings, sentences)
        total = n_chunks - seed_chunks
        step = max(total // 20, 1)
        last = [0]

        def progress(done: int) -> None:
            if done - last[0] >= step or done == total:
                last[0] = done
                print(f"  {done}/{total} synthetic chunks ({time.perf_counter() - t0:.0f} s)", flush=True)

        write_synthetic(svc.index.docs, svc.index.dense,
                        synthetic_articles(total, sentences, vectors, titles, seed=0), progress=progress)
    chunks = svc.index.docs.count_chunks()
    assert svc.index.dense.count() == chunks, "Chroma and SQLite disagree"
    svc.index.docs.close()
    manifest.write_text(json.dumps({**want, "actual_chunks": chunks, "seed_corpus_chunks": seed_chunks,
                                    "build_seconds": round(time.perf_counter() - t0, 1)}, indent=2))
    return path


# -- latency ----------------------------------------------------------------------------------------
def measure_latency(corpora: dict[str, Path], embeddings, questions: list[str], breakdown_n: int) -> dict:
    from fastapi.testclient import TestClient

    from qa.components import build_service
    from qa.settings import Settings
    from qa.web.app import create_app

    services, clients = {}, {}
    stack = contextlib.ExitStack()
    for name, path in corpora.items():
        settings = Settings(data_dir=path, answerer="extractive")
        services[name] = build_service(settings, embeddings=embeddings)
        # Entered once, as a server would be: one event loop for all requests, lifespan run.
        clients[name] = stack.enter_context(TestClient(create_app(settings, services[name])))
    sizes = {name: svc.index.docs.count_chunks() for name, svc in services.items()}
    for svc in services.values():
        svc.warm_up()  # as the server does after it starts: model, tokenizer, in-memory keyword index

    for q in WARMUP_QUESTIONS:
        embeddings.embed_query(q)
        for c in clients.values():
            assert c.post("/api/ask", json={"question": q}).status_code == 200

    names = list(corpora)
    embed_t: list[float] = []
    ask_t: dict[str, list[float]] = {n: [] for n in names}
    abstained: dict[str, int] = {n: 0 for n in names}
    print(f"timing {len(questions)} questions x ({' + '.join(names)} + embed_query) …", flush=True)
    for i, q in enumerate(questions):
        with Timer() as t:
            embeddings.embed_query(q)
        embed_t.append(t.seconds)
        for name in names[i % len(names):] + names[: i % len(names)]:  # rotate who goes first
            with Timer() as t:
                r = clients[name].post("/api/ask", json={"question": q})
            assert r.status_code == 200, (name, q, r.status_code, r.text[:200])
            ask_t[name].append(t.seconds)
            abstained[name] += bool(r.json()["abstained"])

    # Where the time goes (outside HTTP), on the first `breakdown_n` questions.
    breakdown = {}
    for name, svc in services.items():
        parts: dict[str, list[float]] = {"keyword_search": [], "dense_search_vector": [], "answerer": []}
        cand = svc.retriever.candidates
        for q in questions[:breakdown_n]:
            vec = embeddings.embed_query(q)
            with Timer() as t:
                svc.index.keyword_search(q, cand)
            parts["keyword_search"].append(t.seconds)
            with Timer() as t:
                svc.index.dense_search_vector(vec, cand)
            parts["dense_search_vector"].append(t.seconds)
            hits = svc.retriever.search(q, 10)
            with Timer() as t:
                svc.answerer.answer(q, hits, 5)
            parts["answerer"].append(t.seconds)
        breakdown[name] = {k: ms_stats(v)["p50_ms"] for k, v in parts.items()}

    stack.close()
    return {
        "chunks": sizes,
        "embed_query": ms_stats(embed_t),
        "ask": {n: ms_stats(v) for n, v in ask_t.items()},
        "abstained": {n: abstained[n] / len(questions) for n in names},
        "breakdown_p50_ms": breakdown,
    }


# -- keyword budget ---------------------------------------------------------------------------------
def keyword_budget_eval(embeddings, budgets: list[int]) -> dict:
    import vectorstore.docstore as docstore
    from common import CMRC_ARTICLES, CMRC_QUESTIONS
    from qa.components import build_service
    from qa.evaluation import evaluate
    from qa.settings import Settings

    src = ensure_index("100k", 100_000, embeddings)
    path = index_dir("100k-cmrc")
    manifest = path / MANIFEST
    if not manifest.exists() or json.loads(manifest.read_text()).get("from") != json.loads(
            (src / MANIFEST).read_text()):
        print(f"building {path} (the 100k index + the CMRC articles) …", flush=True)
        shutil.rmtree(path, ignore_errors=True)
        shutil.copytree(src, path)
        (path / MANIFEST).unlink()
        svc = build_service(Settings(data_dir=path), embeddings=embeddings)
        assert svc.ingest_paths([CMRC_ARTICLES]).ok
        svc.index.docs.close()
        manifest.write_text(json.dumps({"from": json.loads((src / MANIFEST).read_text())}, indent=2))
    svc = build_service(Settings(data_dir=path, answerer="extractive"), embeddings=embeddings)
    default = docstore.KEYWORD_MAX_POSTINGS
    qs = [q["question"] for q in read_jsonl(CMRC_QUESTIONS)][::5]
    out = {"chunks": svc.index.docs.count_chunks(), "product_default": default, "runs": {}}
    try:
        for b in budgets:
            docstore.KEYWORD_MAX_POSTINGS = b or 10**15
            times = []
            for q in qs:  # keyword search alone, warm
                with Timer() as t:
                    svc.index.keyword_search(q, svc.retriever.candidates)
                times.append(t.seconds)
            report = evaluate(svc, CMRC_QUESTIONS, k=5)
            out["runs"]["off" if not b else str(b)] = {
                **{k: round(v, 4) if isinstance(v, float) else v for k, v in report.items()},
                "keyword_search": ms_stats(times)}
            print(f"  budget {b or 'off'}: hit@5 {report['hit@5']:.3f}, answer_contains_gold "
                  f"{report['answer_contains_gold']:.3f}, keyword p50 {ms_stats(times)['p50_ms']} ms", flush=True)
    finally:
        docstore.KEYWORD_MAX_POSTINGS = default
    return out


# -- memory -----------------------------------------------------------------------------------------
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def measure_server_memory(data_dir: Path, questions: list[str], asks: int, concurrency: int) -> dict:
    """Peak RSS (VmHWM) of `python app.py` serving `data_dir` after `asks` POST /api/ask."""
    import httpx

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update({"QA_DATA_DIR": str(data_dir), "QA_PORT": str(port), "QA_HOST": "127.0.0.1",
                "QA_ANSWERER": "extractive"})
    if "QA_MODEL_CACHE_DIR" in os.environ:
        env["QA_MODEL_CACHE_DIR"] = os.environ["QA_MODEL_CACHE_DIR"]
    if "QA_EMBEDDING_BACKEND" in os.environ:
        env["QA_EMBEDDING_BACKEND"] = os.environ["QA_EMBEDDING_BACKEND"]
    BENCH_CACHE.mkdir(parents=True, exist_ok=True)
    log = open(BENCH_CACHE / f"{data_dir.name}-server.log", "w")
    proc = subprocess.Popen([python_exe(), "app.py"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 300
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with {proc.returncode}; see {log.name}")
            try:
                if httpx.get(base + "/api/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                raise RuntimeError("the server did not come up in 300 s")
            time.sleep(0.5)
        rss_idle_kb = _status_kb(proc.pid, "VmRSS")
        errors = []
        lock = threading.Lock()
        todo = [questions[i % len(questions)] for i in range(asks)]

        def worker():
            with httpx.Client(base_url=base, timeout=120) as c:
                while True:
                    with lock:
                        if not todo:
                            return
                        q = todo.pop()
                    r = c.post("/api/ask", json={"question": q})
                    if r.status_code != 200:
                        errors.append(r.status_code)

        t0 = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        health = httpx.get(base + "/api/health", timeout=10).json()
        return {
            "chunks": health.get("passages"),
            "asks": asks,
            "concurrency": concurrency,
            "errors": len(errors),
            "seconds": round(elapsed, 1),
            "rss_after_start_mb": round(rss_idle_kb / 1024, 1),
            "rss_now_mb": round(_status_kb(proc.pid, "VmRSS") / 1024, 1),
            "peak_rss_mb": round(_status_kb(proc.pid, "VmHWM") / 1024, 1),
        }
    finally:
        stop_process_group(proc)
        log.close()


# -- main -------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="default + 10k only, 30 questions, no memory run")
    ap.add_argument("--sizes", default=None, help="comma-separated chunk counts (default 10000,100000)")
    ap.add_argument("--questions", type=int, default=None, help="questions timed per corpus (default 120)")
    ap.add_argument("--breakdown", type=int, default=30, help="questions in the per-stage breakdown")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--memory-asks", type=int, default=300)
    ap.add_argument("--memory-concurrency", type=int, default=4)
    ap.add_argument("--build-only", action="store_true", help="build the cached indexes and stop")
    ap.add_argument("--keyword-budget-eval", action="store_true",
                    help="only: CMRC eval over 100k + CMRC with the keyword budget off/on (keyword_budget.json)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    sizes = [int(s) for s in (args.sizes or ("10000" if args.quick else "10000,100000")).split(",") if s]
    n_q = args.questions or (30 if args.quick else 120)

    info = machine_info()
    print("loading the model …", flush=True)
    embeddings = load_embeddings()
    warm_tokenizer()
    corpora = {"default": ensure_index("default", None, embeddings)}
    for n in sizes:
        label = f"{n // 1000}k" if n % 1000 == 0 else str(n)
        corpora[label] = ensure_index(label, n, embeddings)
    if args.build_only:
        return 0
    if args.keyword_budget_eval:
        import vectorstore.docstore as docstore

        res = keyword_budget_eval(embeddings, [0, 20_000, docstore.KEYWORD_MAX_POSTINGS, 10_000])
        res["machine"] = info
        write_result("keyword_budget", res)
        rows = [(b, r["hit@1"], r["hit@5"], r.get("gold_article@5"), r["answer_contains_gold"],
                 r["keyword_search"]["p50_ms"], r["keyword_search"]["p95_ms"]) for b, r in res["runs"].items()]
        print_table(rows, ("budget", "hit@1", "hit@5", "gold_article@5", "contains_gold", "kw p50 ms", "kw p95 ms"))
        return 0

    questions = question_set(n_q)
    lat = measure_latency(corpora, embeddings, questions, min(args.breakdown, len(questions)))
    names = list(corpora)
    biggest = names[-1]
    p50 = {n: lat["ask"][n]["p50_ms"] for n in names}
    embed_p50 = lat["embed_query"]["p50_ms"]
    ratios = {f"ask_p50_{n}_over_default": ratio(p50[n], p50["default"]) for n in names[1:]}
    ratios.update({f"ask_p50_{n}_over_embed_query_p50": ratio(p50[n], embed_p50) for n in names})
    targets = {
        f"p50_{biggest}_le_{TARGET_SCALE}x_default": {
            "value": ratio(p50[biggest], p50["default"]), "met": p50[biggest] <= TARGET_SCALE * p50["default"]},
        f"ask_p50_le_{TARGET_EMBED}x_embed_query": {
            "value": {n: ratio(p50[n], embed_p50) for n in names},
            "met": all(p50[n] <= TARGET_EMBED * embed_p50 for n in names)},
    }
    result = {
        "benchmark": "query_latency",
        "quick": args.quick,
        "endpoint": "POST /api/ask (extractive, non-streamed) via fastapi.testclient.TestClient",
        "questions": len(questions),
        **lat,
        "ratios": ratios,
        "targets": targets,
        "machine": info,
    }
    out = args.out or ("query_latency_quick" if args.quick else "query_latency")
    write_result(out, result)

    if not (args.quick or args.skip_memory):
        print(f"memory: python app.py serving {biggest} and default, {args.memory_asks} asks each …", flush=True)
        mem = {biggest: measure_server_memory(corpora[biggest], questions, args.memory_asks, args.memory_concurrency),
               "default": measure_server_memory(corpora["default"], questions, args.memory_asks,
                                                args.memory_concurrency)}
        mem["ratio_peak_rss_{}_over_default".format(biggest)] = ratio(mem[biggest]["peak_rss_mb"],
                                                                      mem["default"]["peak_rss_mb"])
        result["server_memory"] = mem
        write_result(out, result)

    print()
    rows = [("embed_query", "", lat["embed_query"]["p50_ms"], lat["embed_query"]["p95_ms"], "", 1.0)]
    for n in names:
        rows.append((f"POST /api/ask {n}", lat["chunks"][n], p50[n], lat["ask"][n]["p95_ms"],
                     ratio(p50[n], p50["default"]), ratio(p50[n], embed_p50)))
    print_table(rows, ("what", "chunks", "p50 ms", "p95 ms", "x default p50", "x embed_query p50"))
    print("\nper-stage p50 ms (no HTTP):", json.dumps(lat["breakdown_p50_ms"]))
    for name, t in targets.items():
        print(f"target {name}: {'met' if t['met'] else 'NOT met'} ({t['value']})")
    if "server_memory" in result:
        for n, m in result["server_memory"].items():
            if isinstance(m, dict):
                print(f"server {n}: {m['chunks']} chunks, peak RSS {m['peak_rss_mb']} MB after {m['asks']} asks "
                      f"({m['errors']} errors)")
    print(f"wrote {REPO / 'benchmarks' / 'results' / (out + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
