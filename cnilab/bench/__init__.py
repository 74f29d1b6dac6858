"""The benchmark engine: suites, placements, executors, parsers and the run loop."""
