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
from dataclasses import dataclass

from ..records.stored import clean_text

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


# A fenced code block: ``` or ~~~ (three or more) at a line's start, an optional language, the code, the same fence.
_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[^\n`]*)\n(?P<code>.*?)(?:\n(?P=fence)[ \t]*(?:\n|$)|\Z)",
                    re.MULTILINE | re.DOTALL)  # fmt: skip
_LANGUAGE = re.compile(r"[A-Za-z0-9_+#.\-]{1,30}")


@dataclass(frozen=True)
class Block:
    """A piece of a message: prose (shown escaped) or code (shown verbatim, as code, in ``language`` if named)."""

    kind: str  # "text" or "code"
    text: str
    language: str | None = None


def split_fenced(text: str) -> list[Block]:
    """A message as its prose and its fenced code blocks, in order, so code can be shown as code.

    Nothing here becomes markup: prose is escaped by the page, code is shown
    verbatim by a code element. An unclosed fence runs to the end, as in
    Markdown; a language name that is not a plain word is dropped.
    """
    text = clean_text(str(text))
    blocks: list[Block] = []
    pos = 0
    for m in _FENCE.finditer(text):
        if prose := text[pos : m.start()].strip("\n"):
            blocks.append(Block("text", prose))
        language = m.group("lang").strip()
        blocks.append(Block("code", m.group("code"), language if _LANGUAGE.fullmatch(language) else None))
        pos = m.end()
    if rest := text[pos:].strip("\n"):
        blocks.append(Block("text", rest))
    return blocks or [Block("text", "")]
