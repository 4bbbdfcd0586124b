# Two commands on a fresh machine: `make run` and `make test`.
# In an environment that already has torch (a Kaggle Notebook, a GPU box), add `VENV=` to any
# target: segpipe is installed into that environment instead, keeping its torch (docs/install.md).
PYTHON ?= python3.11
VENV ?= .venv

ifeq ($(strip $(VENV)),)
# The running environment, within pyproject.toml's ranges; what it has of KEEP is pinned as it is.
KEEP := torch torchvision torchaudio numpy pandas opencv-python opencv-python-headless opencv-contrib-python
PY := $(shell command -v python3 || command -v python)
STAMP := .installed-here
INSTALL := $(PY) stages/installed_pins.py $(KEEP) > .installed-pins.txt \
	&& $(PY) -m pip install --quiet -c .installed-pins.txt -e '.[test]'
DVC := $(PY) -m dvc
RUN := $(PY)
else
# A virtualenv with the exact lock (requirements.txt), as CI runs.
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
INSTALL := (test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)) && $(BIN)/pip install --quiet --upgrade pip \
	&& $(BIN)/pip install --quiet -r requirements.txt -e '.[test]'
# the stage commands call `python`: the virtualenv's first on PATH
DVC := PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc
RUN := PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python
endif

.PHONY: install run test bench clean submit bundle

install: $(STAMP)

# Reinstall whenever the pinned requirements or the package metadata change.
$(STAMP): requirements.txt pyproject.toml
	$(INSTALL)
	touch $@

# First the source is indexed and the device described again (DVC sees neither a file changed in place
# nor new hardware; unchanged, they rerun nothing after them). After the run, link outputs to the cache:
# DVC leaves the files inside directory outputs (data/raw, data/prepared) as second copies (iterative/dvc#10549).
run: $(STAMP)
	$(DVC) repro -f -s source device
	$(DVC) repro
	$(DVC) checkout --relink --quiet

test: $(STAMP)
	$(RUN) -m pytest -q

bench: $(STAMP)
	@for script in bench/bench_*.py; do echo "== $$script"; $(RUN) $$script || exit 1; done

# The offline inference bundle for a code competition (docs/code-competitions.md): the bundle
# stage, then the wheels the notebook lacks (these need the package index).
bundle: $(STAMP)
	$(DVC) repro bundle
	$(RUN) stages/bundle_wheels.py --bundle bundle

clean:
	rm -rf $(VENV) .installed-here .installed-pins.txt

# Submit submissions/submit.csv.gz to Kaggle (competitions only); MESSAGE defaults to the
# git commit and CV Dice from metrics/cv.json.
submit: $(STAMP)
	$(RUN) stages/kaggle_submit.py $(if $(MESSAGE),--message "$(MESSAGE)")
