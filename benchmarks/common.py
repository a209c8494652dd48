"""Shared helpers for the benchmarks: paths, machine description, percentiles, result files, tables.

The machine these run on is shared (2 cores, other work running), so absolute times are noisy.
Every benchmark therefore also reports ratios of quantities measured in the same run, interleaved
so that both sides of a ratio see the same background load.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python benchmarks/x.py` from the repo root
    sys.path.insert(0, str(REPO))

# Offline, quiet, before anything imports transformers/gradio/chromadb.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

RESULTS = REPO / "benchmarks" / "results"
DATA = REPO / "benchmarks" / "data"
CMRC_ARTICLES = DATA / "cmrc_trial_articles.jsonl"
CMRC_QUESTIONS = DATA / "cmrc_trial_questions.jsonl"
# Built indexes and cached vectors live here (gitignored: /data/bench-*/).
BENCH_CACHE = REPO / "data" / "bench-cache"
VENV_PYTHON = REPO / ".venv" / "bin" / "python"


def python_exe() -> str:
    return str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable


def machine_info() -> dict:
    """Enough to tell two result files' machines apart."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    info = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host_cpu": cpu,
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "mem_gb": mem_gb,
        "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }
    try:
        from qa.settings import Settings

        st = Settings()
        info["embedding_model"] = st.embedding_model
        info["embedding_backend"] = getattr(st, "embedding_backend", "torch")
    except Exception as exc:  # noqa: BLE001 - a bad QA_* variable: say so, do not fail the benchmark
        info["settings_error"] = str(exc)
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except Exception:  # noqa: BLE001 - a backend without torch
        pass
    return info


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:  # noqa: BLE001
        return None


def percentile(values: list[float], p: float) -> float:
    """Linear-interpolated percentile (numpy's default), p in 0..100."""
    if not values:
        return float("nan")
    xs = sorted(values)
    if len(xs) == 1:
        return xs[0]
    pos = (len(xs) - 1) * p / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def ms_stats(seconds: list[float]) -> dict:
    """p50/p95/mean/min/max in milliseconds of a list of durations in seconds."""
    ms = [s * 1000.0 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "mean_ms": round(sum(ms) / len(ms), 2) if ms else None,
        "min_ms": round(min(ms), 2) if ms else None,
        "max_ms": round(max(ms), 2) if ms else None,
    }


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def write_result(name: str, payload: dict) -> Path:
    """benchmarks/results/<name>.json, written atomically."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def print_table(rows: list[tuple], headers: tuple[str, ...]) -> None:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    line = "  ".join("-" * w for w in widths)
    print("  ".join(h.ljust(w) for h, w in zip(cells[0], widths)))
    print(line)
    for row in cells[1:]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return "" if v is None else str(v)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def model_cache_dir() -> Path:
    """Where the default model is materialized: QA_MODEL_CACHE_DIR, else the product default."""
    from qa.settings import Settings

    return Settings().model_cache_dir


def load_embeddings():
    """The configured embedding model (whatever backend the settings pick), loaded and warmed up."""
    from qa.components import build_embeddings
    from qa.settings import Settings

    emb = build_embeddings(Settings())
    emb.embed_documents(["预热 warm-up"])
    emb.embed_query("预热")
    return emb


def warm_tokenizer() -> None:
    """jieba loads its dictionary on first use (~1 s); load it outside any timed region."""
    from vectorstore.keyword import is_name_like, tokenize

    tokenize("预热分词器")
    is_name_like("北京")


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0


# -- synthetic corpora -----------------------------------------------------------------------------
# Scale indexes are built from real sentences (CMRC + the default corpus), recombined into
# chunk-sized passages, with vectors mixed from the real model's sentence vectors plus noise.
# Everything is written through the product's own DocStore.replace_article (SQLite + FTS5, jieba
# tokens) and DenseStore.add (Chroma), in the same order NewsIndex writes them.
SYNTH_VERSION = 1


def sentence_pool() -> tuple[list[str], list[str]]:
    """Distinct real sentences (8-200 characters) and article titles, in a fixed order."""
    from qa.chunking import sentence_spans

    texts: list[str] = []
    titles: list[str] = []
    for a in read_jsonl(CMRC_ARTICLES):
        titles.append(a["title"])
        texts.append(a["text"])
    from qa.settings import Settings

    for p in sorted(Path(Settings().corpus_dir).glob("*.txt")):
        texts.append(p.read_text(encoding="utf-8"))
    seen: dict[str, None] = {}
    for t in texts:
        for s in sentence_spans(t):
            sent = t[s.start : s.end]
            if 8 <= len(sent) <= 200:
                seen.setdefault(sent, None)
    return list(seen), sorted(set(titles))


def sentence_vectors(embeddings, sentences: list[str]):
    """The model's passage vectors of `sentences`, computed once and cached as .npy (keyed by content)."""
    import hashlib

    import numpy as np

    key = hashlib.sha256(("\x1f".join([embeddings.model_id, *sentences])).encode()).hexdigest()[:16]
    path = BENCH_CACHE / f"sentence-vectors-{key}.npy"
    if path.exists():
        return np.load(path)
    BENCH_CACHE.mkdir(parents=True, exist_ok=True)
    print(f"embedding {len(sentences)} sentences once (cached in {path.name}) …", flush=True)
    vecs = np.asarray(embeddings.embed_documents(sentences), dtype=np.float32)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vecs)
    os.replace(tmp, path)
    return vecs


