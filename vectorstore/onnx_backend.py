"""Run a sentence-transformers model's transformer in ONNX Runtime (fp32 or dynamic int8) or OpenVINO.

Why not ``SentenceTransformer(path, backend="onnx")``: sentence-transformers loads that backend
through ``optimum-onnx``, whose only release (0.1.0) requires ``transformers<4.58`` and
``optimum~=2.1``; it cannot be installed beside transformers 5 (pip downgrades transformers to 4.57
or gives up). So this module does what that backend does, with packages that do install
(``onnxruntime``, ``onnx``), and entirely offline:

* **export** (fp32): ``torch.onnx.export`` of the model's transformer with eager attention, then
  ONNX Runtime's transformer optimizer fuses attention, LayerNorm and GELU for BERT-like models
  (Optimum's "O2"); other architectures keep the plain graph;
* **int8**: ``onnxruntime.quantization.quantize_dynamic`` of that graph: int8 weights per channel
  with ``reduce_range`` (7-bit weights), activations quantized per batch at run time. The 7-bit
  range keeps ONNX Runtime's u8s8 kernels from saturating on CPUs without VNNI (plain AVX2 /
  AVX-512), and costs nothing on VNNI CPUs, so one file gives the same vectors on every x86 CPU;
* **openvino** (optional package): the fp32 export compiled by OpenVINO, which runs it in bf16 on
  CPUs with native bf16 (AVX512_BF16, AMX) and in float32 elsewhere;
* **inference**: the loaded SentenceTransformer keeps its own tokenizer, prompts, pooling and
  normalization; only its transformer module's model is replaced by the runtime's session.

Measurements (benchmarks/embedding_speed.py, 2-core AMD EPYC with AVX-512 VNNI and BF16, CMRC 2018
trial passages): onnx-int8 and openvino embed ~2.1-2.5x the passages per CPU-second of torch fp32,
with the same top-5 gold-answer hit; fp32 onnx ~1.1x. Query embedding: ~7 ms (int8), ~13 ms (fp32 /
openvino) against 33 ms for single-threaded torch and hundreds of ms for two-threaded torch on a
busy machine.

Exports are cached under ``<cache_dir>/onnx/<model>-<variant>-<fingerprint>/``; the fingerprint
covers the source model's files and the export recipe, so a changed model is exported anew. Like
e5_model.py, each export is written to a temporary sibling directory, checked against the torch
model, and renamed into place, so an interrupted export never leaves a directory that looks usable.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from qa.errors import ConfigError
from vectorstore.atomic_dir import install_dir
from vectorstore.filelock import file_lock

logger = logging.getLogger(__name__)

# backend name -> export variant it runs
VARIANTS = {"onnx": "fp32", "onnx-int8": "int8", "openvino": "fp32"}

# Bump whenever the export recipe changes, so stale exports are made again.
EXPORT_VERSION = 1
OPSET = 17
MODEL_FILE = "model.onnx"
MARKER_FILE = "export.json"
OUTPUT = "last_hidden_state"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Architectures whose graph ONNX Runtime's "bert" fusions understand (Optimum maps these the same way).
_BERT_LIKE = {"bert", "roberta", "xlm-roberta", "camembert", "distilbert", "electra"}
# The int8 recipe; it is part of the fingerprint.
_INT8 = {"weight_type": "QInt8", "per_channel": True, "reduce_range": True}
# An export must reproduce the torch model's (mean-pooled) outputs at least this closely.
_MIN_COSINE = {"fp32": 0.9999, "int8": 0.98}
_CHECK_TEXTS = (
    "passage: 国务院新闻办公室今天举行发布会，介绍今年前三季度国民经济运行情况。",
    "query: 泡泡战士是哪家公司开发的？",
    "The quick brown fox jumps over the lazy dog.",
    "passage: 2018年，深圳市全年地区生产总值达24221.98亿元，比上年增长7.6%。",
)


# --------------------------------------------------------------------------- public API


def use_onnx(st, backend: str, source_dir: Path, model_name: str, cache_dir: Path) -> Path:
    """Replace the transformer of the torch-loaded ``st`` by an ONNX Runtime session; return the .onnx file.

    Exports (and caches) the model first if needed. ``source_dir`` is the local folder ``st`` was
    loaded from; it is fingerprinted, never written to.
    """
    variant = VARIANTS[backend]
    transformer = _text_transformer(st, backend)
    try:
        onnx_file = ensure_export(st, variant, Path(source_dir), model_name, Path(cache_dir))
        if backend == "openvino":
            replacement = OvTransformerModel(onnx_file, transformer.model.config)
        else:
            session = make_session(onnx_file)
            # A single question runs on one thread: it is barely slower than on all cores, and it leaves
            # a core to the keyword search that runs beside it (qa/retrieval.py).
            single = make_session(onnx_file, threads=1) if default_threads() > 1 else None
            replacement = OrtTransformerModel(session, transformer.model.config, [i.name for i in session.get_inputs()],
                                              single=single)
    except ConfigError:
        raise
    except Exception as exc:  # an architecture the exporter or a runtime cannot handle
        raise ConfigError(
            f"cannot run embedding model {model_name!r} with backend {backend!r} ({type(exc).__name__}: {exc}); "
            "use QA_EMBEDDING_BACKEND=torch for this model"
        ) from exc
    input_names = replacement.input_names
    transformer.model = replacement
    # Tell the module which features the replacement takes (its forward has no **kwargs).
    transformer._declared_forward_params = {*input_names, "return_dict"}
    transformer.model_forward_params = {*_INPUTS, "return_dict"}
    import gc

    gc.collect()  # the torch weights are no longer referenced
    return onnx_file


def ensure_export(st, variant: str, source_dir: Path, model_name: str, cache_dir: Path) -> Path:
    """The cached export of ``st`` for ``variant``, made now (atomically) if absent."""
    key = _export_key(variant, source_dir)
    target = cache_dir / "onnx" / f"{_slug(model_name)}-{variant}-{key['fingerprint'][:16]}"
    if _is_complete(target, key):
        return target / MODEL_FILE

    source = ensure_export(st, "fp32", source_dir, model_name, cache_dir) if variant == "int8" else None
    target.parent.mkdir(parents=True, exist_ok=True)
    # Processes starting together export once: the others wait for the lock and find it done.
    with file_lock(target.parent):
        if _is_complete(target, key):
            return target / MODEL_FILE
        return _export(st, variant, source, target, key, model_name)


def _export(st, variant: str, source: Path | None, target: Path, key: dict, model_name: str) -> Path:
    logger.info("exporting %s to ONNX (%s) once, into %s", model_name, variant, target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    staging.chmod(0o755)
    try:
        out = staging / MODEL_FILE
        if variant == "fp32":
            _export_fp32(st, out, staging)
        else:
            _quantize_int8(source, out)
        cosine = _check_against_torch(st, out)
        if cosine < _MIN_COSINE[variant]:
            raise ConfigError(
                f"the ONNX export ({variant}) of embedding model {model_name!r} does not reproduce the torch model "
                f"(cosine {cosine:.5f} < {_MIN_COSINE[variant]}); use QA_EMBEDDING_BACKEND=torch for this model"
            )
        marker = {"key": key, "checked_cosine_min": round(cosine, 6), "made_with": _versions()}
        (staging / MARKER_FILE).write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        install_dir(staging, target, lambda d: _is_complete(d, key))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target / MODEL_FILE


SINGLE_MAX_TOKENS = 128  # questions; longer or batched inputs use every core


def make_session(onnx_file: Path, threads: int | None = None):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads or default_threads()
    so.inter_op_num_threads = 1
    # Idle worker threads sleep instead of spinning: the machine is shared (web server, keyword search
    # thread, other processes); measured while choosing this, spinning gave no more passages per CPU-second.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    return ort.InferenceSession(str(onnx_file), so, providers=["CPUExecutionProvider"])


def default_threads() -> int:
    """As many threads as torch uses: one per core this process may run on (OMP_NUM_THREADS wins)."""
    return max(1, torch.get_num_threads())


# --------------------------------------------------------------------------- inference


class OrtTransformerModel(torch.nn.Module):
    """Stands in for a transformers model inside sentence-transformers' Transformer module."""

    def __init__(self, session, config, input_names: list[str], single=None):
        super().__init__()
        self.session = session
        self.single = single  # a one-thread session for one short text
        self.config = config
        self.input_names = list(input_names)
        # sentence-transformers asks the model where it runs; these runtimes run on the CPU.
        self.device = torch.device("cpu")
        self.dtype = torch.float32

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, return_dict: bool = True):
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        feeds = {}
        for name in self.input_names:
            value = given.get(name)
            if value is None:
                if name == "attention_mask":
                    value = torch.ones_like(input_ids)
                elif name == "token_type_ids":
                    value = torch.zeros_like(input_ids)
                else:
                    raise ValueError(f"the ONNX model needs input {name!r}")
            feeds[name] = value.detach().cpu().numpy().astype(np.int64, copy=False)
        return {OUTPUT: torch.from_numpy(self._run(feeds))}

    def _run(self, feeds: dict) -> np.ndarray:
        ids = feeds["input_ids"]
        if self.single is not None and ids.shape[0] == 1 and ids.shape[1] <= SINGLE_MAX_TOKENS:
            return self.single.run([OUTPUT], feeds)[0]
        return self.session.run([OUTPUT], feeds)[0]


