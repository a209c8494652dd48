"""Faults at the edges, through the real app in a subprocess: a Chroma server that hangs, dies and
comes back; an LLM endpoint that hangs or errors; a full disk and a read-only data dir; and a short
load test (questions, then questions while articles are written).

Apps here use tests/fakes.HashingEmbeddings (see benchmarks/load_test.HASHING_APP) unless the model is
part of what is tested; the load test runs the real `python app.py` and is marked slow.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from chroma_server import ChromaServer
from conftest import REPO, free_port
from fake_llm import FakeLLM, Reply

sys.path.insert(0, str(REPO / "benchmarks"))
from crash_ingest import inspect_index  # noqa: E402
from load_test import AppProcess, run  # noqa: E402

QUESTION, ANSWER = "汉中市副市长是谁？", "李芳"


def ask(app: AppProcess, question: str = QUESTION, timeout: float = 60, **body) -> httpx.Response:
    return httpx.post(f"{app.url}/api/ask", json={"question": question, **body}, timeout=timeout)


def timed(fn, *args, **kwargs) -> tuple[httpx.Response, float]:
    t0 = time.monotonic()
    r = fn(*args, **kwargs)
    return r, time.monotonic() - t0


def post_article(app: AppProcess, title: str, text: str, timeout: float = 60) -> httpx.Response:
    return httpx.post(f"{app.url}/api/articles", json={"title": title, "text": text, "source": "faults"},
                      timeout=timeout)


def article_ids(app: AppProcess) -> set[str]:
    r = httpx.get(f"{app.url}/api/articles", params={"limit": 1000}, timeout=30)
    r.raise_for_status()
    return {a["id"] for a in r.json()}


def assert_index_consistent(data_dir: Path, chroma_url: str | None = None) -> dict:
    """From another process, after the app stopped: SQLite and FTS intact, every chunk has its vector
    (in the embedded store, or on the Chroma server at `chroma_url`)."""
    state = inspect_index(data_dir)
    assert state["integrity"] == ["ok"], state["integrity"]
    assert state["fts_integrity"] == "ok", state["fts_integrity"]
    registered = {c for cs in state["chunks"].values() for c in cs}
    if chroma_url:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        port = int(chroma_url.rsplit(":", 1)[1])
        client = chromadb.HttpClient(host="127.0.0.1", port=port, settings=ChromaSettings(anonymized_telemetry=False))
        have = set(client.get_collection("news").get(include=[])["ids"])
    else:
        assert not state["problems"], state["problems"]
        have = set(state["chroma_ids"] or [])
    assert registered <= have, "registered chunks without vectors"
    return state


# -- (a) the Chroma server hangs, dies, and comes back ----------------------------------------------
@pytest.mark.timeout(240)
def test_chroma_server_hang_death_and_restart(tmp_path):
    server = ChromaServer(tmp_path / "chroma-server", free_port()).start()
    app = AppProcess(tmp_path / "index", embeddings="hashing",
                     env={"QA_CHROMA_URL": server.url, "QA_CHROMA_TIMEOUT": "2"})
    try:
        app.start()
        before = ask(app)
        assert before.status_code == 200 and ANSWER in before.json()["answer"]
        articles_before = article_ids(app)

        # Paused: it accepts connections but never answers. Without a client timeout this hung forever.
        os.killpg(server.proc.pid, signal.SIGSTOP)
        try:
            for call in (lambda: ask(app), lambda: httpx.get(f"{app.url}/api/search", params={"q": "李芳"}, timeout=60),
                         lambda: httpx.get(f"{app.url}/api/health", timeout=60)):
                r, took = timed(call)
                assert r.status_code == 503, r.text
                assert "Chroma" in r.json()["detail"] and "timed out" in r.json()["detail"], r.text
                assert took < 10, f"a hung Chroma server held the request {took:.1f}s"
        finally:
            os.killpg(server.proc.pid, signal.SIGCONT)

        # Stopped: connection refused, at once.
        server.stop()
        for path, call in (
            ("/api/ask", lambda: ask(app)),
            ("/api/search", lambda: httpx.get(f"{app.url}/api/search", params={"q": "李芳"}, timeout=60)),
            ("/api/health", lambda: httpx.get(f"{app.url}/api/health", timeout=60)),
            ("/api/articles", lambda: post_article(app, "服务器停了", "这篇文章在Chroma停止时提交。")),
        ):
            r, took = timed(call)
            assert r.status_code == 503, (path, r.status_code, r.text)
            detail = r.json()["detail"]
            assert "Chroma" in detail and server.url in detail, detail
            assert took < 5, f"{path} took {took:.1f}s with the Chroma server down"
        # Reads that do not need vectors still work, and the failed write left nothing behind.
        assert article_ids(app) == articles_before

        # Back on the same port and path: the same app answers again, with the same answer.
        server.start()
        after = ask(app)
        assert after.status_code == 200, after.text
        assert after.json()["answer"] == before.json()["answer"]
        assert after.json()["sources"] == before.json()["sources"]
        assert httpx.get(f"{app.url}/api/health", timeout=30).json()["status"] == "ok"
        r = post_article(app, "服务器回来了", "Chroma重启以后提交的文章，代号zq5restart。")
        assert r.status_code == 201, r.text
        hits = httpx.get(f"{app.url}/api/search", params={"q": "zq5restart"}, timeout=30).json()["passages"]
        assert hits and hits[0]["article_id"] == r.json()["added"][0]
        assert app.alive()
    finally:
        app.stop()
        server.stop()


@pytest.mark.timeout(120)
def test_a_chroma_server_hung_at_start_is_a_clear_error_not_a_hang(tmp_path):
    """chromadb's HttpClient() talks to the server before any timeout can be set on it."""
    server = ChromaServer(tmp_path / "chroma-server", free_port()).start()
    os.killpg(server.proc.pid, signal.SIGSTOP)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
        env.update({"QA_CHROMA_URL": server.url, "QA_CHROMA_TIMEOUT": "2"})
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "qa.cli", "--data-dir", str(tmp_path / "index"), "ask", QUESTION],
                           capture_output=True, text=True, timeout=90, cwd=REPO, env=env)
        took = time.monotonic() - t0
        assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
        assert r.stderr.startswith("error: ") and "Traceback" not in r.stderr, r.stderr[-2000:]
        assert server.url in r.stderr and "did not answer within 2 s" in r.stderr, r.stderr
        assert took < 60, took
        # The web app says the same at start and exits, instead of never listening.
        app = AppProcess(tmp_path / "index2", embeddings="hashing", env={"QA_CHROMA_URL": server.url,
                                                                       "QA_CHROMA_TIMEOUT": "2"})
        with pytest.raises(RuntimeError, match="did not answer within 2 s"):
            app.start(timeout=60)
        app.stop()
    finally:
        os.killpg(server.proc.pid, signal.SIGCONT)
        server.stop()


