"""How the engine's numbers read to people: times, durations and sizes, one way everywhere (app, CLI, exports)."""
