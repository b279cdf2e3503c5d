# Two commands on a fresh machine: `make train` and `make test`. Each installs first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install train test bench lint report data clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --editable '.[test]'
	touch $@

install: $(STAMP)

train: install  ## train and test on the default (embedded synthetic) dataset
	$(BIN)/python train.py $(ARGS)

test: install  ## the whole test suite (real Ped2 tests run when ../shared/data is present)
	$(BIN)/python -m pytest $(ARGS)

bench: install  ## parameter count, training volumes/s and test frames/s on this machine
	$(BIN)/python -m anomaly.bench $(ARGS)

report: install  ## tables of every results.json under DIRS (default: outputs): make report DIRS=outputs/train/multirun/<sweep>
	$(BIN)/python -m anomaly.reporting $(or $(DIRS),outputs) $(ARGS)

data: install  ## fetch a public dataset: make data DATASET=ped2 (ped1, ped2, avenue)
	$(BIN)/python -m anomaly.data.download $(or $(DATASET),$(error set DATASET=ped1, ped2 or avenue))

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) outputs multirun wandb