# -- (b) the LLM endpoint hangs or errors ----------------------------------------------------------
@pytest.mark.timeout(180)
def test_llm_hang_or_error_falls_back_to_the_extractive_answer(tmp_path):
    with FakeLLM(hang_seconds=30) as llm:
        app = AppProcess(tmp_path / "index", embeddings="hashing", env={
            "QA_LLM_BASE_URL": llm.url, "QA_LLM_MODEL": llm.model, "QA_LLM_TIMEOUT": "2"})
        try:
            app.start()
            assert httpx.get(f"{app.url}/api/health", timeout=30).json()["answerer"] == f"llm:{llm.model}"
            # Working: the LLM writes the answer.
            llm.script(Reply("汉中市副市长是李芳[1]。"))
            r = ask(app)
            assert r.status_code == 200 and r.json()["answerer"].startswith("llm"), r.text

            for mode in ("hang", "error", "garbage", "empty", "hang_after"):
                llm.script(Reply("汉中市副市长是李芳[1]。这句话永远说不完。" * 3, mode=mode))
                r, took = timed(ask, app)
                assert r.status_code == 200, (mode, r.text)
                ans = r.json()
                assert took < 2 + 8, f"{mode}: {took:.1f}s, the LLM timeout is 2s"
                assert ans["answerer"] == "extractive", (mode, ans)
                assert "LLM unavailable" in ans["note"], (mode, ans["note"])
                assert ANSWER in ans["answer"] and ans["citations"], (mode, ans)

            # Streaming: a stream that stalls midway is reset, then the extractive answer follows.
            llm.script(Reply("汉中市副市长是李芳[1]。" * 4, mode="hang_after"))
            t0 = time.monotonic()
            with httpx.stream("POST", f"{app.url}/api/ask", params={"stream": "true"},
                              json={"question": QUESTION}, timeout=30) as s:
                assert s.status_code == 200
                body = "".join(s.iter_text())
            assert time.monotonic() - t0 < 2 + 8
            assert "event: reset" in body and "event: answer" in body and "LLM unavailable" in body
            assert app.alive()
        finally:
            app.stop()


