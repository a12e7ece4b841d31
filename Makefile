# Two commands for a fresh machine:  make book  and  make test.
# Everything runs inside .venv, created and filled on first use (scripts/make-venv.sh).
#
#   PYTHON=python3.12  the interpreter that creates .venv (3.11, 3.12 or 3.13; checked first)
#   TORCH=cuda         PyPI's default torch wheel, the CUDA build on Linux; the default,
#                      TORCH=cpu, takes PyTorch's CPU-only wheel on Linux. macOS's wheel
#                      is CPU/MPS either way. Switching rebuilds torch in the existing .venv.
#
# Parallel runs (make -j4 test) are safe: every target names what it needs.

PYTHON ?= python3
TORCH  ?= cpu
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
VENV   := .venv
BIN    := $(VENV)/bin
# Named by the torch build, so that TORCH=cuda after TORCH=cpu reinstalls torch.
STAMP  := $(VENV)/.installed-torch-$(TORCH)
W7     := $(VENV)/widgets7
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))

.PHONY: book test lint unit widgets7 nbval site-test execute lab clean env chromium

book: $(STAMP)
	@rm -rf _build/html  # no stale pages from earlier builds
	@start=$$(date +%s); \
	$(BIN)/jupyter-book build . -W -n --keep-going --path-output . || exit 1; \
	echo "Built in $$(( $$(date +%s) - start )) s. Open $(CURDIR)/_build/html/index.html"

test: $(STAMP) chromium lint unit widgets7 nbval book site-test
	@echo "make test: all stages passed"

env: $(STAMP)

$(STAMP): requirements.txt constraints.txt pyproject.toml scripts/make-venv.sh
	@PYTHON="$(PYTHON)" TORCH="$(TORCH)" TORCH_CPU_INDEX="$(TORCH_CPU_INDEX)" \
	    bash scripts/make-venv.sh $(VENV)
	@rm -f $(VENV)/.installed $(VENV)/.installed-torch-*
	@touch $@

# ipywidgets 7.7.1 is what Colab ships: the widget tests run a second time with it
# laid over the main environment (PYTHONPATH), so both major versions are tested.
# (Made afresh: pip install --target keeps what is already there.)
$(W7)/.installed: $(STAMP) constraints-widgets7.txt
	@rm -rf $(W7)
	$(BIN)/python -m pip install --quiet --no-deps --target $(W7) -r constraints-widgets7.txt
	@touch $@

chromium:
	@bash scripts/ensure-chromium.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check $(wildcard src tests scripts bench notebooks)

unit: $(STAMP)
	$(BIN)/python -m pytest -m "not browser" -q

widgets7: $(W7)/.installed
	PYTHONPATH=$(CURDIR)/$(W7) $(BIN)/python -m pytest -m widgets7 -q -p no:cacheprovider

nbval: $(STAMP)
	@mkdir -p _build/test-cache && rm -f _build/test-cache/progress.json
	LESSONS_PROGRESS_FILE=$(CURDIR)/_build/test-cache/progress.json \
	    LESSONS_DATA_DIR=$(CURDIR)/_build/test-cache \
	    PYTHONPATH=$(CURDIR)/tests $(BIN)/python -m pytest -p nbval_patience \
	    --nbval-lax --nbval-current-env \
	    --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider -q $(NOTEBOOKS)

# The browser test reads the site that `book` builds (and removes first).
site-test: $(STAMP) chromium book
	$(BIN)/python -m pytest -m browser -q -p no:cacheprovider

execute: $(STAMP)
	$(BIN)/python scripts/execute_notebooks.py $(NOTEBOOKS)

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks

clean:
	rm -rf _build