def synthetic_articles(n_chunks: int, sentences: list[str], vectors, titles: list[str], *, seed: int = 0,
                       chunks_per_article: int = 5, chunk_size: int = 300, noise: float = 0.3,
                       id_prefix: str = "syn"):
    """Yield (ArticleRecord, [ChunkRecord], vectors) deterministically for `n_chunks` chunks.

    Each chunk is 3+ random real sentences up to `chunk_size` characters; its vector is the
    normalized mean of those sentences' vectors plus Gaussian noise (`noise` x the mean's norm).
    """
    import hashlib

    import numpy as np

    from vectorstore.records import ArticleRecord, ChunkRecord

    rng = np.random.default_rng(seed)
    dim = vectors.shape[1]
    made = 0
    j = 0
    while made < n_chunks:
        aid = f"{id_prefix}-{j:06d}"
        title = titles[int(rng.integers(len(titles)))]
        texts, vecs = [], []
        for _ in range(min(chunks_per_article, n_chunks - made)):
            picked: list[int] = []
            length = 0
            while True:
                i = int(rng.integers(len(sentences)))
                if picked and length + len(sentences[i]) > chunk_size:
                    if len(picked) >= 3 or length >= chunk_size // 2:
                        break
                    continue
                picked.append(i)
                length += len(sentences[i])
            texts.append("".join(sentences[i] for i in picked))
            v = vectors[picked].mean(axis=0)
            v = v / np.linalg.norm(v)
            v = v + rng.standard_normal(dim).astype(np.float32) * (noise / np.sqrt(dim))
            vecs.append(v / np.linalg.norm(v))
        text = "\n".join(texts)
        article = ArticleRecord(
            id=aid, title=title, text=text, paragraphs=tuple(texts), source=f"{id_prefix}.jsonl", position=j,
            content_hash=hashlib.sha256(text.encode()).hexdigest()[:32],
        )
        chunks, pos = [], 0
        for o, t in enumerate(texts):
            chunks.append(ChunkRecord(id=f"{aid}:{o:02d}", article_id=aid, ordinal=o, start=pos, end=pos + len(t),
                                      text=t, title=title))
            pos += len(t) + 1
        made += len(chunks)
        j += 1
        yield article, chunks, np.asarray(vecs, dtype=np.float32)


def write_synthetic(docs, dense, items, *, batch_articles: int = 200, progress=None) -> int:
    """Write synthetic articles the way NewsIndex does: vectors first, then one transaction per article."""
    written = 0
    batch: list = []

    def flush():
        nonlocal written
        if not batch:
            return
        ids = [c.id for _, chunks, _ in batch for c in chunks]
        owners = [c.article_id for _, chunks, _ in batch for c in chunks]
        import numpy as np

        vecs = np.concatenate([v for _, _, v in batch]).tolist()
        dense.add(ids, vecs, owners)
        for article, chunks, _ in batch:
            dense.delete(docs.replace_article(article, chunks))
        written += len(ids)
        batch.clear()
        if progress:
            progress(written)

    for item in items:
        batch.append(item)
        if len(batch) >= batch_articles:
            flush()
    flush()
    return written


def stop_process_group(proc) -> None:
    """SIGTERM the process group a benchmark started (start_new_session=True), then SIGKILL if it lingers."""
    import signal
    import subprocess

    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
