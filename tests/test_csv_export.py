"""CSV exports open as text in a spreadsheet: no cell starts a formula."""

from __future__ import annotations

import csv
import io

from memory.transfer.csv_export import to_csv


def test_every_text_cell_that_could_start_a_formula_gets_a_leading_quote():
    rows = [
        {"text": "=1+1", "n": -3, "tags": ["=x"], "none": None},
        {"text": "+49 30 1234", "n": 2.5, "tags": [], "none": None},
        {"text": "-rf", "n": True, "tags": {"a": 1}, "none": None},
        {"text": "@SUM(A1)", "n": 0, "tags": [], "none": None},
        {"text": "\t=cmd", "n": 0, "tags": [], "none": None},
        {"text": "\r=cmd", "n": 0, "tags": [], "none": None},
        {"text": "plain, with a comma\nand a line", "n": 0, "tags": [], "none": None},
    ]
    back = list(csv.DictReader(io.StringIO(to_csv(rows), newline="")))
    assert [r["text"] for r in back] == [
        "'=1+1",
        "'+49 30 1234",
        "'-rf",
        "'@SUM(A1)",
        "'\t=cmd",
        "'\r=cmd",
        "plain, with a comma\nand a line",
    ]
    assert [r["n"] for r in back][:3] == ["-3", "2.5", "True"], "numbers stay numbers"
    assert back[0]["tags"] == '["=x"]' and back[0]["none"] == ""
    assert to_csv([{"=evil": 1}]).splitlines()[0] == "'=evil", "headers too"
    assert to_csv([], ["a", "b"]) == "a,b\r\n"


def test_a_formula_behind_whitespace_a_line_break_or_in_full_width_forms_is_neutralised_too():
    cells = [
        " =HYPERLINK(1)",
        "\n=1+1",
        "\u00a0@SUM(A1)",
        "\uff1dHYPERLINK(1)",
        "\uff0b1",
        "\uff0d1",
        "\uff20A1",
        "\0=1",
    ]
    back = list(csv.reader(io.StringIO(to_csv([{"c": c} for c in cells]), newline="")))[1:]
    assert [row[0] for row in back] == ["'" + c for c in cells]
    assert to_csv([{"c": " plain"}, {"c": "a = b"}]).splitlines()[1:] == [" plain", "a = b"], "other text as it is"
