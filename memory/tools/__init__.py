"""Tools around the engine: the command line, the benchmarks and the MCP server for agents."""
