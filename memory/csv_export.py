"""CSV that is safe to open in a spreadsheet.

Exported cells hold stored text (messages, facts, replies), and a
spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a
formula (``=HYPERLINK(...)`` sends data away; ``=cmd|...`` ran programs in
older Excel). The usual rule: such text, and text starting with a tab or a
carriage return, is prefixed with ``'`` so it opens as the text it is. The
Audit and Compare pages both export through ``to_csv``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .stored import clean_text

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """Text a spreadsheet would run as a formula, prefixed with ``'``; other text as it is."""
    return "'" + cell if cell.startswith(FORMULA_START) else cell


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (bool, int, float)):
        return value  # numbers stay numbers (a negative one is not a formula)
    if isinstance(value, (list, tuple, dict)):
        value = json.dumps(value, ensure_ascii=False, default=str)
    return neutralise(clean_text(str(value)))


def to_csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Rows as CSV text (header from ``columns`` or the first row's keys); every text cell neutralised."""
    rows = list(rows)
    header = list(columns) if columns is not None else list(rows[0]) if rows else []
    out = io.StringIO()
    writer = csv.writer(out)  # RFC 4180: CRLF rows, so a field holding "\r" or "\n" is quoted
    writer.writerow([neutralise(str(name)) for name in header])
    for row in rows:
        writer.writerow([_cell(row.get(name)) for name in header])
    return out.getvalue()