# -- (c) a full disk and a read-only data dir -------------------------------------------------------
def _can_mount() -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    probe = Path(f"/tmp/qa-mount-probe-{os.getpid()}")
    probe.mkdir(exist_ok=True)
    try:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(probe)],
                            capture_output=True).returncode == 0
        if ok:
            subprocess.run(["umount", str(probe)], check=True)
        return ok
    finally:
        probe.rmdir()


class SmallDisk:
    """A data dir on a filesystem that runs out of space, and a way to give it more.

    With root (CI): a tiny tmpfs, later remounted bigger. Without: the app's file-size limit
    (RLIMIT_FSIZE; Python ignores SIGXFSZ, so writes past it fail with EFBIG, which SQLite reports as a
    full disk), later raised with prlimit. Either way the writes really fail in the kernel.
    """

    def __init__(self, root: Path, size_bytes: int):
        self.root = root
        self.size = size_bytes
        self.mounted = False
        self.pid: int | None = None

    def __enter__(self) -> SmallDisk:
        self.root.mkdir(parents=True, exist_ok=True)
        if _can_mount():
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size}", "tmpfs", str(self.root)], check=True)
            self.mounted = True
        return self

    def preexec(self):
        if self.mounted:
            return None
        limit = self.size

        def limit_file_size():
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

        return limit_file_size

    def grow(self, size_bytes: int) -> None:
        if self.mounted:
            subprocess.run(["mount", "-o", f"remount,size={size_bytes}", str(self.root)], check=True)
        else:
            resource.prlimit(self.pid, resource.RLIMIT_FSIZE, (size_bytes, resource.RLIM_INFINITY))

    def __exit__(self, *exc) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.root)], check=False)


def _filler_jsonl(n: int, articles: int = 10) -> bytes:
    import json
    import random

    rnd = random.Random(n)
    lines = []
    for i in range(articles):
        text = "\n".join("".join(chr(0x4E00 + rnd.randrange(8000)) for _ in range(300)) + "。" for _ in range(5))
        lines.append(json.dumps({"id": f"fill-{n}-{i}", "title": f"填充文章{n}-{i}", "text": text}, ensure_ascii=False))
    return ("\n".join(lines) + "\n").encode()


def _fill(app: AppProcess) -> tuple[httpx.Response, int]:
    """Upload ~60 KB files until a write is refused; that response and the file's number."""
    for n in range(200):  # 4-8 MB fills in well under 100
        r = httpx.post(f"{app.url}/api/articles", files={"file": (f"fill-{n}.jsonl", _filler_jsonl(n))}, timeout=60)
        if r.status_code not in (200, 201):
            return r, n
    raise AssertionError("the disk never filled")


def _writes_work_again(app: AppProcess, n: int, seed_ids: set[str], seed_answer: dict) -> None:
    r = httpx.post(f"{app.url}/api/articles", files={"file": ("again.jsonl", _filler_jsonl(n))}, timeout=60)
    assert r.status_code in (200, 201), r.text
    r = post_article(app, "空间释放以后", "磁盘空间释放以后提交的文章，代号zq7space。")
    assert r.status_code == 201, r.text
    hits = httpx.get(f"{app.url}/api/search", params={"q": "zq7space"}, timeout=30).json()["passages"]
    assert hits and hits[0]["article_id"] == r.json()["added"][0]
    assert seed_ids <= article_ids(app)
    assert ask(app).json()["answer"] == seed_answer["answer"]


