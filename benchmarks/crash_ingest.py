"""Crash consistency of ingest: kill -9 an ingest at random points; the index must stay consistent.

    python benchmarks/crash_ingest.py                    # 200 articles, 8 kills, fake (hashing) embeddings
    python benchmarks/crash_ingest.py --real --articles 30 --kills 3   # the real `qa ingest` CLI and model

A corpus of small JSONL articles (stable ids) is generated in several versions: each version edits some
articles and drops others, so a run adds, updates (stale vectors to delete) and removes. Each round
starts an ingest of the next version in a subprocess and SIGKILLs it after a random delay. After every
kill the index is inspected from another process:

* SQLite `integrity_check` and the FTS5 `integrity-check` pass; every keyword row belongs to a chunk;
* no partial article: each registered article is one of the versions the corpus had, with exactly the
  chunks chunking that version gives (ids, and so count);
* every registered chunk has its vector in Chroma (orphan vectors are allowed until the next run).

Then an ingest runs to completion (it sweeps orphans), and the index must hold exactly the final
version: the right articles and chunks, and Chroma's ids equal to SQLite's chunk ids.

Without --real the ingest is a tiny script that builds the service with tests/fakes.HashingEmbeddings and
calls `svc.ingest_paths([...])` (the model is not what is tested, and it makes each round fast); with
--real it is `qa --data-dir D ingest FILES` as a user runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"

_CHARS = ("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说"
          "产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点"
          "从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又")


def _sentence(rnd: random.Random) -> str:
    return "".join(rnd.choice(_CHARS) for _ in range(rnd.randint(12, 60))) + "。"


def corpus_version(n_articles: int, version: int, files: int = 4, seed: int = 42) -> dict[str, list[dict]]:
    """{file name: [JSONL records]} for one version. Stable ids; some edited, some dropped per version."""
    out: dict[str, list[dict]] = {f"corpus-{i}.jsonl": [] for i in range(files)}
    for n in range(n_articles):
        if version and (n + version) % 11 == 0:
            continue  # dropped in this version: the re-ingest removes it
        edit = version if (n + version) % 3 == 0 else 0  # edited in this version: new text, same id
        rnd = random.Random(f"{seed}-{n}-{edit}")
        paragraphs = ["".join(_sentence(rnd) for _ in range(rnd.randint(1, 5))) for _ in range(rnd.randint(1, 5))]
        out[f"corpus-{n % files}.jsonl"].append({
            "id": f"art-{n:04d}", "title": f"第{n}号新闻：" + _sentence(rnd)[:12], "text": "\n".join(paragraphs)})
    return out


def write_corpus(folder: Path, n_articles: int, version: int, files: int = 4) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, records in corpus_version(n_articles, version, files).items():
        p = folder / name
        p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        paths.append(p)
    return paths


def expected_records(paths: list[Path], chunk_size: int = 300, overlap: int = 1) -> dict[str, tuple[str, list[str]]]:
    """{article id: (content hash, chunk ids)} that ingesting these files must give."""
    sys.path.insert(0, str(REPO))
    from qa.articles import to_records
    from qa.ingest.readers import read_file

    out = {}
    for p in paths:
        for article, chunks in to_records(p.name, read_file(p).articles, chunk_size=chunk_size, overlap=overlap):
            out[article.id] = (article.content_hash, [c.id for c in chunks])
    return out


def chunking_settings() -> tuple[int, int]:
    sys.path.insert(0, str(REPO))
    from qa.settings import Settings

    s = Settings()
    return s.chunk_size, s.chunk_overlap_sentences


# -- the ingest under test --------------------------------------------------------------------------
HASHING_INGEST = f"""
import json, sys
from pathlib import Path
sys.path.insert(0, {str(REPO / "tests")!r})
from fakes import HashingEmbeddings
from qa.components import build_service
from qa.settings import Settings
svc = build_service(Settings(data_dir=Path(sys.argv[1])), embeddings=HashingEmbeddings())
# Small embedding batches interleave the phases (embed, add vectors, commit articles, drop stale
# vectors) all through the run, so a kill at a random moment can land in any of them.
svc.index.embed_batch_chunks = 24
print("ready", flush=True)
report = svc.ingest_paths([Path(p) for p in sys.argv[2:]],
                          on_file=lambda fr, err: print("file", fr.source if fr else err, flush=True))
