"""Follow-up questions: make a question that leans on the chat history stand on its own, offline.

「汉中市副市长是谁？」 then 「她介绍了哪些监测数据？」: the second names no one, so retrieval on it
alone finds nothing specific. When a question points back (a pronoun or demonstrative) or is too
short to stand alone, the previous question is put in front of it for retrieval and answering.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from qa.errors import BadInputError
from vectorstore.keyword import tokenize

_POINTS_BACK = re.compile(r"(她们|他们|它们|她|他|它|其|该|此|这个|那个|这位|那位|这些|那些|这里|那里|上述|前者|后者|这项|这次|那次|^那|^还有|^另外)")
MAX_HISTORY_MESSAGES = 50
ROLES = ("user", "assistant", "system")


def validate_history(history: object) -> list[dict]:
    if history is None:
        return []
    if not isinstance(history, list):
        raise BadInputError("history must be a list of {role, content} messages")
    if len(history) > MAX_HISTORY_MESSAGES:
        raise BadInputError(f"history is too long ({len(history)} messages; the limit is {MAX_HISTORY_MESSAGES})")
    out = []
    for i, m in enumerate(history):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise BadInputError(f"history[{i}] must be an object with role (user/assistant/system) and string content")
        if any("\ud800" <= ch <= "\udfff" for ch in m["content"]):
            raise BadInputError(f"history[{i}] is not valid Unicode (it has an unpaired surrogate)")
        out.append({"role": m["role"], "content": m["content"]})
    return out


def standalone_question(question: str, history: Sequence[dict]) -> str:
    """The question to search and answer with: itself, or the previous question plus itself."""
    previous = [m["content"].strip() for m in history if m.get("role") == "user" and m.get("content", "").strip()]
    if not previous:
        return question
    if not _POINTS_BACK.search(question) and len(tokenize(question)) > 2:
        return question
    return f"{previous[-1][:300]} {question}"