@pytest.mark.timeout(240)
def test_a_full_disk_is_a_clear_error_and_loses_nothing(tmp_path):
    """The disk under the article registry really fills (the free-space check is off): the write gets
    a clear 503, nothing indexed is lost, reads go on, and writes work again once space is freed.

    Vectors live on a `chroma run` server elsewhere: embedded Chroma cannot be part of this test. A
    write that fails inside embedded Chroma on a full disk ("Error in compaction: Failed to apply logs
    to the metadata segment", chroma-core/chroma#5366) can leave its next write waiting forever on a
    dead background task while holding the GIL, which freezes the whole process. That is why the
    free-space check below exists and is on by default."""
    server = ChromaServer(tmp_path / "chroma-server", free_port()).start()
    with SmallDisk(tmp_path / "small", 4_000_000) as disk:
        # Without a mount, the file-size limit applies to the app process itself.
        app = AppProcess(disk.root / "index", embeddings="hashing", log_path=tmp_path / "app.log",
                         preexec_fn=disk.preexec(), env={"QA_MIN_FREE_DISK_MB": "0", "QA_CHROMA_URL": server.url})
        try:
            app.start()
            disk.pid = app.proc.pid
            seed_ids = article_ids(app)
            seed_answer = ask(app).json()
            assert ANSWER in seed_answer["answer"]

            full, n = _fill(app)
            assert full.status_code == 503, full.text
            detail = full.json()["detail"]
            assert "full" in detail.lower() or "space" in detail.lower(), detail

            # Nothing lost, reads still work, the server is up.
            assert seed_ids <= article_ids(app)
            again = ask(app).json()
            assert again["answer"] == seed_answer["answer"]
            assert httpx.get(f"{app.url}/api/health", timeout=30).status_code == 200

            # Space freed: writes work again, and the upload that failed can be made again.
            disk.grow(64_000_000)
            _writes_work_again(app, n, seed_ids, seed_answer)
            app.stop()
            assert_index_consistent(disk.root / "index", server.url)
        finally:
            app.stop()
            server.stop()


@pytest.mark.timeout(240)
@pytest.mark.skipif(not _can_mount(), reason="needs root to mount a small tmpfs")
def test_writes_stop_before_the_disk_is_full_and_resume_when_space_is_freed(tmp_path):
    """With the free-space check (on by default), writes are refused while there is still room, so
    neither store ever fails a write: once space is freed, writes work again without a restart."""
    with SmallDisk(tmp_path / "small", 8_000_000) as disk:
        app = AppProcess(disk.root / "index", embeddings="hashing", log_path=tmp_path / "app.log",
                         env={"QA_MIN_FREE_DISK_MB": "3"})
        try:
            app.start()
            seed_ids = article_ids(app)
            seed_answer = ask(app).json()
            full, n = _fill(app)
            assert full.status_code == 503, full.text
            detail = full.json()["detail"]
            assert "not enough free disk space" in detail and "QA_MIN_FREE_DISK_MB" in detail, detail
            assert shutil.disk_usage(disk.root).free > 2_000_000, "refused while there was still room"
            r = post_article(app, "小文章", "磁盘将满时的一篇短文章。")
            assert r.status_code == 503
            assert seed_ids <= article_ids(app)
            assert ask(app).json()["answer"] == seed_answer["answer"]
            # Deleting is always allowed: it frees space.
            victim = sorted(article_ids(app) - seed_ids)[0]
            assert httpx.delete(f"{app.url}/api/articles/{victim}", timeout=30).status_code in (200, 204)

            disk.grow(64_000_000)
            _writes_work_again(app, n, seed_ids, seed_answer)
        finally:
            app.stop()
        assert_index_consistent(disk.root / "index")


