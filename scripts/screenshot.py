"""Take docs/screenshot.png: the chat page answering 「汉中市副市长是谁？」 with the cited source open.

    .venv/bin/python scripts/screenshot.py [--out docs/screenshot.png]

Indexes the default corpus into a temporary folder (your data/index is not touched), starts the app
on 127.0.0.1, and drives Debian's Chromium (`apt-get install -y chromium fonts-wqy-microhei`).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

QUESTION = "汉中市副市长是谁？"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def make_app(settings, service):
    if importlib.util.find_spec("qa.web.app") is not None:
        from qa.web.app import create_app

        return create_app(settings=settings, service=service)
    import gradio as gr
    from fastapi import FastAPI

    from qa.web.ui import build_ui

    return gr.mount_gradio_app(FastAPI(), build_ui(service, settings), path="/")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(REPO / "docs" / "screenshot.png"))
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=900)
    args = p.parse_args()

    chromium = shutil.which("chromium")
    if not chromium:
        print("error: chromium is not installed (apt-get install -y chromium fonts-wqy-microhei)", file=sys.stderr)
        return 1

    import uvicorn
    from playwright.sync_api import expect, sync_playwright

    from qa.components import build_service
    from qa.settings import Settings

    with tempfile.TemporaryDirectory(prefix="qa-screenshot-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "index")
        service = build_service(settings)
        print(f"indexing {settings.corpus_dir} …")
        report = service.ingest_paths([settings.corpus_dir])
        if report.errors:
            print("\n".join(f"error: {e}" for e in report.errors), file=sys.stderr)

        port = free_port()
        server = uvicorn.Server(uvicorn.Config(make_app(settings, service), host="127.0.0.1", port=port,
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            if not thread.is_alive():
                print("error: the app did not start", file=sys.stderr)
                return 1
            time.sleep(0.05)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": args.width, "height": args.height}, locale="zh-CN")
                page.set_default_timeout(90_000)
                page.goto(f"http://127.0.0.1:{port}/", wait_until="load")
                box = page.locator("#question textarea")
                box.fill(QUESTION)
                page.locator("#send").click()
                expect(page.locator("#chat .qa-answer:not(.qa-streaming)")).to_have_count(1, timeout=90_000)
                page.locator("#sources .qa-source button.qa-open").first.click()
                expect(page.locator("#article-view mark.cited").first).to_be_visible()
                page.mouse.move(0, 0)
                page.wait_for_timeout(600)  # let the scroll to the highlight settle
                out = Path(args.out)
                out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(out))
                browser.close()
        finally:
            server.should_exit = True
            thread.join(15)
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
