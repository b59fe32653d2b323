"""Memory over time: a fact's versions, what memory held at a past turn, and what a retention policy removes.

Why a package of its own: everything here is *read back* from what the
stores already keep (the fact log, the fold records and the audit trail's
fold rows, each turn's trace), never a second copy of memory that could
drift from the first. Where the stores do not keep enough to say exactly
what memory held then, the result says so instead of guessing.
"""
