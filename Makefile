# kpd developer entry points. `make help` lists them.
PYTHON ?= python3
STRESS_RUNS ?= 3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTEST := $(PY) -m pytest
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv system-deps vm demo test test-stress test-unit lint docs bench soak clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP) ## create .venv with kpd installed editable plus the test extras

system-deps: ## install missing Debian packages (keepalived, ipvsadm, qemu, tcpdump, promtool from prometheus, ...)
	./scripts/install-system-deps.sh

vm: system-deps ## build/refresh the QEMU VM cache in .cache/vm (stock Debian kernel + initramfs, real IPVS)
	./scripts/vm/build.sh

demo: system-deps venv ## (root) two kpd directors, 3 HTTP real servers, a client: failures measured (docs/demo.md); in the QEMU VM if this kernel has no IPVS
	@modprobe -q ip_vs 2>/dev/null || $(MAKE) --no-print-directory vm
	$(PY) scripts/demo/demo.py

test: system-deps venv vm ## install whatever is missing, then run every test (as root)
	$(PYTEST) -p no:cacheprovider tests

test-stress: system-deps venv vm ## every test STRESS_RUNS=3 times in a row, a CPU hog on each core; stops at the first failing run
	./scripts/with-cpu-hog.sh sh -c 'for i in $$(seq $(STRESS_RUNS)); do \
	    echo "=== stress run $$i of $(STRESS_RUNS), every CPU busy"; \
	    $(PYTEST) -p no:cacheprovider tests || exit $$?; done'

test-unit: venv ## run the tests that need no root, namespaces or VM
	$(PYTEST) -p no:cacheprovider -m "not netns and not interop and not vm" tests

lint: venv ## ruff on everything, mypy on the package
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/mypy src/keepalived_py

docs: venv ## regenerate docs/keywords.md and docs/metrics.md from their declarations
	$(PY) -m keepalived_py.config.reference > docs/keywords.md
	$(PY) -m keepalived_py.control.metrics > docs/metrics.md

bench: venv vm ## run the benchmarks, kpd beside real keepalived (results: docs/benchmarks.md)
	$(PY) benchmarks/bench_config.py
	$(PY) benchmarks/bench_vrrp.py
	$(PY) benchmarks/bench_control.py
	$(PY) benchmarks/bench_checkers.py
	$(PY) benchmarks/bench_ipvs.py
	$(PY) benchmarks/bench_pair.py
	$(PY) benchmarks/bench_metrics.py

soak: venv ## 200 failovers of a kpd pair (SIGKILL + restart): leaks and double MASTERs (results: docs/benchmarks.md)
	$(PY) benchmarks/soak.py

clean: ## remove the venv, caches and build output
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
