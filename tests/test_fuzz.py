"""Hostile input (tests/fuzz_inputs.py) through the HTTP API and the `qa ingest` CLI.

Every input gets a clear 4xx / `error:` line naming the problem, or is handled (indexed); never a 5xx,
a traceback or a hang. Afterwards the server is still up, and nothing indexed before is lost: the same
articles, and the same answer to a known question.

The app and the CLI run in subprocesses with tests/fakes.HashingEmbeddings (what is tested here is input
handling, not the model): the app through benchmarks/load_test.HASHING_APP, the CLI through `qa.cli.main`
with `qa.components.build_embeddings` swapped in the subprocess, so arguments, output and exit codes
are the real CLI's.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from conftest import REPO
from fuzz_inputs import MB, HostileFile, hostile_files, hostile_json_bodies, hostile_queries

sys.path.insert(0, str(REPO / "benchmarks"))
from load_test import AppProcess  # noqa: E402

QUESTION, ANSWER = "汉中市副市长是谁？", "李芳"
FILES = hostile_files()
CLIENT_ERRORS = (400, 404, 405, 411, 413, 414, 415, 422, 431)


# -- the app ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz-app")
    proc = AppProcess(tmp / "index", embeddings="hashing")
    proc.start()
    baseline = {"ids": _article_ids(proc.url), "answer": _ask(proc.url)}
    assert ANSWER in baseline["answer"]["answer"]
    proc.baseline = baseline
    yield proc
    proc.stop()


def _article_ids(url: str) -> set[str]:
    r = httpx.get(f"{url}/api/articles", params={"limit": 1000}, timeout=30)
    r.raise_for_status()
    return {a["id"] for a in r.json()}


def _ask(url: str) -> dict:
    r = httpx.post(f"{url}/api/ask", json={"question": QUESTION}, timeout=60)
    r.raise_for_status()
    return r.json()


def assert_nothing_lost(app: AppProcess) -> None:
    assert app.alive(), app.log_tail()
    assert httpx.get(f"{app.url}/api/health", timeout=30).status_code == 200
    assert app.baseline["ids"] <= _article_ids(app.url)
    now = _ask(app.url)
    assert now["answer"] == app.baseline["answer"]["answer"]
    assert [c["passage"] for c in now["citations"]] == [c["passage"] for c in app.baseline["answer"]["citations"]]


def multipart(filename: bytes, data: bytes, field: bytes = b"file", boundary: bytes = b"fuzzboundary7MA4YWxk") -> bytes:
    """A multipart body built by hand, so a file name can hold any bytes (NUL, RTL overrides, ../)."""
    return (b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"" + field + b"\"; filename=\"" + filename
            + b"\"\r\nContent-Type: application/octet-stream\r\n\r\n" + data + b"\r\n--" + boundary + b"--\r\n")


def raw_request(port: int, request: bytes, timeout: float = 30) -> tuple[int, bytes]:
    """Send exact bytes; return the status code and body (0 if the server closed without a response)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early (e.g. 413) and closed: read what it said
        chunks = []
        try:
            while True:
                got = s.recv(65536)
                if not got:
                    break
                chunks.append(got)
                head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
                if b"content-length:" in head.lower():
                    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                    if len(body) >= length:
                        break
        except (ConnectionResetError, socket.timeout):
            pass
    raw = b"".join(chunks)
    if not raw.startswith(b"HTTP/1.1 "):
        return 0, raw
    return int(raw[9:12]), raw.partition(b"\r\n\r\n")[2]