print("done", json.dumps({{"ok": report.ok, "added": report.total("added"), "updated": report.total("updated"),
                          "removed": report.total("removed")}}), flush=True)
"""

# Inspects an index from its own process (the one that wrote it is dead) and prints JSON.
CHECK_INDEX = """
import json, sqlite3, sys
from pathlib import Path
d = Path(sys.argv[1])
out = {"articles": {}, "chunks": {}, "problems": [], "chroma_ids": None}
db = sqlite3.connect(d / "registry.sqlite3", timeout=30)
out["integrity"] = [r[0] for r in db.execute("PRAGMA integrity_check")]
try:
    db.execute("INSERT INTO chunk_terms(chunk_terms) VALUES ('integrity-check')")
    out["fts_integrity"] = "ok"
except sqlite3.DatabaseError as exc:
    out["fts_integrity"] = str(exc)
for aid, h in db.execute("SELECT id, content_hash FROM articles"):
    out["articles"][aid] = h
for cid, aid in db.execute("SELECT id, article_id FROM chunks ORDER BY article_id, ordinal"):
    out["chunks"].setdefault(aid, []).append(cid)
orphan_rows = db.execute("SELECT COUNT(*) FROM chunks WHERE article_id NOT IN (SELECT id FROM articles)").fetchone()[0]
if orphan_rows:
    out["problems"].append(f"{orphan_rows} chunk rows belong to no article")
stray_terms = db.execute("SELECT COUNT(*) FROM chunk_terms WHERE rowid NOT IN (SELECT rowid FROM chunks)").fetchone()[0]
missing_terms = db.execute("SELECT COUNT(*) FROM chunks WHERE rowid NOT IN (SELECT rowid FROM chunk_terms)").fetchone()[0]
if stray_terms or missing_terms:
    out["problems"].append(f"keyword index: {stray_terms} rows of no chunk, {missing_terms} chunks without a row")
db.close()
import chromadb
from chromadb.config import Settings as ChromaSettings
client = chromadb.PersistentClient(path=str(d / "chroma"), settings=ChromaSettings(anonymized_telemetry=False))
names = {getattr(c, "name", c) for c in client.list_collections()}
if "news" in names:
    col = client.get_collection("news")
    ids, offset = [], 0
    while True:
        got = col.get(include=[], limit=5000, offset=offset)["ids"]
        ids += got
        if len(got) < 5000:
            break
        offset += 5000
    out["chroma_ids"] = ids
