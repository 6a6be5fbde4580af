"""Stand-ins for the outside world, for tests, the demo and benchmarks only."""
