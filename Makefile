# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test bench clean submit bundle

install: $(STAMP)

# Reinstall whenever the pinned requirements or the package metadata change.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -e '.[test]'
	touch $@

# After the run, link outputs to the cache: DVC leaves the files inside directory outputs
# (data/raw, data/prepared) as second copies (iterative/dvc#10549).
run: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc checkout --relink --quiet

test: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q

bench: $(STAMP)
	@for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

# The offline inference bundle for a code competition (docs/code-competitions.md): the bundle
# stage, then the wheels the notebook lacks (these need the package index).
bundle: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro bundle
	$(BIN)/python stages/bundle_wheels.py --bundle bundle

clean:
	rm -rf $(VENV)

# Submit submissions/submit.csv.gz to Kaggle (competitions only); MESSAGE defaults to the
# git commit and CV Dice from metrics/cv.json.
submit: $(STAMP)
	$(BIN)/python stages/kaggle_submit.py $(if $(MESSAGE),--message "$(MESSAGE)")
