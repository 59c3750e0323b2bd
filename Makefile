# The two commands of the README are `make demo` and `make test`; both set up what is missing first.
SHELL := /bin/bash
VENV ?= .venv
# The workspace's environment: system ROS (if any), the venv, then the colcon install (venv path: .venv/setup.bash;
# system-ROS path: install/setup.bash), so `ros2 launch vs_bringup ...` finds the packages.
ACT := [ -f /opt/ros/jazzy/setup.bash ] && source /opt/ros/jazzy/setup.bash; source $(VENV)/bin/activate; \
	for f in $(VENV)/setup.bash install/setup.bash; do [ -f $$f ] && source $$f; done; true;
PYTEST_ARGS ?=

.PHONY: setup test test-unit test-ros lint typecheck demo bench-ci bench clean

setup:
	@bash scripts/setup.sh

## Everything CI runs: lint, the type check of every core/, all test tiers (unit, ROS over real DDS, closed loop).
test: setup
	@$(ACT) ruff check .
	@$(ACT) mypy src/*/*/core
	@$(ACT) python -m pytest $(PYTEST_ARGS)

test-unit: setup
	@$(ACT) python -m pytest -m "not ros" $(PYTEST_ARGS)

test-ros: setup
	@$(ACT) python -m pytest -m ros $(PYTEST_ARGS)

lint: setup
	@$(ACT) ruff check .

## mypy on every package's core/ ([tool.mypy] in pyproject.toml; incremental: .mypy_cache makes reruns take seconds).
typecheck: setup
	@$(ACT) mypy src/*/*/core

## The simulated servo demo: the ROS 2 graph against the PyBullet cell; leaves a run folder in runs/.
demo: setup
	@$(ACT) python -m vs_bringup.demo $(DEMO_ARGS)

bench-ci: setup
	@$(ACT) python -m vs_controllers.benchmark --ci

clean:
	rm -rf build install log runs bench_results .pytest_cache .ruff_cache .mypy_cache