print(json.dumps(out))
"""


def inspect_index(data_dir: Path, timeout: float = 120) -> dict:
    r = subprocess.run([sys.executable, "-c", CHECK_INDEX, str(data_dir)], cwd=REPO, capture_output=True,
                       text=True, timeout=timeout, env=_env())
    if r.returncode != 0:
        raise RuntimeError(f"inspecting {data_dir} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def check_consistent(state: dict, versions: dict[str, set[tuple[str, tuple[str, ...]]]]) -> list[str]:
    """What is wrong with an index that an ingest may have been killed in the middle of writing."""
    problems = list(state["problems"])
    if state["integrity"] != ["ok"]:
        problems.append(f"SQLite integrity_check: {state['integrity'][:5]}")
    if state["fts_integrity"] != "ok":
        problems.append(f"FTS5 integrity-check: {state['fts_integrity']}")
    for aid, h in state["articles"].items():
        chunks = tuple(state["chunks"].get(aid, []))
        known = versions.get(aid, set())
        if not any(h == vh for vh, _ in known):
            problems.append(f"{aid}: content hash {h} is no version of it")
        elif (h, chunks) not in known:
            want = next(len(c) for vh, c in known if vh == h)
            problems.append(f"{aid}: partial article: {len(chunks)} chunks registered, chunking gives {want}")
    for aid in state["chunks"]:
        if aid not in state["articles"]:
            problems.append(f"chunks of unregistered article {aid}")
    registered = {c for cs in state["chunks"].values() for c in cs}
    chroma = set(state["chroma_ids"] or [])
    missing = registered - chroma
    if missing:
        problems.append(f"{len(missing)} registered chunks have no vector in Chroma")
    return problems


def check_complete(state: dict, expected: dict[str, tuple[str, list[str]]]) -> list[str]:
    """What is wrong with an index after an ingest of `expected` ran to completion."""
    problems = check_consistent(state, {a: {(h, tuple(c))} for a, (h, c) in expected.items()})
    if set(state["articles"]) != set(expected):
        extra, missing = set(state["articles"]) - set(expected), set(expected) - set(state["articles"])
        problems.append(f"articles: {len(missing)} missing, {len(extra)} that should be gone")
    registered = {c for cs in state["chunks"].values() for c in cs}
    want_chunks = {c for _, cs in expected.values() for c in cs}
    if registered != want_chunks:
        problems.append(f"chunks: {len(registered)} registered, {len(want_chunks)} expected")
    chroma = set(state["chroma_ids"] or [])
    if chroma != registered:
        problems.append(f"Chroma ids != SQLite chunk ids: {len(chroma - registered)} orphan vectors, "
                        f"{len(registered - chroma)} missing")
    return problems


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False",
                "PYTHONUNBUFFERED": "1"})
    if os.environ.get("QA_MODEL_CACHE_DIR"):
        env["QA_MODEL_CACHE_DIR"] = os.environ["QA_MODEL_CACHE_DIR"]
    return env


def ingest_command(data_dir: Path, paths: list[Path], real: bool) -> list[str]:
    if real:
        qa = Path(sys.executable).parent / "qa"  # the console script a user runs
        cmd = [str(qa)] if qa.exists() else [sys.executable, "-m", "qa.cli"]
        return [*cmd, "--data-dir", str(data_dir), "ingest", *map(str, paths)]
    return [sys.executable, "-c", HASHING_INGEST, str(data_dir), *map(str, paths)]


def run_ingest(data_dir: Path, paths: list[Path], real: bool, timeout: float = 300) -> subprocess.CompletedProcess:
    r = subprocess.run(ingest_command(data_dir, paths, real), cwd=REPO, capture_output=True, text=True,
                       timeout=timeout, env=_env())
    if r.returncode != 0:
        raise RuntimeError(f"ingest failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return r


def time_ingest(data_dir: Path, paths: list[Path], timeout: float = 300) -> float:
    """Seconds from "ready" (service built) to "done" for the hashing ingest."""
    proc = subprocess.Popen(ingest_command(data_dir, paths, False), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=_env())
    t0 = None
    try:
        for line in proc.stdout:
            if line.startswith("ready"):
                t0 = time.perf_counter()
            elif line.startswith("done"):
                break
        took = time.perf_counter() - t0 if t0 is not None else None
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    if proc.returncode != 0 or took is None:
        raise RuntimeError(f"the calibration ingest failed ({proc.returncode})")
    return took


def kill_ingest(data_dir: Path, paths: list[Path], real: bool, delay: float, after_lines: int = 1,
                timeout: float = 300) -> dict:
    """Start an ingest, wait until it has printed `after_lines` lines (\"ready\", or a file done), then
    `delay` seconds more, then SIGKILL it. Returns what happened."""
    proc = subprocess.Popen(ingest_command(data_dir, paths, real), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=_env(), start_new_session=True)
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        while len(lines) < after_lines and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
        time.sleep(delay)
        finished = proc.poll() is not None
        if not finished:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    rest = proc.stdout.read() if proc.stdout else ""
    proc.stdout.close()
    return {"delay": round(delay, 3), "killed": not finished, "lines": lines + rest.split("\n")[:-1],
            "returncode": proc.returncode}


def crash_rounds(workdir: Path, n_articles: int, kills: int, real: bool = False, seed: int = 0,
                 files: int = 4, log=print) -> dict:
    """The whole experiment. Returns a report; `report["problems"]` must be empty."""
    rnd = random.Random(seed)
    data_dir = workdir / "index"
    chunk_size, overlap = chunking_settings()
    corpora = {v: write_corpus(workdir / f"v{v}", n_articles, v, files) for v in range(3)}
    expected = {v: expected_records(paths, chunk_size, overlap) for v, paths in corpora.items()}
    versions: dict[str, set] = {}
    for exp in expected.values():
        for aid, (h, chunks) in exp.items():
            versions.setdefault(aid, set()).add((h, tuple(chunks)))

    full = None
    if not real:
        # Calibrate: how long a whole ingest of version 0 takes once started (on a scratch index).
        full = time_ingest(workdir / "calibrate", corpora[0])
        log(f"a full ingest of {n_articles} articles takes {full:.1f}s after start-up")

    report: dict = {"articles": n_articles, "real": real, "full_ingest_seconds": full and round(full, 2), "rounds": [],
                    "problems": []}
    for k in range(kills):
        version = k % 3
        if real:
            # The CLI prints a line per finished file; kill after some file, somewhere inside the next.
            after = rnd.randint(1, max(1, files - 1))
            delay = rnd.uniform(0, 1.5)
        else:
            after, delay = 1, rnd.uniform(0, full)  # after "ready": somewhere inside the ingest
        what = kill_ingest(data_dir, corpora[version], real, delay, after_lines=after)
        state = inspect_index(data_dir)
        problems = check_consistent(state, versions)
        registered = sum(len(c) for c in state["chunks"].values())
        orphans = len(set(state["chroma_ids"] or []) - {c for cs in state["chunks"].values() for c in cs})
        round_ = {"round": k + 1, "version": version, **what, "articles": len(state["articles"]),
                  "chunks": registered, "orphan_vectors": orphans, "problems": problems}
        del round_["lines"]
        report["rounds"].append(round_)
        log(f"kill {k + 1}: v{version} after {what['lines'][-1:] or ['-']} + {delay:.2f}s, "
            f"{'killed' if what['killed'] else 'had finished'}; {len(state['articles'])} articles, {registered} "
            f"chunks, {orphans} orphan vectors; {'OK' if not problems else problems[:3]}")
        report["problems"] += [f"after kill {k + 1}: {p}" for p in problems]

    final = 2
    run_ingest(data_dir, corpora[final], real)
    state = inspect_index(data_dir)
    problems = check_complete(state, expected[final])
    report["final"] = {"version": final, "articles": len(state["articles"]),
                       "chunks": sum(len(c) for c in state["chunks"].values()),
                       "chroma_ids": len(state["chroma_ids"] or []), "problems": problems}
    log(f"final ingest of v{final}: {report['final']['articles']} articles, {report['final']['chunks']} chunks, "
        f"{report['final']['chroma_ids']} vectors; {'OK' if not problems else problems}")
    report["problems"] += [f"after the final ingest: {p}" for p in problems]
    report["kills_that_landed"] = sum(r["killed"] for r in report["rounds"])
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--articles", type=int, default=200)
    p.add_argument("--kills", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--real", action="store_true", help="the real `qa ingest` CLI and embedding model (slow)")
    p.add_argument("--out", default=str(RESULTS / "crash.json"))
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="qa-crash-") as tmp:
        report = crash_rounds(Path(tmp), args.articles, args.kills, real=args.real, seed=args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    print(f"{report['kills_that_landed']} of {args.kills} kills landed mid-ingest; "
          f"{len(report['problems'])} problems; wrote {out}")
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
