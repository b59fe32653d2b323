"""Stored text inside Markdown: shown as written, never as markup.

Anything stored came from someone (a message, a fact, a reply quoting a web
page), and Markdown renders HTML, images (fetched from anywhere) and
headings. Every Markdown-special character is escaped, so stored text can
hold no live HTML, load no image, and look like no heading or bold turn
header: the pages (``ui.state.md_text``) and the transcript export
(``portability.session_markdown``) escape through here.
"""

from __future__ import annotations

import re

from .stored import clean_text

# Streamlit's Markdown adds its own syntax (`:red[...]`, `:material/x:`, `$math$`), hence ':', '$', '^', '='.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=^&])")


def md_escape(text: str) -> str:
    """Stored or typed text escaped for Markdown: it renders as written, never as markup or an image."""
    return _MD_SPECIAL.sub(r"\\\1", clean_text(text))


def md_inline(text: object) -> str:
    """A stored value escaped for one line of Markdown (a heading, a list item): its line breaks and other
    whitespace become single spaces, so it can end no heading and start none of its own."""
    return md_escape(" ".join(clean_text(str(text)).split()))


def md_lines(text: str) -> str:
    """Escaped text that keeps its line breaks (each one a hard break), for a block of its own."""
    return "  \n".join(md_escape(line) for line in str(text).splitlines() or [""])