class OvTransformerModel(OrtTransformerModel):
    """The fp32 ONNX export compiled by OpenVINO: bf16 inference where the CPU has native bf16
    (AVX512_BF16 / AMX), float32 elsewhere. Callers serialize calls (one infer request)."""

    def __init__(self, onnx_file: Path, config, threads: int | None = None):
        try:
            import openvino as ov
        except ImportError as exc:
            raise ConfigError("embedding backend 'openvino' needs the openvino package (pip install openvino)") from exc
        core = ov.Core()
        precision = "bf16" if "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES") else "f32"
        compiled = core.compile_model(str(onnx_file), "CPU", {
            "INFERENCE_PRECISION_HINT": precision,
            "INFERENCE_NUM_THREADS": threads or default_threads(),
            "PERFORMANCE_HINT": "LATENCY",
        })
        super().__init__(compiled, config, [i.get_any_name() for i in compiled.inputs])
        self.precision = precision
        self._request = compiled.create_infer_request()

    def _run(self, feeds: dict) -> np.ndarray:
        return self._request.infer(feeds)[OUTPUT].copy()


def _text_transformer(st, backend: str):
    """The sentence-transformers Transformer module an ONNX session can stand in for."""
    from sentence_transformers.base.modules.transformer import Transformer

    first = st[0] if len(st) else None
    config = getattr(first, "modality_config", None) or {}
    text = config.get("text") or {}
    output = text.get("method_output_name")
    if (
        not isinstance(first, Transformer)
        or getattr(first, "transformer_task", None) != "feature-extraction"
        or set(config) != {"text"}
        or text.get("method") != "forward"
        or (output if isinstance(output, str) else tuple(output or ())) not in (OUTPUT, (OUTPUT,))
    ):
        raise ConfigError(
            f"embedding backend {backend!r} supports text models whose first module is a transformer "
            f"returning {OUTPUT}; use QA_EMBEDDING_BACKEND=torch for this model"
        )
    return first


