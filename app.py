"""`python app.py`: index the default corpus if the index is empty, then serve the chat page and the APIs.

Settings come from QA_* environment variables (see qa/settings.py): QA_HOST, QA_PORT, QA_API_KEY, …
"""

from __future__ import annotations

import os
import sys

# Before anything imports gradio, chromadb or huggingface_hub: offline, no analytics, no telemetry.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def main() -> int:
    from qa.errors import QAError
    from qa.settings import load_settings
    from qa.web.server import serve

    try:
        return serve(load_settings())
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
