"""Every ```python block of the docs listed here runs: in order, one fresh interpreter per document,
in a temp dir. A block whose first line is ``# name.py`` is a module file: written there (later
blocks import it). Blocks marked ```python no-run are skipped; there must be few of them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "docs/extending.md"]
BLOCK = re.compile(r"^```python([^\n]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
MODULE = re.compile(r"^# ([A-Za-z_]\w*\.py)\n")
RUNNER = """
import sys
from pathlib import Path
sys.path.insert(0, ".")
for index, path in enumerate(sorted(Path("blocks").iterdir())):
    code = path.read_text()
    try:
        exec(compile(code, f"<block {index + 1}>", "exec"), {"__name__": "__main__"})
    except BaseException:
        print(f"--- block {index + 1} failed:\\n{code}", file=sys.stderr)
        raise
"""


def blocks(document: str) -> list[tuple[str, str]]:
    return [(match[1].strip(), match[2]) for match in BLOCK.finditer((ROOT / document).read_text())]


@pytest.mark.parametrize("document", DOCS)
def test_every_python_block_runs(document, tmp_path):
    found = blocks(document)
    assert found, f"{document} has no python blocks"
    skipped = [code for flags, code in found if flags == "no-run"]
    assert len(skipped) <= 2, f"{document}: too many no-run blocks ({len(skipped)})"
    (tmp_path / "blocks").mkdir()
    for index, (flags, code) in enumerate(found):
        if flags == "no-run":
            continue
        assert flags == "", f"{document}: unknown python block flag {flags!r}"
        module = MODULE.match(code)
        if module:
            (tmp_path / module[1]).write_text(code)
        else:
            (tmp_path / "blocks" / f"{index:03d}.py").write_text(code)
    completed = subprocess.run(
        [sys.executable, "-c", RUNNER], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-4000:]


def test_the_extractor_sees_flags_and_modules():
    text = "```python\n# m.py\nx = 1\n```\n```python no-run\nboom\n```\n"
    found = [(match[1].strip(), match[2]) for match in BLOCK.finditer(text)]
    assert found == [("", "# m.py\nx = 1\n"), ("no-run", "boom\n")]
    assert MODULE.match(found[0][1])[1] == "m.py"