# --------------------------------------------------------------------------- export


def _export_fp32(st, out: Path, workdir: Path) -> None:
    hf = st[0].model
    config = hf.config
    features = st.preprocess(["passage: 一个较长的中文句子，用来导出模型。", "query: 短句"])
    names = [n for n in _INPUTS if isinstance(features.get(n), torch.Tensor)]
    if "input_ids" not in names:
        raise ConfigError("the model's tokenizer gives no input_ids; use QA_EMBEDDING_BACKEND=torch")
    if hasattr(hf, "set_attn_implementation"):
        hf.set_attn_implementation("eager")  # the graph ONNX Runtime's attention fusion recognizes
    else:
        config._attn_implementation = "eager"
    hf.eval()

    class _Export(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, *inputs):
            return self.model(**dict(zip(names, inputs)), return_dict=True)[OUTPUT]

    raw = workdir / "raw.onnx"
    axes = {n: {0: "batch", 1: "sequence"} for n in [*names, OUTPUT]}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            # eval(): the exporter restores the wrapper's train/eval mode into the model afterwards
            _Export(hf).eval(), tuple(features[n] for n in names), str(raw), input_names=names,
            output_names=[OUTPUT], dynamic_axes=axes, opset_version=OPSET, do_constant_folding=True, dynamo=False,
        )
    hf.eval()

    if config.model_type in _BERT_LIKE:
        from onnxruntime.transformers import optimizer

        with _quiet_logging():
            fused = optimizer.optimize_model(
                str(raw), model_type="bert", num_heads=int(getattr(config, "num_attention_heads", 0) or 0),
                hidden_size=int(getattr(config, "hidden_size", 0) or 0), use_gpu=False,
            )
            fused.save_model_to_file(str(out))
        raw.unlink()
    else:
        os.replace(raw, out)
    for extra in workdir.iterdir():  # nothing but the model (and no external-data files: < 2 GB)
        if extra.name not in (MODEL_FILE,):
            raise ConfigError(f"unexpected file {extra.name!r} from the ONNX export of a model over 2 GB")


