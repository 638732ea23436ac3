"""Streaming file writers for exports: CSV, JSON (a streamed array) and XLSX (write-only).

Each writer takes rows a page at a time and keeps nothing but the current page in memory, so
an export of a million rows costs the same memory as one of a hundred. Rows are mappings from
column name to a plain value (str, int, datetime, list of str, None).
"""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, Protocol

from openpyxl import Workbook
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from core.clock import as_utc

Row = Mapping[str, Any]
# One sheet holds 1,048,576 rows; a longer export continues on the next sheet, header again.
XLSX_MAX_DATA_ROWS = 1_048_575


class ExportFormat(StrEnum):
    CSV = "csv"
    JSON = "json"
    XLSX = "xlsx"


MEDIA_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.JSON: "application/json",
    ExportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class RowWriter(Protocol):
    def write(self, rows: Sequence[Row]) -> None: ...

    def close(self) -> None: ...


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, list | tuple):
        return ";".join(str(item) for item in value)
    return str(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


class CsvWriter:
    """RFC 4180 CSV, UTF-8 with a BOM (Excel then opens Cyrillic correctly), a header row;
    times in ISO 8601 UTC, lists joined with `;`."""

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self._columns = list(columns)
        self._handle: IO[str] = path.open("w", encoding="utf-8-sig", newline="")
        self._csv = csv.writer(self._handle)
        self._csv.writerow(self._columns)

    def write(self, rows: Sequence[Row]) -> None:
        self._csv.writerows([_text(row[name]) for name in self._columns] for row in rows)

    def close(self) -> None:
        self._handle.close()


class JsonWriter:
    """One JSON array of objects, written element by element (never built in memory)."""

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self._columns = list(columns)
        self._handle: IO[str] = path.open("w", encoding="utf-8")
        self._handle.write("[")
        self._first = True

    def write(self, rows: Sequence[Row]) -> None:
        for row in rows:
            item = {name: _json_value(row[name]) for name in self._columns}
            self._handle.write("\n" if self._first else ",\n")
            self._handle.write(json.dumps(item, ensure_ascii=False, separators=(",", ":")))
            self._first = False

    def close(self) -> None:
        self._handle.write("\n]\n" if not self._first else "]\n")
        self._handle.close()


class XlsxWriter:
    """An openpyxl write-only workbook: rows go to a temporary file as they come, and the
    workbook is zipped once at the end. Times are real Excel date-times in UTC (the header
    says so), lists joined with `;`."""

    def __init__(self, path: Path, columns: Sequence[str], *, sheet_title: str = "export") -> None:
        self._path = path
        self._columns = list(columns)
        self._title = sheet_title[:28]
        self._book = Workbook(write_only=True)
        self._sheets = 0
        self._sheet: WriteOnlyWorksheet = self._new_sheet()

    def _new_sheet(self) -> WriteOnlyWorksheet:
        self._sheets += 1
        title = self._title if self._sheets == 1 else f"{self._title}_{self._sheets}"
        sheet: WriteOnlyWorksheet = self._book.create_sheet(title)
        sheet.append([f"{name} (UTC)" if name.endswith("_at") else name for name in self._columns])
        self._in_sheet = 0
        return sheet

    @staticmethod
    def _cell(value: Any) -> Any:
        if isinstance(value, datetime):
            return as_utc(value).replace(tzinfo=None)  # Excel has no time zones
        if isinstance(value, list | tuple):
            return ";".join(str(item) for item in value)
        if isinstance(value, uuid.UUID):
            return str(value)
        return value

    def write(self, rows: Sequence[Row]) -> None:
        for row in rows:
            if self._in_sheet >= XLSX_MAX_DATA_ROWS:
                self._sheet = self._new_sheet()
            self._sheet.append([self._cell(row[name]) for name in self._columns])
            self._in_sheet += 1

    def close(self) -> None:
        self._book.save(self._path)


def open_writer(
    format: ExportFormat, path: Path, columns: Sequence[str], *, title: str = "export"
) -> RowWriter:
    if format is ExportFormat.CSV:
        return CsvWriter(path, columns)
    if format is ExportFormat.JSON:
        return JsonWriter(path, columns)
    return XlsxWriter(path, columns, sheet_title=title)