def upload(app: AppProcess, f: HostileFile, timeout: float = 120) -> tuple[int, bytes]:
    body = multipart(f.name.encode("utf-8", "surrogateescape"), f.data)
    head = (f"POST /api/articles HTTP/1.1\r\nHost: 127.0.0.1:{app.port}\r\n"
            f"Content-Type: multipart/form-data; boundary=fuzzboundary7MA4YWxk\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    return raw_request(app.port, head + body, timeout)


def _detail(body: bytes) -> str:
    obj = json.loads(body)
    return obj["detail"] if "detail" in obj else obj["error"]["message"]


# -- uploads ---------------------------------------------------------------------------------------
@pytest.mark.timeout(600)
def test_hostile_uploads_get_a_clear_answer_and_lose_nothing(app):
    outcomes = {}
    for f in FILES:
        if not f.http:
            continue
        t0 = time.monotonic()
        status, body = upload(app, f)
        took = time.monotonic() - t0
        outcomes[f.label] = status
        assert status != 0, f"{f.label}: the server closed the connection without answering"
        assert status < 500, f"{f.label}: HTTP {status} {body[:300]!r}"
        assert took < 60, f"{f.label}: {took:.0f}s"
        if f.expect == "reject":
            assert status in CLIENT_ERRORS, f"{f.label}: expected a 4xx, got {status} {body[:300]!r}"
        if status >= 400:
            detail = _detail(body)
            assert detail and "internal" not in detail.lower(), (f.label, detail)
            if f.error_has:
                assert any(w in detail.lower() for w in f.error_has), (f.label, detail)
        else:  # indexed: the name was reduced to a bare, printable file name
            report = json.loads(body)
            assert "/" not in report["source"] and "\\" not in report["source"] and "\x00" not in report["source"]
            assert report["source"].isprintable(), report["source"]
        assert httpx.get(f"{app.url}/api/health", timeout=30).status_code == 200, f"{f.label} took the server down"
    assert outcomes["huge"] == 413
    # Nothing was written outside the data dir by a traversal name.
    assert not Path("/etc/passwd.txt").exists() and not (REPO / "etc").exists()
    assert_nothing_lost(app)


@pytest.mark.timeout(300)
def test_hostile_json_bodies_get_a_4xx_never_a_5xx(app):
    for b in hostile_json_bodies():
        data = b.body if isinstance(b.body, bytes) else json.dumps(b.body, ensure_ascii=False).encode()
        headers = {"Content-Type": b.content_type} if b.content_type else {}
        t0 = time.monotonic()
        r = httpx.post(f"{app.url}{b.path}", content=data, headers=headers, timeout=60)
        assert r.status_code in b.statuses, f"{b.label}: HTTP {r.status_code} {r.text[:300]}"
        assert time.monotonic() - t0 < 30, b.label
        if r.status_code >= 400:
            detail = _detail(r.content)
            assert detail and "internal server error" not in detail, (b.label, detail)
            assert len(detail) < 2000, f"{b.label}: the error echoes the input ({len(detail)} chars)"
        else:
            assert "answer" in r.json(), b.label
    assert_nothing_lost(app)


@pytest.mark.timeout(120)
def test_hostile_queries_and_paths(app):
    for label, params, statuses in hostile_queries():
        query = urlencode(params).encode()
        status, body = raw_request(app.port, b"GET /api/search?" + query + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                   b"Connection: close\r\n\r\n")
        assert status in (*statuses, 400), f"{label}: HTTP {status} {body[:200]!r}"
    for article_id in ("..%2F..%2Fetc%2Fpasswd", "%00", "a" * 5000, "%E2%80%AE", "' OR 1=1 --"):
        for method in ("GET", "DELETE"):
            r = httpx.request(method, f"{app.url}/api/articles/{article_id}", timeout=30)
            assert r.status_code in (404, 422), (method, article_id[:20], r.status_code, r.text[:200])
    r = httpx.get(f"{app.url}/api/articles", params={"limit": -1, "offset": -5}, timeout=30)
    assert r.status_code == 422
    status, _ = raw_request(app.port, b"GET /api/articles?q=" + b"x" * 100_000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            b"Connection: close\r\n\r\n")
    assert status in (400, 414, 422, 431)
    assert_nothing_lost(app)


@pytest.mark.timeout(180)
def test_malformed_http_requests(app):
    host = f"Host: 127.0.0.1:{app.port}\r\n".encode()

    def post(headers: bytes, body: bytes = b"") -> tuple[int, bytes]:
        return raw_request(app.port, b"POST /api/articles HTTP/1.1\r\n" + host + headers + b"Connection: close\r\n\r\n"
                           + body)

    mp = b"Content-Type: multipart/form-data; boundary=fuzzboundary7MA4YWxk\r\n"
    # An empty multipart body, and one that has no 'file' field.
    status, body = post(mp + b"Content-Length: 24\r\n", b"--fuzzboundary7MA4YWxk--\r\n")
    assert status in (400, 422), body
    other = multipart(b"a.txt", b"text", field=b"notfile")
    status, body = post(mp + f"Content-Length: {len(other)}\r\n".encode(), other)
    assert status == 422 and b"file" in body, body
    # Two files where one is allowed.
    two = multipart(b"a.txt", "一。".encode())[:-len(b"--fuzzboundary7MA4YWxk--\r\n")] + multipart(b"b.txt", b"x")
    status, body = post(mp + f"Content-Length: {len(two)}\r\n".encode(), two)
    assert status in (400, 413, 422), body
    # Multipart without a boundary; a truncated multipart body.
    status, body = post(b"Content-Type: multipart/form-data\r\nContent-Length: 10\r\n", b"0123456789")
    assert status in (400, 422), body
    cut = multipart(b"a.txt", "截断的上传。".encode() * 100)[:300]
    status, body = post(mp + f"Content-Length: {len(cut)}\r\n".encode(), cut)
    assert status in (400, 422), body
    # A declared size far above the limit is refused before any body is read.
    t0 = time.monotonic()
    status, body = post(mp + b"Content-Length: 1000000000000\r\n", b"--fuzz")
    assert status == 413 and time.monotonic() - t0 < 10, body
    status, body = post(b"Content-Type: application/json\r\nContent-Length: 1000000000000\r\n", b"{")
    assert status == 413, body
    # A body sent chunked (no Content-Length) above the limit: the app-wide backstop stops it.
    limit = 20 * MB
    piece = b"x" * MB
    chunked = b"".join(b"%x\r\n" % len(piece) + piece + b"\r\n" for _ in range(2 * limit // MB + 3)) + b"0\r\n\r\n"
    status, body = post(mp + b"Transfer-Encoding: chunked\r\n", chunked)
    assert status in (400, 413, 422) or status == 0, body[:200]
    # Garbage instead of HTTP.
    status, _ = raw_request(app.port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(200))
    assert status in (0, 400)
    assert_nothing_lost(app)


# -- the CLI ----------------------------------------------------------------------------------------
CLI_WITH_HASHING = f"""
import sys
sys.path.insert(0, {str(REPO / "tests")!r})
from fakes import HashingEmbeddings
import qa.components
qa.components.build_embeddings = lambda settings: HashingEmbeddings()
from qa.cli import main
sys.exit(main(sys.argv[1:]))
"""


def qa_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    return subprocess.run([sys.executable, "-c", CLI_WITH_HASHING, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.mark.timeout(600)
def test_hostile_files_through_qa_ingest(tmp_path):
    data_dir = str(tmp_path / "index")
    seeded = qa_cli("--data-dir", data_dir, "ingest", str(REPO / "data" / "articles"))
    assert seeded.returncode == 0, seeded.stderr
    before = json.loads(qa_cli("--data-dir", data_dir, "articles", "--json").stdout)
    answer_before = json.loads(qa_cli("--data-dir", data_dir, "ask", QUESTION, "--json").stdout)
    assert ANSWER in answer_before["answer"]

    inputs = tmp_path / "hostile"
    inputs.mkdir()
    paths = []
    for f in FILES:
        if not f.cli:
            continue
        p = inputs / f.name
        p.write_bytes(f.data)
        paths.append(str(p))
    # Things only a file system can hold: a FIFO named .txt (reading it would block forever), a folder
    # with nothing supported in it, a symlink loop, a path that does not exist.
    fifo = inputs / "pipe.txt"
    os.mkfifo(fifo)
    (inputs / "nothing-here").mkdir()
    (inputs / "nothing-here" / "photo.png").write_bytes(b"\x89PNG")
    (inputs / "loop").mkdir()
    (inputs / "loop" / "self").symlink_to(inputs / "loop")
    (inputs / "loop" / "ok.txt").write_text("循环链接旁边的正常文件。\n", encoding="utf-8")
    specials = [str(fifo), str(inputs / "nothing-here"), str(inputs / "loop"), str(inputs / "missing.txt")]

    t0 = time.monotonic()
    r = qa_cli("--data-dir", data_dir, "ingest", *paths, *specials)
    took = time.monotonic() - t0
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])  # some files had problems
    assert took < 240
    errors = [line for line in r.stderr.splitlines() if line.strip()]
    assert all(line.startswith("error: ") for line in errors), [e for e in errors if not e.startswith("error: ")]
    for f in FILES:
        if not f.cli:
            continue
        mentioned_err = [e for e in errors if f.name in e]
        mentioned_ok = [line for line in r.stdout.splitlines() if line.startswith(f.name + ":")]
        assert mentioned_err or mentioned_ok, f"{f.label}: no line about {f.name}"
        if f.expect == "reject":
            assert mentioned_err and all(": 0 articles" in line for line in mentioned_ok), (f.label, mentioned_ok)
            if f.error_has:
                assert any(w in mentioned_err[0].lower() for w in f.error_has), (f.label, mentioned_err)
    for special, words in ((fifo, "not a regular file"), (inputs / "nothing-here", "no supported files"),
                           (inputs / "missing.txt", "does not exist")):
        assert any(str(special) in e and words in e for e in errors), (special, errors)
    assert any(line.startswith("ok.txt:") for line in r.stdout.splitlines()), r.stdout

    after = json.loads(qa_cli("--data-dir", data_dir, "articles", "--json").stdout)
    assert {a["id"] for a in before} <= {a["id"] for a in after}
    old = {a["id"]: a["text"] for a in before}
    assert all(a["text"] == old[a["id"]] for a in after if a["id"] in old)
    answer_after = json.loads(qa_cli("--data-dir", data_dir, "ask", QUESTION, "--json").stdout)
    assert answer_after["answer"] == answer_before["answer"]

    # Hostile questions through the CLI: a clear error line, exit status 2, no traceback.
    for question, words in (("问" * 30_000, "too long"), ("   ", "empty")):
        r = qa_cli("--data-dir", data_dir, "ask", question)
        assert r.returncode == 2 and r.stderr.startswith("error: ") and words in r.stderr, r.stderr[-500:]
    # A questions file with hostile lines: one error line each, the good line answered, exit status 1.
    qfile = tmp_path / "questions.jsonl"
    qfile.write_bytes(b"\n".join([
        json.dumps({"id": "ok", "question": QUESTION}, ensure_ascii=False).encode(),
        b"{not json", b"[1, 2]", b'{"question": 42}', b'{"question": "\\ud800"}',
        json.dumps({"question": "问" * 5000}, ensure_ascii=False).encode()]))
    r = qa_cli("--data-dir", data_dir, "ask", "--questions", str(qfile), "--json")
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert [json.loads(line)["id"] for line in r.stdout.splitlines()] == ["ok"]
    errors = r.stderr.splitlines()
    assert len(errors) == 5 and all(e.startswith("error: ") for e in errors), r.stderr
    # A questions file that is not UTF-8 at all is refused as a whole, in one line.
    qfile.write_bytes(b'{"question": "\xff\xfe"}\n')
    r = qa_cli("--data-dir", data_dir, "ask", "--questions", str(qfile))
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "UTF-8" in r.stderr, r.stderr
    r = qa_cli("--data-dir", data_dir, "ask", QUESTION, "-k", "-1")
    assert r.returncode == 2 and "k must be" in r.stderr, r.stderr[-500:]


def test_there_are_at_least_30_hostile_inputs():
    assert len(FILES) + len(hostile_json_bodies()) + len(hostile_queries()) >= 30
    assert len(FILES) >= 30
