# Developer entry points. `make` or `make help` lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: help build-release bench bench-quick bench-scale bench-micro bench-callgrind bench-deps

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  make %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

bench-deps: ## install nginx, haproxy, wrk, h2load, hey, valgrind from Debian packages if missing
	bench/setup.sh

build-release: ## cargo build --release -p trellis
	$(CARGO) build --release -p trellis

bench: bench-deps build-release ## full suite: Trellis vs nginx vs HAProxy (6 scenarios) + scale runs (~15 min) -> bench/results/
	bench/run.sh

bench-quick: bench-deps build-release ## the same, 1 short round per scenario and up to 1,000 routes (~3 min)
	QUICK=1 bench/run.sh

bench-scale: bench-deps build-release ## only the scale runs (10 / 1,000 / 10,000 HTTPRoutes)
	bench/scale.py

bench-micro: ## criterion: route matching and translator at 10 / 1,000 / 10,000 routes
	$(CARGO) bench -p trellis-proxy --bench route_match
	$(CARGO) bench -p trellis-translate --bench translate

bench-callgrind: bench-deps build-release ## instructions per proxied request (valgrind; noise-free A/B of builds)
	bench/callgrind.sh
