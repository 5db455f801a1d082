"""Test fixtures that ship with the engine: tiny official-format checkpoints, MNI152
phantoms and speech audio. Used by the test suite, `make demo` offline and benchmarks."""
