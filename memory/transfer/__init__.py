"""Memory in and out: imports and exports, transcripts, replays, CSV and Markdown, the files a person hands."""
