"""Tokens for keyword search: jieba search mode over simplified, half-width, lower-case text.

Documents and queries go through the same function, so traditional and simplified characters,
full-width and half-width forms match each other.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import unicodedata
from functools import lru_cache

_jieba_lock = threading.Lock()

# Function words and question words that carry no topic. Kept short on purpose: BM25's IDF
# already damps frequent words; these are the ones that hurt when a question is short.
STOPWORDS = frozenset(
    "的 了 是 在 和 与 及 或 也 都 就 而 并 被 把 将 对 为 以 于 从 由 之 其 这 那 该 此 个 中 上 下 等 "
    "吗 呢 吧 啊 么 什么 谁 哪 哪里 哪个 哪些 哪儿 几 多少 怎么 怎样 如何 为何 为什么 何时 何地 是否 "
    "有 没有 一 一个 了吗 请问 呀 我 你 您 他 她 它 我们 你们 他们 她们 它们".split()
)


@lru_cache(maxsize=1)
def _jieba():
    with _jieba_lock:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        # jieba writes its dictionary cache to the temp dir; make that explicit and quiet.
        jieba.dt.tmp_dir = tempfile.gettempdir()
        jieba.initialize()
        return jieba


def normalize(text: str) -> str:
    import zhconv

    text = unicodedata.normalize("NFKC", text)
    return zhconv.convert(text, "zh-hans").lower()


def tokenize(text: str, *, drop_stopwords: bool = True) -> list[str]:
    """Search-mode tokens: 「汉中市副市长」 gives 汉中, 中市, 汉中市, 副市长 … so compounds match parts."""
    jieba = _jieba()
    out = []
    for tok in jieba.lcut_for_search(normalize(text)):
        tok = "".join(ch for ch in tok if ch.isalnum())
        if not tok or (drop_stopwords and tok in STOPWORDS):
            continue
        out.append(tok)
    return out


_NAME_TAGS = frozenset({"nr", "nrfg", "nrt", "ns", "nt", "nz", "j"})


def is_name_like(token: str) -> bool:
    """A proper noun, an abbreviation, a word jieba's dictionary does not know, or a Latin/digit token.

    These are what a question is *about* (北京, 罗保铭, AGG01); common words (数据, 主席) are not.
    """
    _jieba()
    import jieba.posseg as pseg

    if any(ch.isascii() and ch.isalnum() for ch in token):
        return True
    tag = pseg.dt.word_tag_tab.get(token)
    return tag is None or tag in _NAME_TAGS
