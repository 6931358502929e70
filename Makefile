# On a fresh machine:
#   make demo   installs subflow and its Python packages into .venv, extracts the subtitles of a bundled sample,
#               prints where they went and how to run subflow (.venv/bin/subflow, or activate the venv)
#   make test   the test run: installs what the tests need (system packages, venvs), runs the test suite
# Both are safe to re-run: installs are skipped when their stamp files are up to date.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMPS := .cache/stamps
# Debian packages: fonts for rendering samples and test text, ffmpeg (sink checks), chromium (overlay test),
# gst-rtsp-server and plugins (a real RTSP server for the live tests), Tesseract language data and fonts for
# the scripts the rapid model lacks (the tesseract engine and its samples, docs/scripts.md).
APT_PACKAGES := fonts-dejavu-core fonts-wqy-zenhei ffmpeg chromium python3-gi gir1.2-gst-rtsp-server-1.0 \
	gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav \
	tesseract-ocr-rus tesseract-ocr-kor fonts-nanum
DEMO_SAMPLE := samples/en_basic.mp4
DEMO_OUT := out/demo.srt

.PHONY: demo test install system-deps vllm-env samples bench clean

demo: install
	@mkdir -p out
	$(VENV)/bin/subflow extract $(DEMO_SAMPLE) -o $(DEMO_OUT)
	@echo "--- first cues of $(DEMO_OUT):"; head -n 12 $(DEMO_OUT)
	@echo "--- score against the ground truth:"; $(VENV)/bin/subflow score $(DEMO_SAMPLE:.mp4=.srt) $(DEMO_OUT)
	@echo "Subtitles written to $(DEMO_OUT)"
	@echo "subflow is installed in $(VENV): run $(VENV)/bin/subflow --help, or '. $(VENV)/bin/activate' to put subflow on your PATH"

test: install system-deps vllm-env
	$(PY) -m pytest -q -p no:cacheprovider

install: $(STAMPS)/venv

$(STAMPS)/venv: pyproject.toml
	@mkdir -p $(STAMPS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

system-deps: $(STAMPS)/apt

$(STAMPS)/apt: Makefile
	@mkdir -p $(STAMPS)
	if dpkg-query -W -f='$${Status}\n' $(APT_PACKAGES) 2>/dev/null | grep -vq "install ok installed" \
		|| ! dpkg-query -W $(APT_PACKAGES) >/dev/null 2>&1; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(APT_PACKAGES); \
	fi
	@touch $@

# vLLM's CPU build in its own venv, for the HunyuanOCR engine tests (about 2 minutes the first time).
vllm-env: install
	bash tests/hunyuan/setup_vllm_env.sh

samples: install system-deps
	$(PY) samples/generate.py all

# Accuracy/speed side by side with the naive baseline, then memory over a 2-hour input (about 30 min on 2 cores).
bench: install system-deps
	$(PY) benchmarks/extract_bench.py --fast-decode
	$(PY) benchmarks/memory_bench.py --hours 2

clean:
	rm -rf out .pytest_cache
