"""Tools around the engine: the command line, the benchmarks (single user, under load, long sessions, the pages)
and the MCP server for agents."""
