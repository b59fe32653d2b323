"""Work done after a reply: the job format, the per-user queue and the worker that applies jobs."""
