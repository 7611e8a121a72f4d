# The two commands of the README:
#   make reproduce   set up, then run every notebook with papermill (PROFILE=cpu|tiny|full, FROM=NN to resume)
#   make test        set up, then pytest over the package (notebook 08 in Chromium included) and nbval over the notebooks (tiny profile)
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= cpu
FROM ?=

# Nothing may wait on the network: every model comes from an installed package or a local path.
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_HUB_DISABLE_TELEMETRY := 1
export YOLO_OFFLINE ?= 1
export YOLO_AUTOINSTALL ?= false
export YOLO_CONFIG_DIR ?= $(CURDIR)/.cache/ultralytics
export MPLCONFIGDIR ?= $(CURDIR)/.cache/matplotlib
export HF_HOME ?= $(CURDIR)/.cache/huggingface
export TORCH_HOME ?= $(CURDIR)/.cache/torch
# On the team's machines and in CI the data sit in ../shared/data/mnre; elsewhere set VMHAN_DATA
# or run `make download` (which fills data/mnre).
ifeq ($(origin VMHAN_DATA), undefined)
ifneq ($(wildcard ../shared/data/mnre/text),)
export VMHAN_DATA := $(abspath ../shared/data/mnre)
endif
endif

.PHONY: setup reproduce test download lab

setup:
	@bash scripts/setup.sh

reproduce: setup
	$(PY) -m vmhan_lib reproduce --profile $(PROFILE) $(if $(FROM),--from $(FROM))

test: setup
	VMHAN_PROFILE=tiny $(PY) -m pytest -q tests
	VMHAN_PROFILE=tiny $(PY) -m pytest -q --nbval-lax --nbval-current-env -p no:cacheprovider notebooks

download: setup
	$(PY) -m vmhan_lib download

lab: setup
	$(VENV)/bin/jupyter lab --allow-root notebooks
