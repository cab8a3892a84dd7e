# Radio. `make run` serves the app locally; `make test` runs every test.
# Only python3.11 is needed on the machine: the virtualenv is created on first use.
#
# Adding a target that needs the project installed: depend on $(VENV_ML) (runtime + ML
# extras) or $(VENV_ALL) (+ deploy and dev extras) and call $(PY), e.g.
#   train: $(VENV_ML)
#   	$(PY) -m training.cli ...

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
comma := ,

# A patient-data product sends nothing out: no MLflow telemetry, no usage tracking.
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true

# One stamp per set of extras; reinstalled when pyproject.toml changes.
VENV_ML := $(VENV)/.installed-ml
VENV_ALL := $(VENV)/.installed-all

# $(call venv_install,EXTRAS)
define venv_install
	@test -x $(PY) || { $(PYTHON) -m venv $(VENV) && \
	  $(PY) -m pip install --disable-pip-version-check -q --upgrade pip; }
	$(PY) -m pip install --disable-pip-version-check -q -e '.[$(1)]'
	@touch $@
endef

$(VENV_ML): pyproject.toml
	$(call venv_install,ml)

# CI and `make test` install the hash-pinned lock of these extras (deploy/locks/dev.txt,
# Python 3.11 on Linux x86_64; `make lock` regenerates it), the project on top without
# dependencies. LOCKED=0 on another platform resolves from pyproject.toml instead.
LOCK_DEV := deploy/locks/dev.txt
LOCKED ?= 1

$(VENV_ALL): pyproject.toml $(LOCK_DEV)
ifeq ($(LOCKED),1)
	@test -x $(PY) || { $(PYTHON) -m venv $(VENV) && \
	  $(PY) -m pip install --disable-pip-version-check -q --upgrade pip; }
	$(PY) -m pip install --disable-pip-version-check -q --require-hashes -r $(LOCK_DEV)
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -e '.[ml,deploy,dev]'
	@touch $@
else
	$(call venv_install,ml$(comma)deploy$(comma)dev)
endif
	@touch $(VENV_ML)

.PHONY: help venv lock airflow-venv run test train lungs loso loso-frozen bench bench-model bench-drift bench-ood bench-decode bench-load bench-scale bench-pages bench-models screenshots lint

help:  ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

venv: $(VENV_ALL)  ## create/update .venv with every extra

lock:  ## regenerate the hash-pinned locks of every set of extras (deploy/locks/; needs PyPI)
	$(PYTHON) -m deploy.locks

# Airflow 3 in a venv of its own (its pins are not the project's); the DAG tests use it.
AIRFLOW_VENV ?= .venv-airflow
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed

$(AIRFLOW_STAMP): pyproject.toml
	@test -x $(AIRFLOW_VENV)/bin/python || $(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/pip install --disable-pip-version-check -q "apache-airflow==3.3.*" -e '.[serve]'
	@touch $@

airflow-venv: $(AIRFLOW_STAMP)  ## create/update .venv-airflow (Airflow 3 + Radio) for dags/

run: $(VENV_ML)  ## serve the model and the app on 127.0.0.1 (PORT, default 8080)
	RADIO_VENV=$(abspath $(VENV)) bash app/platform/run_local.sh

test: $(VENV_ALL)  ## run the whole test suite (PYTEST_ARGS for extra options)
	$(PY) -m pytest $(PYTEST_ARGS)

DATA ?= ../shared/data

LUNGS := build/lungs/lungs.onnx
# The recipe of the production model, chosen by leave-one-source-out with three seeds
# (make loso-frozen; README's model card): ImageNet EfficientNet-Lite0 features, frozen, and
# a cross-validated linear head, with the unfamiliar-film flag. Version 1's recipe (a CNN
# from scratch: --backbone scratch --schedule plateau cosine) stays available.
RECIPE_ARGS := --backbone lite0-frozen --feature-cache build/features

$(LUNGS): | $(VENV_ML)
	$(PY) -m training.lungs --masks $(DATA)/../lung-masks --out $(dir $(LUNGS))

lungs: $(LUNGS)  ## train the lung segmenter on ../shared/lung-masks (Dice per dataset)

train: $(VENV_ML)  ## retrain on every source (training/sources.py) into mlflow/ (new version; deploy it with python -m lifecycle deploy)
	$(PY) -m training train --data-root $(DATA) --negatives $(DATA)/../not-chest-xray --registry mlflow $(RECIPE_ARGS) $(TRAIN_ARGS)

RECIPES ?= v1 crop strong crop-strong mixup strong-nomix
loso: $(VENV_ML) $(LUNGS)  ## leave-one-source-out for each of RECIPES (build/loso/<recipe>.json)
	for r in $(RECIPES); do $(PY) -m training.loso --recipe $$r --data-root $(DATA) --lungs $(LUNGS) --out build/loso || exit 1; done

loso-frozen: $(VENV_ML)  ## leave-one-source-out of the frozen-backbone recipe, 3 seeds, with/without JSRT normals
	$(PY) -m training.frozen_loso --data-root $(DATA) --cache build/features --out build/loso
	$(PY) -m training.frozen_loso --data-root $(DATA) --cache build/features --out build/loso --extra-source jsrt-adult-normal

bench: $(VENV_ML)  ## reference design vs Radio's path: latency, throughput, memory (prints JSON last)
	$(PY) -m bench.serving

bench-model: $(VENV_ML)  ## shipped model vs pixel baseline per source; epoch time, size, inference ms
	$(PY) -m bench.model

bench-drift: $(VENV_ML)  ## data drift: false alarms per source, power per new source and per shift
	$(PY) -m bench.drift

bench-decode: $(VENV_ML)  ## peak RSS of the worst images Radio accepts, alone and 8 at once
	$(PY) -m bench.decode

bench-load: $(VENV_ML)  ## 8 clients for 60 s on loopback: p50/p95/p99, errors, RSS before/after
	$(PY) -m bench.load

bench-scale: $(VENV_ML)  ## scale-out tier on loopback: req/s with 1 vs 2 model servers, failures when one is killed
	$(PY) -m bench.scale

bench-pages: $(VENV_ML)  ## history and review queue over 10,000 predictions: p50/p95 ms per page, SQL per page
	$(PY) -m bench.pages

bench-models: $(VENV_ML)  ## admin Models page with 10 registered versions under gunicorn: first view, then p50/max
	$(PY) -m bench.models_page

bench-ood: $(VENV_ML)  ## "not a chest X-ray" gate: val false rejections, non-X-ray rejections
	$(PY) -m training.ood_eval --registry mlflow --data $(DATA) --negatives $(DATA)/../not-chest-xray

screenshots: $(VENV_ALL)  ## every page, desktop and 390 px phone, in Chromium (build/screenshots/, not committed)
	$(PY) -m tools.screenshots

lint: $(VENV_ALL)  ## ruff on the Python code
	$(VENV)/bin/ruff check app serving training bench deploy lifecycle dags tests tools
