"""Command-line tools around the engine: benchmarks under load, of long sessions and of the pages."""
