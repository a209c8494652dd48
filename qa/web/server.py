"""Start the web app: index the default corpus if the index is empty, then serve page and APIs."""

from __future__ import annotations

import logging
import sys
import threading

from qa.settings import Settings


def serve(settings: Settings) -> int:
    import uvicorn

    from qa.components import build_service
    from qa.web.app import create_app

    service = build_service(settings)
    if service.is_empty():
        print(f"building the index of {settings.corpus_dir} …", flush=True)
        report = service.ingest_paths([settings.corpus_dir])
        for problem in report.errors + [p for f in report.files for p in f.problems]:
            print(f"error: {problem}", file=sys.stderr)
        print(f"indexed {service.index.docs.count_articles()} articles, "
              f"{service.index.docs.count_chunks()} passages", flush=True)
    app = create_app(settings, service)
    # Load the model while the server starts answering, so the first question is not the slow one.
    threading.Thread(target=_warm_up, args=(service,), daemon=True, name="warm-up").start()
    shown = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    url = f"http://{shown}:{settings.port}/"
    print(f"NewsQA is running at {url}  (API docs: {url}docs)", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")
    return 0


def _warm_up(service) -> None:
    try:
        service.warm_up()
    except Exception as exc:  # a failure here shows up again, clearly, on the first real request
        logging.getLogger(__name__).warning("warm-up failed: %s", exc)
