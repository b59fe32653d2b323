"""A message's fenced code blocks are shown as code, whoever wrote it; the rest stays escaped text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from memory.transfer.markdown import Block, split_fenced

SCRIPT = (
    "Here is my script:\n```python\ndef greet(name):\n    if name:\n        print(f'hi {name}')\n```\nDoes it work?"
)


def test_a_fenced_block_is_code_with_its_indentation_and_language():
    assert split_fenced(SCRIPT) == [
        Block("text", "Here is my script:"),
        Block("code", "def greet(name):\n    if name:\n        print(f'hi {name}')", "python"),
        Block("text", "Does it work?"),
    ]


def test_unclosed_tilde_inline_and_odd_languages():
    assert split_fenced("~~~\nx = 1\n  y") == [Block("code", "x = 1\n  y")]
    assert split_fenced("a ```b``` c") == [Block("text", "a ```b``` c")], "inline backticks are not a block"
    assert split_fenced("```js onerror=alert(1)\nx\n```")[0] == Block("code", "x", None), "no language from junk"
    assert split_fenced("") == [Block("text", "")]


@given(st.text(alphabet=st.sampled_from("ab \n`~<>!()[]:*#\t"), max_size=80))
def test_blocks_are_pieces_of_the_message_and_plain_text_stays_whole(text):
    """Nothing is added: each block is a piece of the message, as written; without a fence it is one text."""
    blocks = split_fenced(text)
    assert all(b.kind in ("text", "code") and b.text in text for b in blocks)
    if not any(line.startswith(("```", "~~~")) for line in text.split("\n")):
        assert blocks == [Block("text", text.strip("\n"))]
