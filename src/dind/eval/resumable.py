"""Append-only JSON Lines results that survive a kill: one fsynced line per record.

A run killed mid-write leaves a torn last line (no newline, or not valid JSON). Reading drops
it, and the next append first truncates the file back to its last complete line, so the torn
record is simply redone. A malformed line anywhere else is real damage and an error naming it.
Disk full while appending says so (``dind.outputs``' message) and leaves the complete lines.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

from dind.errors import DataFormatError, UserError


def _complete_prefix(data: bytes) -> int:
    """Bytes of ``data`` up to and including its last newline."""
    return data.rfind(b"\n") + 1


def read_jsonl_resumable(path: str | Path) -> list[dict[str, Any]]:
    """The complete records of ``path`` ([] if missing); a torn last line is ignored."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    lines = data.split(b"\n")
    complete, tail = lines[:-1], lines[-1]  # tail: text after the last newline (torn or empty)
    records = []
    for number, line in enumerate(complete, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            if number == len(complete) and not tail.strip():
                break  # the last line is torn but a newline made it: drop it too
            raise DataFormatError(f"results file {path}, line {number} is not valid JSON: {error}") from None
        records.append(record)
    return records


def append_jsonl(path: str | Path, record: dict[str, Any]) -> None:
    """Append one record as a line and fsync; first cut off any torn last line."""
    append_jsonl_lines(path, [record])


def append_jsonl_lines(path: str | Path, records: list[dict[str, Any]]) -> None:
    """Append records, one line each, in one write and fsync; first cut off any torn last line."""
    path = Path(path)
    line = "".join(json.dumps(record) + "\n" for record in records).encode("utf-8")
    try:
        if path.exists():
            data = path.read_bytes()
            keep = _complete_prefix(data)
            lines = data[:keep].split(b"\n")
            if len(lines) >= 2 and lines[-2].strip() and not _is_json(lines[-2]):
                keep -= len(lines[-2]) + 1
            if keep != len(data):
                os.truncate(path, keep)
        with path.open("ab") as file:
            file.write(line)
            file.flush()
            os.fsync(file.fileno())
    except OSError as error:
        if error.errno == errno.ENOSPC:
            raise UserError(f"disk full while writing {path}; free some space and run again") from None
        raise


def _is_json(line: bytes) -> bool:
    try:
        json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return True
