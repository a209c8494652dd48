"""Cold start: seconds from `python app.py` to the first HTTP 200 on /api/health and on /.

    .venv/bin/python benchmarks/cold_start.py              # first run once, then 3 warm starts
    .venv/bin/python benchmarks/cold_start.py --warm-runs 1

(b) first run: a fresh QA_DATA_DIR and QA_MODEL_CACHE_DIR in a temp dir, so the server must
    materialize the embedding model from the bundled weights and index the default corpus first.
(a) warm start: the same dirs again, now holding the built index and the materialized model.
    /api/health and / do not load the model (it loads on first use), so the time to the first
    answered POST /api/ask is reported too.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, machine_info, print_table, python_exe, ratio, stop_process_group, write_result  # noqa: E402

QUESTION = "上海流程智造科技创新研究院院长是谁？"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_once(data_dir: Path, model_dir: Path, log_path: Path, timeout: float, ask: bool) -> dict:
    import httpx

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env.update({"QA_DATA_DIR": str(data_dir), "QA_MODEL_CACHE_DIR": str(model_dir), "QA_PORT": str(port),
                "QA_HOST": "127.0.0.1", "QA_ANSWERER": "extractive"})
    if "QA_EMBEDDING_BACKEND" in os.environ:
        env["QA_EMBEDDING_BACKEND"] = os.environ["QA_EMBEDDING_BACKEND"]
    base = f"http://127.0.0.1:{port}"
    out: dict = {}
    with open(log_path, "w") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen([python_exe(), "app.py"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            with httpx.Client(base_url=base, timeout=10) as c:
                for key, path in (("health_s", "/api/health"), ("root_s", "/")):
                    while True:
                        if proc.poll() is not None:
                            raise RuntimeError(f"the server exited with {proc.returncode}; see {log_path}")
                        try:
                            if c.get(path).status_code == 200:
                                out[key] = round(time.perf_counter() - t0, 2)
                                break
                        except httpx.HTTPError:
                            pass
                        if time.perf_counter() - t0 > timeout:
                            raise RuntimeError(f"no 200 on {path} within {timeout} s; see {log_path}")
                        time.sleep(0.05)
                if ask:
                    r = c.post("/api/ask", json={"question": QUESTION}, timeout=timeout)
                    assert r.status_code == 200, r.text[:200]
                    out["first_ask_s"] = round(time.perf_counter() - t0, 2)
                    out["first_answer"] = r.json()["answer"][:60]
                out["passages"] = c.get("/api/health").json().get("passages")
        finally:
            stop_process_group(proc)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--warm-runs", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--out", default="cold_start")
    args = ap.parse_args(argv)

    info = machine_info()
    tmp = Path(tempfile.mkdtemp(prefix="qa-bench-cold-"))
    data, models = tmp / "index", tmp / "models"
    try:
        print("(b) first run: materialize the model, index the default corpus, serve …", flush=True)
        first = start_once(data, models, tmp / "first.log", args.timeout, ask=True)
        print(f"    {first}", flush=True)
        warm = []
        for i in range(args.warm_runs):
            print(f"(a) warm start {i + 1}/{args.warm_runs} …", flush=True)
            warm.append(start_once(data, models, tmp / f"warm{i}.log", args.timeout, ask=True))
            print(f"    {warm[-1]}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def med(key):
        return round(statistics.median(w[key] for w in warm), 2)

    result = {
        "benchmark": "cold_start",
        "command": "python app.py (QA_DATA_DIR, QA_MODEL_CACHE_DIR in a fresh temp dir)",
        "warm": {"runs": warm, "health_s": med("health_s"), "root_s": med("root_s"),
                 "first_ask_s": med("first_ask_s")},
        "first_run": first,
        "ratio_first_run_over_warm_health": ratio(first["health_s"], med("health_s")),
        "machine": info,
    }
    path = write_result(args.out, result)
    print()
    print_table(
        [
            ("(a) warm: index built, model materialized", med("health_s"), med("root_s"), med("first_ask_s")),
            ("(b) first run: materialize + index default corpus", first["health_s"], first["root_s"],
             first["first_ask_s"]),
        ],
        ("start", "/api/health 200 s", "/ 200 s", "first /api/ask 200 s"),
    )
    print(f"\nfirst run / warm (health): {result['ratio_first_run_over_warm_health']}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
