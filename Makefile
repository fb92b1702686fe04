# gridmgr: the two commands are `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
GRIDMGR := $(VENV)/bin/gridmgr
PORT ?= 5000
export PORT

.PHONY: demo test install system-deps lint bench clean

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,gevent]'
	touch $@

install: $(VENV)/.installed maps/static/vendor/.installed

## The map wall's Leaflet, plugins, socket.io and Chart.js, from npm into maps/static/vendor.
maps/static/vendor/.installed: package.json package-lock.json scripts/vendor-assets.sh
	scripts/vendor-assets.sh

system-deps:
	scripts/install-system-deps.sh

## make demo: install, start the embedded PostGIS, migrate, load a demo city, then serve it on
## $(PORT) (gunicorn, gevent-websocket) with the background worker; Ctrl-C stops both.
demo: install system-deps
	$(GRIDMGR) db start
	$(GRIDMGR) db upgrade
	$(GRIDMGR) demo load
	$(GRIDMGR) demo serve --port $(PORT)

## make test: the same set-up with the browser and the cluster engines (Patroni, etcd, HAProxy),
## then lint and the whole test suite.
test: install system-deps
	scripts/install-system-deps.sh --browser --cluster
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -n 2 --dist loadfile

lint: install
	$(VENV)/bin/ruff check .

clean:
	-$(GRIDMGR) db stop
	rm -rf $(VENV) instance .pytest_cache
