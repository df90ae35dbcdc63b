"""Where ``dind reproduce`` keeps its samples: ``samples/<model>/<plan>.jsonl``, one line per
sample; a (plan, batch) is done when all of its lines are, so a rerun generates only the rest."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from dind.eval.reproduce_plans import ReproduceConfig
from dind.eval.resumable import read_jsonl_resumable


def _digest(row: list[int]) -> str:
    return hashlib.blake2b(str(row).encode(), digest_size=8).hexdigest()


def slug(text: str) -> str:
    """A file-name-safe, readable and unique name for a plan or model path."""
    readable = re.sub(r"[^A-Za-z0-9.]+", "_", text).strip("_")[:60] or "x"
    return f"{readable}-{hashlib.blake2b(text.encode(), digest_size=4).hexdigest()}"


def generation_settings(config: ReproduceConfig) -> dict[str, Any]:
    """What fixes a plan's samples besides its text (samples made otherwise are not reused)."""
    return {"length": config.length, "seed": config.seed}


class SampleStore:
    """``samples/<model>/<plan>.jsonl``: one line per sample; a batch is done when all its lines are."""

    def __init__(self, root: Path, settings: dict[str, Any]):
        self.root = root
        self.settings = settings
        self._cache: dict[Path, dict[int, dict[str, Any]]] = {}

    def path(self, model: str, plan: str) -> Path:
        return self.root / slug(model) / f"{slug(plan)}.jsonl"

    def samples(self, model: str, plan: str) -> dict[int, dict[str, Any]]:
        """Sample index -> record (the last line wins: a redone batch repeats identical samples)."""
        path = self.path(model, plan)
        if path not in self._cache:
            by_index: dict[int, dict[str, Any]] = {}
            for record in read_jsonl_resumable(path):
                if record.get("settings") != self.settings:
                    raise ValueError(
                        f"{path} holds samples made with other settings (got {record.get('settings')}, "
                        f"now {self.settings}); use another --out or the same --length and --seed"
                    )
                by_index[int(record["sample"])] = record
            self._cache[path] = by_index
        return self._cache[path]

    def has(self, model: str, plan: str, start: int, count: int) -> bool:
        held = self.samples(model, plan)
        return all(index in held for index in range(start, start + count))

    def append(self, model: str, plan: str, records: list[dict[str, Any]]) -> None:
        """All of a batch's lines in one fsynced write (a kill leaves at most a torn batch)."""
        from dind.eval.resumable import append_jsonl_lines

        path = self.path(model, plan)
        path.parent.mkdir(parents=True, exist_ok=True)
        append_jsonl_lines(path, records)
        held = self.samples(model, plan)
        for record in records:
            held[int(record["sample"])] = record
