"""The benchmark harness behind benchmarks/run.py: servers, wrk, the idle test and the report."""
