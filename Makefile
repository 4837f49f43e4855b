# The README's commands. Each target sets up what it needs by itself on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help install test test-fast serve demo demo-greengrass simulate bench chaos fuzz openapi synth lint models clean

help:
	@echo "make demo    run the local stack, a simulated fleet and a rollout end to end"
	@echo "make demo-greengrass  a Greengrass component with an artifact on two real robot agents"
	@echo "make test    run the whole test suite (unit, functional, state machine, infra, e2e)"
	@echo "make serve   run the local stack (fleetwave serve) in the foreground"
	@echo "make bench   the robot's install (size, packages, idle RSS), then rollouts on 10, 100, 1,000 robots,"
	@echo "             and one with approval gates and a pause"
	@echo "make chaos   the fault-injection suite, repeated, with figures (docs/reliability.md)"
	@echo "make fuzz    10,000 signed requests from AWS's API descriptions against fleetwave serve, with figures"
	@echo "make openapi regenerate docs/openapi.json from the API's routes"
	@echo "make synth   cdk synth offline (no AWS credentials, no docker)"
	@echo "make lint    ruff"
	@echo "make models  regenerate the shipped botocore model from the routes (src/fleetwave/sdk/data)"

$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[infra,dev]'
	touch $(STAMP)

install: $(STAMP)

# The CDK CLI pinned in package-lock.json (a 2.x release: the 3.x CLI does not read aws-cdk-lib 2.x
# assemblies). A stamp, not node_modules/.bin/cdk: npm keeps the package's old mtime on that file.
NODE_STAMP := node_modules/.installed
$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "make synth needs Node.js 18+ and npm: https://nodejs.org" >&2; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

test: $(STAMP) $(NODE_STAMP)
	$(PY) -m pytest -n 2 --dist loadfile --durations=15

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow and not e2e and not infra and not dist"

serve: $(STAMP)
	$(VENV)/bin/fleetwave serve

demo: $(STAMP)
	$(VENV)/bin/fleetwave demo

demo-greengrass: $(STAMP)
	$(VENV)/bin/fleetwave demo --greengrass

# First the robot's install (wheel built, fleetwave[agent] in a fresh venv: size, package count), then
# rollouts on simulated fleets.
bench: $(STAMP)
	$(PY) tests/dist/agent_install_report.py
	$(PY) -m fleetwave.bench

# Fault injection, longer than in `make test`: every case several times over, then the figures.
CHAOS_ROUNDS ?= 3
chaos: $(STAMP)
	$(PY) tests/chaos/run.py --rounds $(CHAOS_ROUNDS)

# Fuzzing `fleetwave serve` from AWS's RoboMaker and Greengrass V2 API descriptions (tests/support/fuzzing.py).
FUZZ_CASES ?= 10000
fuzz: $(STAMP)
	$(PY) tests/fuzz/run.py --cases $(FUZZ_CASES)

openapi: $(STAMP)
	$(PY) -c "import json; from fleetwave_service import handlers; from fleetwave_service.api import openapi_document; open('docs/openapi.json', 'w').write(json.dumps(openapi_document(), indent=2, sort_keys=True) + '\n')"

# Offline and without credentials: the stack is environment-agnostic, nothing is looked up, and
# cdk-nag runs as a validation plugin (any unacknowledged finding fails the synth).
synth: $(STAMP) $(NODE_STAMP)
	CDK_DISABLE_CLI_TELEMETRY=true AWS_EC2_METADATA_DISABLED=true \
		npx --no-install cdk synth --quiet --no-notices

# The botocore service model is generated from the route table and the request/response models; a test
# fails when the committed files are stale.
models: $(STAMP)
	$(PY) -m fleetwave.sdk.generate

lint: $(STAMP)
	$(VENV)/bin/ruff check functions src infra statemachines tests setup.py
	$(VENV)/bin/ruff format --check functions src infra statemachines tests setup.py

clean:
	rm -rf $(VENV) cdk.out node_modules .pytest_cache
