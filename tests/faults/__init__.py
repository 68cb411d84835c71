"""The fault suite (issue 8, "Fault suite"): ``python -m tests.faults`` / ``make faults``; a reduced size
runs inside ``make test`` (tests/e2e/test_fault_suite.py). See ``tests/faults/__main__.py``."""
