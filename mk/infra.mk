# Static checks of infra/ (included from the Makefile).
# checkov pins an old `packaging`, so it lives in its own virtualenv, never in $(VENV).
# Its version is pinned so that CI gets the same checks on every run; raise it on purpose
# (the virtualenv is reinstalled when this file changes).
PYTHON          ?= python3
CHECKOV_VENV    ?= .venv-checkov
CHECKOV_VERSION := 3.3.30
CHECKOV_STAMP   := $(CHECKOV_VENV)/.installed-stamp

.PHONY: check-infra

$(CHECKOV_STAMP): mk/infra.mk
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet 'checkov==$(CHECKOV_VERSION)'
	touch $(CHECKOV_STAMP)

# checkov exits non-zero when any check fails; --soft-fail is deliberately absent.
# --skip-download: use the checks shipped in the package, never fetch from the vendor.
check-infra: $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/checkov -d infra --framework terraform --quiet --compact --skip-download
