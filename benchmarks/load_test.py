"""Load test: the real app under concurrent questions, then under questions and ingest at once.

    python benchmarks/load_test.py                      # 16 clients x 60 s, then the ingest phase
    python benchmarks/load_test.py --clients 4 --seconds 8 --ingest-seconds 8

It starts `python app.py` as a subprocess on 127.0.0.1 with its own QA_DATA_DIR and QA_PORT (real
embedding model, default corpus; the first start indexes the corpus), or talks to a running app with
`--url`. Loopback only.

Phase 1 ("ask"): N clients POST /api/ask in a loop for `--seconds`, cycling through questions about the
default corpus (one of which must abstain). Every response is checked: 200, the expected answer, and
every citation and source resolves through GET /api/articles/{id} with `text[start:end] == passage`.

Phase 2 ("ingest"): the same clients keep asking (now also about articles being written), while a
writer POSTs new articles, re-posts them unchanged, and re-posts them with new text (same id). A
prober checks that an article is never half-visible: once GET /api/articles/{id} returns it, a search
for its unique keyword finds its passage, and every passage of it anyone sees is `text[start:end]` of
a version the writer posted.

Reports requests, errors (must be 0), throughput and p50/p95/p99 latency per phase to
benchmarks/results/load.json (or `--out`). Exit status 1 if there was any error.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"

# (question, a string the answer must contain, or None for a question the corpus cannot answer)
QUESTIONS: list[tuple[str, str | None]] = [
    ("汉中市副市长是谁？", "李芳"),
    ("王雅茜认为乡村振兴的核心在于什么？", "激发农民的主动性和创造性"),
    ("“我们要上市”活动在哪里举行？", "西陵区三峡创客产业园"),
    ("苏州市政协举办了什么研讨会？", "沪苏同城化"),
    ("火星基地的首任指挥官是谁？", None),  # not in the corpus: must abstain
]

# An app started with HashingEmbeddings (tests/fakes.py) instead of the model, for tests of the web
# and index layers where the model is not what is measured. Product code never sees the fake.
HASHING_APP = f"""
import os, sys
sys.path.insert(0, {str(REPO / "tests")!r})
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
from fakes import HashingEmbeddings
import uvicorn
from qa.components import build_service
from qa.errors import QAError
from qa.settings import load_settings
from qa.web.app import create_app
try:
    s = load_settings()
    svc = build_service(s, embeddings=HashingEmbeddings())
    if svc.is_empty() and os.environ.get("LOAD_TEST_SKIP_CORPUS") != "1":
        svc.ingest_paths([s.corpus_dir])
except QAError as exc:
    print(f"error: {{exc}}", file=sys.stderr)
    sys.exit(2)
print("serving", flush=True)
uvicorn.run(create_app(s, svc), host=s.host, port=s.port, log_level="warning")
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppProcess:
    """The app in a subprocess on 127.0.0.1: `python app.py` (real model), or HASHING_APP."""

    def __init__(self, data_dir: Path, *, port: int | None = None, env: dict | None = None,
                 embeddings: str = "real", log_path: Path | None = None, preexec_fn=None):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.embeddings = embeddings
        self.log_path = log_path or self.data_dir.parent / f"app-{self.port}.log"
        base = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
        base.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
                     "ANONYMIZED_TELEMETRY": "False", "PYTHONUNBUFFERED": "1"})
        if os.environ.get("QA_MODEL_CACHE_DIR"):
            base["QA_MODEL_CACHE_DIR"] = os.environ["QA_MODEL_CACHE_DIR"]
        base.update({"QA_DATA_DIR": str(self.data_dir), "QA_PORT": str(self.port), "QA_HOST": "127.0.0.1"})
        base.update(env or {})
        self.env = base
        self.preexec_fn = preexec_fn  # e.g. a resource limit for the app process (tests)
        self.proc: subprocess.Popen | None = None

    @property
    def command(self) -> list[str]:
        if self.embeddings == "real":
            return [sys.executable, str(REPO / "app.py")]
        return [sys.executable, "-c", HASHING_APP]

    def start(self, timeout: float = 180) -> AppProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=self.preexec_fn)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the app exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + "/api/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"the app did not answer /api/health within {timeout:g}s:\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def __enter__(self) -> AppProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# -- checking answers ------------------------------------------------------------------------------
