# The two commands of the README. Both set up .venv on first use (no root, no tokens, no model downloads).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.majlis-installed
DEMO_OUT := out/demo

.PHONY: demo test install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/majlis transcribe audio/panel.mp3 --speakers audio/speakers --format all --out $(DEMO_OUT) --index $(DEMO_OUT)/index
	@echo
	@cat $(DEMO_OUT)/panel.txt
	@echo
	$(BIN)/majlis search '"Sharia law"' --index $(DEMO_OUT)/index
	$(BIN)/majlis search '"remained at the scene"' --index $(DEMO_OUT)/index --speaker Mudaqiq

test: $(STAMP)
	$(BIN)/python -m pytest -q -rs

clean:
	rm -rf $(VENV) out
