"""Development tools shared by the tests, the demo and the benchmark (not part of the pack)."""