class ArticleTexts:
    """Article texts by id, fetched once, plus every version the writer posted (phase 2)."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self._cache: dict[str, str] = {}
        self._versions: dict[str, list[str]] = defaultdict(list)
        self._lock = threading.Lock()

    def add_version(self, article_id: str, text: str) -> None:
        with self._lock:
            self._versions[article_id].append(text)

    def versions(self, article_id: str) -> list[str]:
        with self._lock:
            return list(self._versions.get(article_id, ()))

    def written(self, article_id: str) -> bool:
        with self._lock:
            return article_id in self._versions

    def current(self, client: httpx.Client, article_id: str) -> str | None:
        r = client.get(f"{self.base_url}/api/articles/{article_id}")
        if r.status_code != 200:
            return None
        return r.json()["text"]

    def check_span(self, client: httpx.Client, span: dict) -> str | None:
        """None if the span is exact, else what is wrong."""
        aid, start, end, passage = span["article_id"], span["start"], span["end"], span["passage"]
        if self.written(aid):  # being rewritten right now: any posted version, and it must resolve
            text = self.current(client, aid)
            if text is None:
                return f"article {aid} is cited but GET /api/articles/{aid} does not find it"
            if text[start:end] == passage or any(v[start:end] == passage for v in self.versions(aid)):
                return None
            return f"article {aid}: passage is not text[{start}:{end}] of any posted version"
        with self._lock:
            text = self._cache.get(aid)
        if text is None:
            text = self.current(client, aid)
            if text is None:
                return f"article {aid} is cited but GET /api/articles/{aid} does not find it"
            with self._lock:
                self._cache[aid] = text
        if text[start:end] != passage:
            return f"article {aid}: text[{start}:{end}] != passage"
        return None


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: int = 0
    abstained: int = 0
    ingests: int = 0
    probes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ok(self, seconds: float) -> None:
        with self.lock:
            self.requests += 1
            self.latencies.append(seconds)

    def error(self, what: str) -> None:
        with self.lock:
            self.requests += 1
            self.errors.append(what)

    def report(self, wall: float) -> dict:
        lat = sorted(self.latencies)

        def pct(p: float) -> float | None:
            if not lat:
                return None
            return round(lat[min(len(lat) - 1, int(round(p / 100 * (len(lat) - 1))))] * 1000, 1)

        return {
            "requests": self.requests, "errors": len(self.errors), "error_samples": self.errors[:10],
            "throughput_rps": round(self.requests / wall, 2) if wall else 0.0,
            "latency_ms": {"p50": pct(50), "p95": pct(95), "p99": pct(99),
                           "mean": round(statistics.fmean(lat) * 1000, 1) if lat else None,
                           "max": round(lat[-1] * 1000, 1) if lat else None},
            "abstained": self.abstained, "ingests": self.ingests, "visibility_probes": self.probes,
            "seconds": round(wall, 2),
        }


def ask_once(client: httpx.Client, base_url: str, question: str, expect: str | None, texts: ArticleTexts,
             stats: Stats, timeout: float) -> None:
    t0 = time.perf_counter()
    try:
        r = client.post(f"{base_url}/api/ask", json={"question": question}, timeout=timeout)
    except httpx.HTTPError as exc:
        stats.error(f"{question}: {type(exc).__name__}: {exc}")
        return
    elapsed = time.perf_counter() - t0
    if r.status_code != 200:
        stats.error(f"{question}: HTTP {r.status_code} {r.text[:200]}")
        return
    ans = r.json()
    problem = None
    if expect is None and not ans["abstained"]:
        problem = f"{question}: should abstain, answered {ans['answer'][:80]!r}"
    elif expect is not None and expect not in ans["answer"] and not expect.startswith("kw"):
        problem = f"{question}: expected {expect!r} in {ans['answer'][:120]!r}"
    for span in [*ans["citations"], *ans["sources"]]:
        problem = problem or texts.check_span(client, span)
    if problem:
        stats.error(problem)
        return
    stats.ok(elapsed)
    if ans["abstained"]:
        with stats.lock:
            stats.abstained += 1


def run_ask_phase(base_url: str, clients: int, seconds: float, texts: ArticleTexts,
                  questions: list[tuple[str, str | None]] | None = None, extra_questions=None,
                  timeout: float = 60.0) -> tuple[Stats, float]:
    """`clients` threads asking until `seconds` pass. `extra_questions()` may add (question, None-or-kw)."""
    questions = questions or QUESTIONS
    stats = Stats()
    deadline = time.monotonic() + seconds

    def client_loop(n: int) -> None:
        rnd = random.Random(n)
        i = n
        with httpx.Client(timeout=timeout) as client:
            while time.monotonic() < deadline:
                extra = extra_questions() if extra_questions else []
                if extra and rnd.random() < 0.4:
                    q, expect = rnd.choice(extra)
                else:
                    q, expect = questions[i % len(questions)]
                    i += 1
                ask_once(client, base_url, q, expect, texts, stats, timeout)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client_loop, args=(n,), name=f"client-{n}") for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return stats, time.perf_counter() - t0


# -- phase 2: ingest while asking --------------------------------------------------------------------
def new_article(n: int, version: int) -> dict:
    kw = f"kw{n:04d}"
    body = (f"第{n}号测试文章（代号{kw}）报道了一项新的社区活动。活动由第{n}社区居委会组织，"
            f"参加人数为{100 + n * 7 + version}人。这是第{version}版的内容。")
    return {"id": f"load-{n:04d}", "title": f"社区活动报道{kw}", "text": body, "source": "load-test"}


def run_ingest_phase(base_url: str, clients: int, seconds: float, texts: ArticleTexts,
                     timeout: float = 60.0) -> dict:
    stats_writer = Stats()
    stats_probe = Stats()
    posted: list[int] = []
    posted_lock = threading.Lock()
    stop = threading.Event()

    def writer() -> None:
        rnd = random.Random(7)
        n = 0
        with httpx.Client(timeout=timeout) as client:
            while not stop.is_set():
                with posted_lock:
                    have = list(posted)
                roll = rnd.random()
                if not have or roll < 0.5:
                    n += 1
                    art, kind = new_article(n, 1), "new"
                elif roll < 0.75:
                    m = rnd.choice(have)
                    art, kind = new_article(m, 1 + rnd.randrange(3)), "re-ingest"
                else:
                    m = rnd.choice(have)
                    art, kind = new_article(m, len(texts.versions(f"load-{m:04d}")) + 1), "update"
                texts.add_version(art["id"], art["text"])  # before posting: readers may see it at once
                t0 = time.perf_counter()
                try:
                    r = client.post(f"{base_url}/api/articles", json=art)
                except httpx.HTTPError as exc:
                    stats_writer.error(f"POST {art['id']} ({kind}): {type(exc).__name__}: {exc}")
                    continue
                if r.status_code not in (200, 201):
                    stats_writer.error(f"POST {art['id']} ({kind}): HTTP {r.status_code} {r.text[:200]}")
                    continue
                stats_writer.ok(time.perf_counter() - t0)
                with stats_writer.lock:
                    stats_writer.ingests += 1
                if kind == "new":
                    with posted_lock:
                        posted.append(n)

    def prober() -> None:
        """Visible ⇒ complete: a posted article resolves, and its keyword finds its passage."""
        rnd = random.Random(11)
        with httpx.Client(timeout=timeout) as client:
            while not stop.is_set():
                with posted_lock:
                    have = list(posted)
                if not have:
                    time.sleep(0.05)
                    continue
                m = rnd.choice(have)
                aid, kw = f"load-{m:04d}", f"kw{m:04d}"
                t0 = time.perf_counter()
                try:
                    r = client.get(f"{base_url}/api/articles/{aid}")
                    if r.status_code != 200:
                        stats_probe.error(f"{aid} was posted but GET gives HTTP {r.status_code}")
                        continue
                    if r.json()["text"] not in texts.versions(aid):
                        stats_probe.error(f"{aid}: GET returns a text no one posted")
                        continue
                    s = client.get(f"{base_url}/api/search", params={"q": kw, "k": 10})
                except httpx.HTTPError as exc:
                    stats_probe.error(f"probe {aid}: {type(exc).__name__}: {exc}")
                    continue
                if s.status_code != 200:
                    stats_probe.error(f"search {kw}: HTTP {s.status_code} {s.text[:200]}")
                    continue
                mine = [p for p in s.json()["passages"] if p["article_id"] == aid]
                if not mine:
                    stats_probe.error(f"{aid} is visible but a search for {kw} finds none of its passages")
                    continue
                bad = [p for p in mine if not any(v[p["start"]:p["end"]] == p["passage"] for v in texts.versions(aid))]
                if bad:
                    stats_probe.error(f"{aid}: a passage is not text[start:end] of any posted version")
                    continue
                stats_probe.ok(time.perf_counter() - t0)
                with stats_probe.lock:
                    stats_probe.probes += 1

    def extra_questions() -> list[tuple[str, str | None]]:
        with posted_lock:
            have = posted[-20:]
        return [(f"代号kw{m:04d}的社区活动有多少人参加？", f"kw{m:04d}") for m in have]

    background = [threading.Thread(target=writer, name="writer"), threading.Thread(target=prober, name="prober")]
    for t in background:
        t.start()
    try:
        ask_stats, wall = run_ask_phase(base_url, clients, seconds, texts, extra_questions=extra_questions,
                                        timeout=timeout)
    finally:
        stop.set()
        for t in background:
            t.join(timeout=timeout + 5)
    # Afterwards: every posted article is there, in its last posted version, and findable.
    final_errors: list[str] = []
    with httpx.Client(timeout=timeout) as client:
        for m in posted:
            aid = f"load-{m:04d}"
            r = client.get(f"{base_url}/api/articles/{aid}")
            if r.status_code != 200 or r.json()["text"] != texts.versions(aid)[-1]:
                final_errors.append(f"{aid}: not in its last posted version after the run")
    report = ask_stats.report(wall)
    report["ingest"] = stats_writer.report(wall)
    report["probe"] = stats_probe.report(wall)
    report["articles_written"] = len(posted)
    report["final_errors"] = final_errors
    report["errors"] += report["ingest"]["errors"] + report["probe"]["errors"] + len(final_errors)
    report["error_samples"] += (report["ingest"]["error_samples"] + report["probe"]["error_samples"]
                                + final_errors)[:10]
    return report


def run(base_url: str, clients: int, seconds: float, ingest_seconds: float, timeout: float = 60.0) -> dict:
    texts = ArticleTexts(base_url)
    with httpx.Client(timeout=timeout) as client:  # warm up: the model loads on the first question
        for q, _ in QUESTIONS:
            r = client.post(f"{base_url}/api/ask", json={"question": q})
            r.raise_for_status()
        health = client.get(f"{base_url}/api/health").json()
    result: dict = {"url": base_url, "clients": clients, "health_before": health}
    if seconds > 0:
        stats, wall = run_ask_phase(base_url, clients, seconds, texts, timeout=timeout)
        result["ask"] = stats.report(wall)
    if ingest_seconds > 0:
        result["ask_while_ingesting"] = run_ingest_phase(base_url, clients, ingest_seconds, texts, timeout=timeout)
    with httpx.Client(timeout=timeout) as client:
        result["health_after"] = client.get(f"{base_url}/api/health").json()
    result["errors"] = sum(result[p]["errors"] for p in ("ask", "ask_while_ingesting") if p in result)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--seconds", type=float, default=60, help="phase 1: questions only")
    p.add_argument("--ingest-seconds", type=float, default=None, help="phase 2: questions + ingest (default: --seconds / 2)")
    p.add_argument("--url", help="an app that is already running (else one is started)")
    p.add_argument("--data-dir", help="index for the started app (default: a fresh temporary one)")
    p.add_argument("--embeddings", choices=["real", "hashing"], default="real",
                   help="hashing: a fast fake model, to load-test the web and index layers alone")
    p.add_argument("--out", default=str(RESULTS / "load.json"))
    args = p.parse_args(argv)
    ingest_seconds = args.seconds / 2 if args.ingest_seconds is None else args.ingest_seconds

    app = None
    tmp = None
    if args.url:
        url = args.url.rstrip("/")
    else:
        import tempfile

        if args.data_dir:
            data_dir = Path(args.data_dir)
        else:
            tmp = tempfile.TemporaryDirectory(prefix="qa-load-")
            data_dir = Path(tmp.name) / "index"
        app = AppProcess(data_dir, embeddings=args.embeddings)
        print(f"starting the app on {app.url} (index {data_dir}; log {app.log_path}) …", flush=True)
        t0 = time.perf_counter()
        app.start(timeout=600)
        print(f"ready in {time.perf_counter() - t0:.1f}s", flush=True)
        url = app.url
    try:
        result = run(url, args.clients, args.seconds, ingest_seconds)
        if app is not None:
            result["app_alive_after"] = app.alive()
            result["embeddings"] = args.embeddings
    finally:
        if app is not None:
            app.stop()
        if tmp is not None:
            tmp.cleanup()
    result["cpu_count"] = os.cpu_count()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    for phase in ("ask", "ask_while_ingesting"):
        if phase in result:
            r = result[phase]
            print(f"{phase}: {r['requests']} requests, {r['errors']} errors, {r['throughput_rps']} req/s, "
                  f"p50 {r['latency_ms']['p50']} ms, p95 {r['latency_ms']['p95']} ms, p99 {r['latency_ms']['p99']} ms"
                  + (f"; {r['ingest']['ingests']} ingests, {r['probe']['visibility_probes']} visibility probes"
                     if phase == "ask_while_ingesting" else ""))
            for e in r["error_samples"]:
                print(f"  error: {e}")
    print(f"wrote {out}")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
