# Two commands for a fresh machine:  `make run`  and  `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export HF_HUB_OFFLINE ?= 1
export GRADIO_ANALYTICS_ENABLED ?= False
export ANONYMIZED_TELEMETRY ?= False

.PHONY: setup run test eval bench-embeddings clean-index

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch is pinned in pyproject to the CPU build; install it first so nothing drags in CUDA wheels.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/python app.py

test: setup
	$(BIN)/python -m pytest -q

# Reproduces the CMRC 2018 trial numbers in the README (builds a separate index the first time).
eval: setup
	$(BIN)/qa --data-dir data/eval-cmrc eval --questions benchmarks/data/cmrc_trial_questions.jsonl \
		--articles benchmarks/data/cmrc_trial_articles.jsonl
	$(BIN)/python benchmarks/cmrc_abstention.py

# Embedding backends (torch / onnx / onnx-int8 / openvino if installed): speed and CMRC retrieval, one process.
bench-embeddings: setup
	$(BIN)/python benchmarks/embedding_speed.py

clean-index:
	rm -rf data/index
