"""Thin adapters over the real backends: Redis, Chroma, the embedder."""
