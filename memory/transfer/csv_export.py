"""CSV that is safe to open in a spreadsheet.

Exported cells hold stored text (messages, facts, replies), and a
spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a
formula (``=HYPERLINK(...)`` sends data away; ``=cmd|...`` ran programs in
older Excel). The usual rule (OWASP's, below): such text, and text starting
with a tab, a carriage return or a null, is prefixed with ``'`` so it opens
as the text it is; here also when whitespace comes first, and for the
full-width forms of the four. The
Audit and Compare pages both export through ``to_csv``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..records.stored import clean_text

# OWASP, "CSV Injection" (https://owasp.org/www-community/attacks/CSV_Injection): no cell may begin with
# = + - @, a tab (0x09) or a carriage return (0x0D); the ASVS (requirement 1.2.10 in version 5.0) adds the null
# character. The fix both give is a leading single quote. Beyond their list: the first character that is not
# whitespace counts (a line feed, a space or a no-break space before "=" is trimmed by some spreadsheets and
# import settings), and the full-width forms (U+FF1D ＝, U+FF0B ＋, U+FF0D －, U+FF20 ＠), which spreadsheets
# in East Asian locales read as the ASCII ones.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\0", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def neutralise(cell: str) -> str:
    """Text a spreadsheet would run as a formula, prefixed with ``'``; other text as it is."""
    if cell.startswith(FORMULA_START) or cell.lstrip().startswith(FORMULA_START):
        return "'" + cell
    return cell


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
