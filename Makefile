# The two commands of the README. Both set up .venv on first use (no root, no tokens, no model downloads).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.majlis-installed
TEST_STAMP := $(VENV)/.majlis-test-installed
DEMO_OUT := out/demo

# Debian tools the tests use: flite synthesises test speech, sox shapes it, chromium runs the page test
# (skipped without it), and the panel rebuild test compares bytes with what Debian's ffmpeg made.
TEST_TOOLS := flite sox ffmpeg chromium

.PHONY: demo test install clean test-tools

install: $(STAMP)

# The default install (no torch, about 1 GB): what `make demo` and `pip install majlis` need. pip prints each
# package as it comes, so a first install shows its progress.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing majlis and its default engines into $(VENV) (a few minutes the first time)"
	$(BIN)/python -m pip install --progress-bar off --upgrade pip | grep --line-buffered -v '^Requirement already' || true
	$(BIN)/python -m pip install --progress-bar off -e . | grep --line-buffered -E '^(Collecting|Installing|Successfully)' || true
	$(BIN)/python -c 'import majlis, faster_whisper'
	touch $(STAMP)

# The tests also run the engines of the extras (openai-whisper, pyannote.audio: torch, several GB).
$(TEST_STAMP): $(STAMP) pyproject.toml
	@echo "installing the extras the tests use (openai-whisper, pyannote.audio, test tools)"
	$(BIN)/python -m pip install --progress-bar off -e '.[test]' | grep --line-buffered -E '^(Collecting|Installing|Successfully)' || true
	$(BIN)/python -c 'import torch, whisper, pyannote.audio, pytest'
	touch $(TEST_STAMP)

demo: $(STAMP)
	$(BIN)/majlis transcribe audio/panel.mp3 --speakers audio/speakers --format all --out $(DEMO_OUT) --index $(DEMO_OUT)/index
	@echo
	@cat $(DEMO_OUT)/panel.txt
	@echo
	$(BIN)/majlis search '"arrested and then executed" betrayal' --index $(DEMO_OUT)/index
	$(BIN)/majlis search '"remained at the scene"' --index $(DEMO_OUT)/index --speaker Mudaqiq

test-tools:
	@missing=""; for t in $(TEST_TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  elif ! command -v flite >/dev/null || ! command -v sox >/dev/null; then \
	    echo "make test needs Debian's flite and sox: sudo apt-get install$$missing"; exit 1; \
	  fi; \
	fi

test: $(TEST_STAMP) test-tools
	$(BIN)/python -m pytest -q -rs

clean:
	rm -rf $(VENV) out
