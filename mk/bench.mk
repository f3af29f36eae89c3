# Benchmarks (bench/): `make bench` writes bench/results/latest.json, one PNG per family,
# bench/results/README-table.md and prints a table. `make bench BENCH_ARGS=--quick` is the
# small, fast variant; `BENCH_ARGS="--only warm,cost"` runs some families only.
# matplotlib is needed by the benchmarks alone, so it is installed here, not by pyproject.
BENCH_STAMP := $(VENV)/.bench-installed
BENCH_ARGS ?=
FUZZ_ARGS ?= --max-examples 200
SOAK_SECONDS ?= 300

.PHONY: bench fuzz soak

$(BENCH_STAMP): $(STAMP) mk/bench.mk
	$(BIN)/pip install --quiet 'matplotlib>=3.8'
	touch $(BENCH_STAMP)

# The soak runs only if scripts/run-aws-local.sh exists when the run reaches it; otherwise
# the results say it was not run.
bench: $(STAMP) $(NODE_STAMP) $(BENCH_STAMP)
	$(BIN)/python -m bench.run --soak $(BENCH_ARGS)

# Schemathesis against api/openapi.yaml and `citas serve` on a free port, with a larger
# budget than the e2e test; not part of `make test`.
fuzz: $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m bench.fuzz $(FUZZ_ARGS)

# Mixed traffic on `scripts/run-aws-local.sh` for SOAK_SECONDS, then an audit of the table.
soak: $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m bench.soak --stack --seconds $(SOAK_SECONDS)
