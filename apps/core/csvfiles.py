"""Reading a staff CSV upload: the text, the header, and every data row with its line number.

The imports (Online Number stock, rate decks, CDRs) share this and each checks its own rows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from apps.core.exceptions import ApplicationError


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    values: dict[str, str]


def decode(content: bytes | str, *, max_bytes: int) -> str:
    """The uploaded file as text: UTF-8, with or without the byte-order mark Excel writes."""
    if isinstance(content, str):
        return content.removeprefix("\ufeff")
    if len(content) > max_bytes:
        raise ApplicationError(f"The file is larger than {max_bytes // (1024 * 1024)} MB.", field="file")
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApplicationError("The file is not UTF-8 text. Save it as “CSV UTF-8”.", field="file") from None


def _header(reader: Iterator[list[str]]) -> list[str]:
    for fields in reader:
        if any(field.strip() for field in fields):
            return [field.strip().lower() for field in fields]
    raise ApplicationError("The file is empty.", field="file")


def _check_header(columns: list[str], expected: Sequence[str]) -> None:
    missing = [c for c in expected if c not in columns]
    unknown = [c for c in columns if c not in expected]
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    problems = []
    if missing:
        problems.append(f"missing columns: {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown columns: {', '.join(unknown)}")
    if repeated:
        problems.append(f"repeated columns: {', '.join(repeated)}")
    if problems:
        raise ApplicationError(
            f"The first line must name the columns {','.join(expected)} ({'; '.join(problems)}).", field="file"
        )


def read_rows(text: str, *, columns: Sequence[str], max_rows: int) -> list[Row]:
    """Every data row with its line number in the file. Raises on a bad header, an empty file
    or more than `max_rows` rows. A row of the wrong width carries only {"__width__": n}."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = _header(reader)
    _check_header(header, columns)
    rows: list[Row] = []
    try:
        for fields in reader:
            if not any(field.strip() for field in fields):
                continue  # blank lines, and the trailing newline
            line = reader.line_num
            if len(fields) != len(header):
                rows.append(Row(line=line, values={"__width__": str(len(fields))}))
                continue
            rows.append(Row(line=line, values=dict(zip(header, fields, strict=True))))
            if len(rows) > max_rows:
                raise ApplicationError(f"The file has more than {max_rows:,} rows; split it.", field="file")
    except csv.Error as error:
        raise ApplicationError(f"Line {reader.line_num}: {error}.", field="file") from None
    if not rows:
        raise ApplicationError("The file has a header but no rows.", field="file")
    return rows
