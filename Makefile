# `make run`: the product with demo data on http://127.0.0.1:8000 (PORT overrides).
# `make test`: the whole test suite against real PostgreSQL + pgvector.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
TEST_INSTALLED := $(VENV)/.test-installed

.PHONY: run test install install-test system-test-deps migrate demo bench clean-db messages

$(INSTALLED): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, from the CPU build on disk, so nothing pulls a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -r requirements.txt
	touch $@

install: $(INSTALLED)

# Browser tests drive Debian's Chromium; the translation check runs gettext.
system-test-deps:
	@command -v chromium >/dev/null && command -v xgettext >/dev/null || \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium gettext)

$(TEST_INSTALLED): $(INSTALLED) requirements-test.txt
	$(BIN)/pip install -q -r requirements-test.txt
	touch $@

install-test: $(TEST_INSTALLED) system-test-deps

run: $(INSTALLED)
	$(BIN)/python -m config.run

test: install-test
	$(BIN)/python -m pytest

messages: $(INSTALLED)
	$(BIN)/python manage.py makemessages -l zh_Hans --no-obsolete --ignore=.venv --ignore=var --ignore=staticfiles
	$(BIN)/python manage.py compile_translations

clean-db:
	$(BIN)/python -c "from config.pgserver import stop_embedded_server; stop_embedded_server()"
	rm -rf var/pgdata
