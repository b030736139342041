# The two commands of the README, and the few others a developer wants. Every target that runs code
# first brings the environment up to date (tools/install.sh returns at once when nothing changed).
VENV := tools/venv
PY := $(VENV)/bin/python

.PHONY: all env run test lint slurm clean help
all: help

help:
	@echo "make run    set up, then run the whole mini recipe (egs/mini_slakh)"
	@echo "make test   set up, then run the whole test suite"
	@echo "make env    set up only: system packages (as root) and tools/venv"
	@echo "make lint   ruff over the package, tests and benchmarks"
	@echo "make slurm  start a one-node Slurm cluster on this machine (root; for slurm.pl)"
	@echo "make clean  remove the mini recipe's outputs"

env:
	@bash tools/install.sh

run: env
	cd egs/mini_slakh && ./run.sh

test: env
	$(PY) -m pytest

lint: env
	$(VENV)/bin/ruff check inmsrl tests bench setup.py

slurm:
	bash tools/slurm/local_slurm.sh start

clean:
	rm -rf egs/mini_slakh/data egs/mini_slakh/dump egs/mini_slakh/exp egs/mini_slakh/downloads
