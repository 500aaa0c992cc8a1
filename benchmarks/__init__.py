"""Performance benchmarks (pytest-benchmark): `nox -s bench`."""
