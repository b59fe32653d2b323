"""What is stored and how it is read back: messages, traces, token counts, lenient reading of stored JSON."""
