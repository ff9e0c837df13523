# Tally: the two commands of the README are `make demo` and `make test`.
PYTHON ?= python3
SHARED ?= $(abspath ../shared)
export YOLO_OFFLINE ?= 1
export TALLY_SHARED ?= $(SHARED)

.PHONY: install install-system demo test lint typecheck bench

install-system:  ## Debian packages the browser tests need (never a downloaded browser)
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

install:  ## the project and every test tool (torch comes from this machine's local wheels)
	$(PYTHON) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PYTHON) -m pip install -q -e '.[detector,api,dev]'

demo: install  ## API on SQLite + dashboard + one worker on a real clip
	$(PYTHON) -m tally_demo

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

typecheck:
	$(PYTHON) -m mypy

test: install install-system  ## install everything, then lint, typecheck and the whole test suite
	$(MAKE) lint typecheck
	$(PYTHON) -m pytest -n 2 --dist loadfile tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing on purpose" >&2; exit 1; fi; \
	exit $$rc

bench:  ## speed and size targets, as ratios against baselines in the same run
	$(PYTHON) bench/bench_detector.py
	$(PYTHON) bench/bench_scales.py
	$(PYTHON) bench/bench_api.py
	$(PYTHON) bench/bench_dashboard.py
	$(PYTHON) bench/bench_load.py