@contextlib.contextmanager
def read_only(path: Path):
    """Make `path` read-only for everyone, root included: a read-only bind mount, else chattr +i,
    else (not root) chmod."""
    how = None
    if os.geteuid() == 0 and shutil.which("mount"):
        if subprocess.run(["mount", "--bind", str(path), str(path)], capture_output=True).returncode == 0:
            if subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], capture_output=True).returncode == 0:
                how = "bind"
            else:
                subprocess.run(["umount", str(path)], check=False)
        if how is None and shutil.which("chattr"):
            if subprocess.run(["chattr", "-R", "+i", str(path)], capture_output=True).returncode == 0:
                how = "chattr"
    if how is None:
        if os.geteuid() == 0:
            pytest.fail("cannot make a directory read-only for root here (no mount, no chattr)")
        for p in [path, *path.rglob("*")]:
            p.chmod(p.stat().st_mode & ~0o222)
        how = "chmod"
    try:
        yield how
    finally:
        if how == "bind":
            subprocess.run(["umount", "-l", str(path)], check=False)
        elif how == "chattr":
            subprocess.run(["chattr", "-R", "-i", str(path)], check=False)
        else:
            for p in [path, *path.rglob("*")]:
                p.chmod(p.stat().st_mode | 0o200)


@pytest.mark.timeout(240)
def test_a_read_only_data_dir_is_a_clear_error_and_loses_nothing(tmp_path):
    data_dir = tmp_path / "index"
    app = AppProcess(data_dir, embeddings="hashing")
    try:
        app.start()
        seed_ids = article_ids(app)
        seed_answer = ask(app).json()
        with read_only(data_dir):
            r = post_article(app, "只读目录", "数据目录只读时提交的文章。")
            assert r.status_code == 503, r.text
            detail = r.json()["detail"]
            assert "read-only" in detail or "readonly" in detail, detail
            upload = httpx.post(f"{app.url}/api/articles", files={"file": ("ro.jsonl", _filler_jsonl(1, 2))},
                                timeout=60)
            assert upload.status_code == 503, upload.text
            # A removal may go through (SQLite can still write through the file it holds open; the
            # vectors become orphans for the next sweep) or fail, but it must not fail *and* happen.
            cited = {s["article_id"] for s in seed_answer["sources"]}
            victim = sorted(seed_ids - cited)[0]
            r = httpx.delete(f"{app.url}/api/articles/{victim}", timeout=30)
            assert r.status_code in (204, 503), r.text
            if r.status_code == 204:
                seed_ids = seed_ids - {victim}
            assert article_ids(app) == seed_ids
            # Reads still work while it is read-only.
            assert ask(app).json()["answer"] == seed_answer["answer"]
        # Writable again: nothing was lost, and writes work without a restart.
        assert article_ids(app) == seed_ids
        r = post_article(app, "恢复可写", "数据目录恢复可写以后提交的文章，代号zq9rw。")
        assert r.status_code == 201, r.text
        hits = httpx.get(f"{app.url}/api/search", params={"q": "zq9rw"}, timeout=30).json()["passages"]
        assert hits and hits[0]["article_id"] == r.json()["added"][0]
        assert ask(app).json()["answer"] == seed_answer["answer"]
    finally:
        app.stop()
    # A fresh process cannot open an index it may not write either; it says so in one line.
    with read_only(data_dir):
        env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
        r = subprocess.run([sys.executable, "-m", "qa.cli", "--data-dir", str(data_dir), "ingest",
                            str(REPO / "data" / "articles")], capture_output=True, text=True, timeout=120,
                           cwd=REPO, env=env)
        assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
        assert "Traceback" not in r.stderr, r.stderr[-2000:]
        assert r.stderr.startswith("error: ") and "read-only" in r.stderr, r.stderr
    assert_index_consistent(data_dir)


# -- load: questions, then questions while articles are written --------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(420)
def test_short_load_with_concurrent_ingest_has_no_errors(tmp_path):
    """4 clients x 8 s on the real app (real model, default corpus), then 8 s more while a writer adds,
    re-posts and rewrites articles: no errors, no half-visible article, every citation exact."""
    with AppProcess(tmp_path / "index", embeddings="real") as app:
        result = run(app.url, clients=4, seconds=8, ingest_seconds=8)
        assert app.alive()
    ask_, mixed = result["ask"], result["ask_while_ingesting"]
    assert result["errors"] == 0, (ask_["error_samples"], mixed["error_samples"])
    assert ask_["requests"] >= 4 and ask_["abstained"] >= 1
    assert mixed["requests"] >= 4 and mixed["ingest"]["ingests"] >= 2 and mixed["probe"]["visibility_probes"] >= 1
    assert result["health_after"]["articles"] == result["health_before"]["articles"] + mixed["articles_written"]
