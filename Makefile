# toolqual: two commands do everything on a fresh clone.
#   make reports   create .venv, install, run the main job on the bundled data, write reports/
#   make test      create .venv if needed, install the browser, run every test (what CI runs)
#   make test-fast the edit-test loop: no browser, no notebook renders, no large inputs
#   make compiled  compile the checks with mypyc (make test and make bench do it first; a no-op when current)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: reports test test-fast venv browser compiled bench clean data

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (toolqual)" >/dev/null
	touch $(STAMP)

venv: $(STAMP)

browser:
	bash scripts/install_browser.sh

compiled: $(STAMP)
	PY=$(abspath $(PY)) bash scripts/install_compiler.sh
	$(VENV)/bin/toolqual compile

reports: $(STAMP)
	$(VENV)/bin/toolqual report --out reports/

test: $(STAMP) browser compiled
	$(PY) -m pytest -ra

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not browser and not slow"

data: $(STAMP)
	PY=$(abspath $(PY)) bash scripts/build_bundled_data.sh
	PY=$(abspath $(PY)) bash scripts/import_judge_runs.sh

bench: $(STAMP) compiled
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) reports/*.html toolqual_utils/_compiled
