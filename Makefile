# toolqual: two commands do everything on a fresh clone.
#   make reports   create .venv, install, run the main job on the bundled data, write reports/
#   make test      create .venv if needed, install the browser, run every test
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: reports test venv browser bench clean data

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (toolqual)" >/dev/null
	touch $(STAMP)

venv: $(STAMP)

browser:
	bash scripts/install_browser.sh

reports: $(STAMP)
	$(VENV)/bin/toolqual report --out reports/

test: $(STAMP) browser
	$(PY) -m pytest -ra

data: $(STAMP)
	bash scripts/build_bundled_data.sh

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) reports/*.html