def _quantize_int8(source: Path, out: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet_logging():
        quantize_dynamic(
            str(source), str(out), weight_type=getattr(QuantType, _INT8["weight_type"]),
            per_channel=_INT8["per_channel"], reduce_range=_INT8["reduce_range"],
            # Fused contrib ops (Attention, SkipLayerNormalization) defeat shape inference; they are float.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )


def _check_against_torch(st, onnx_file: Path) -> float:
    """Smallest cosine between torch's and the ONNX model's mean-pooled outputs over a few texts."""
    hf = st[0].model.eval()
    session = make_session(onnx_file)
    names = [i.name for i in session.get_inputs()]
    worst = 1.0
    for text in (list(_CHECK_TEXTS), [_CHECK_TEXTS[0]]):  # padded batch and a single text
        features = st.preprocess(text)
        mask = features["attention_mask"].numpy()[..., None].astype(np.float64)
        with torch.no_grad():
            ref = hf(**{n: features[n] for n in names}, return_dict=True)[OUTPUT].numpy()
        got = session.run([OUTPUT], {n: features[n].numpy().astype(np.int64) for n in names})[0]
        a, b = (ref * mask).sum(1), (got * mask).sum(1)
        cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        worst = min(worst, float(cos.min()))
    return worst


# --------------------------------------------------------------------------- cache


def _export_key(variant: str, source_dir: Path) -> dict:
    recipe = {"export_version": EXPORT_VERSION, "opset": OPSET, "variant": variant}
    if variant == "int8":
        recipe["int8"] = _INT8
    h = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode())
    for path in sorted(source_dir.rglob("*")):
        rel = path.relative_to(source_dir)
        if any(part.startswith(".") for part in rel.parts) or rel.parts[0] in ("onnx", "openvino"):
            continue
        if path.is_file():
            stat = path.stat()
            h.update(f"{rel.as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return {**recipe, "source": str(source_dir.resolve()), "fingerprint": h.hexdigest()}


def _slug(model_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model_name).strip("._-")[-60:] or "model"


def _is_complete(directory: Path, key: dict) -> bool:
    try:
        found = json.loads((directory / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(found, dict) and found.get("key") == key and (directory / MODEL_FILE).is_file()


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "onnx", "onnxruntime", "transformers", "sentence-transformers"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


class _quiet_logging:
    """ONNX Runtime's optimizer and quantizer log advice through the root logger; keep it quiet."""

    def __enter__(self):
        self._level = logging.root.manager.disable
        logging.disable(logging.WARNING)

    def __exit__(self, *exc):
        logging.disable(self._level)
