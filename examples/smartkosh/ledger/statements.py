"""Reading a CSV statement: rows with their line numbers, in chunks, a bad row
reported by its line."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from corral.errors import NoRetry

#: Columns every statement has (in any order; others are ignored).
REQUIRED = ("date", "description", "amount")
DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y")


class BadRow(NoRetry):
    """A line of the file cannot be imported. The file will not change by itself, so
    the job fails at once (NoRetry) instead of spending its attempts on it."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line


@dataclass(frozen=True)
class Row:
    line: int
    date: date
    description: str
    amount: Decimal
    category: str
    fingerprint: str


def count_rows(path: Path) -> int:
    """Data lines of the file (for the progress bar; quoted newlines count extra)."""
    with path.open("rb") as f:
        lines = sum(1 for raw in f if raw.strip())
    return max(lines - 1, 0)


def rows(path: Path) -> Iterator[Row]:
    """The file's rows in order; raises BadRow at the first one that is wrong."""
    seen: dict[tuple[date, Decimal, str], int] = {}
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        try:
            header = [name.strip().lower() for name in reader.fieldnames or []]
        except (UnicodeDecodeError, csv.Error) as exc:
            raise BadRow(1, f"not a CSV file ({exc})") from None
        missing = [name for name in REQUIRED if name not in header]
        if missing:
            raise BadRow(1, f"the header lacks {', '.join(missing)} (it has {', '.join(header)})")
        reader.fieldnames = header
        line = reader.line_num + 1
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except (UnicodeDecodeError, csv.Error) as exc:
                raise BadRow(line, str(exc)) from None
            if any((value or "").strip() for value in record.values()):
                yield _row(line, record, seen)
            line = reader.line_num + 1


def _row(
    line: int, record: dict[str | None, Any], seen: dict[tuple[date, Decimal, str], int]
) -> Row:
    if None in record:  # DictReader's key for fields past the header's
        extra = len(record[None])
        raise BadRow(line, f"{len(record) - 1 + extra} fields, the header has {len(record) - 1}")
    when = _date(line, (record.get("date") or "").strip())
    raw_amount = (record.get("amount") or "").strip()
    try:
        amount = Decimal(raw_amount)
    except InvalidOperation:
        raise BadRow(line, f"amount {record.get('amount')!r} is not a number") from None
    if not amount.is_finite() or abs(amount) >= Decimal("1e10"):
        raise BadRow(line, f"amount {record.get('amount')!r} is out of range")
    description = " ".join((record.get("description") or "").split())
    if not description:
        raise BadRow(line, "the description is empty")
    if len(description) > 255:
        raise BadRow(line, "the description is longer than 255 characters")
    amount = amount.quantize(Decimal("0.01"))
    # The n-th identical (date, amount, description) of a file is its own row: two
    # coffees on one day are two transactions, but the same file twice is one set.
    key = (when, amount, description.lower())
    seen[key] = occurrence = seen.get(key, 0) + 1
    natural = f"{when.isoformat()}|{amount}|{description.lower()}|{occurrence}"
    return Row(
        line=line,
        date=when,
        description=description,
        amount=amount,
        category=(record.get("category") or "").strip()[:64],
        fingerprint=hashlib.sha256(natural.encode()).hexdigest(),
    )


def _date(line: int, text: str) -> date:
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise BadRow(line, f"date {text!r} is not YYYY-MM-DD, DD/MM/YYYY or DD.MM.YYYY")


def chunks(path: Path, size: int) -> Iterator[list[Row]]:
    """The rows in lists of ``size``; the good rows before a bad one come first, then
    BadRow is raised."""
    batch: list[Row] = []
    try:
        for row in rows(path):
            batch.append(row)
            if len(batch) == size:
                yield batch
                batch = []
    except BadRow:
        if batch:
            yield batch
        raise
    if batch:
        yield batch
