"""The computed part of a committed reproduce README, from the run's own report.md.

A `dind reproduce` output directory committed under benchmarks/results/ has a README.md whose
hand-written text only interprets; every verdict it shows is this script's summary of report.md
(the claims tables that `dind.eval.verdicts` judged). The summary replaces whatever lies between
the README's two markers; the rest of the README is left as it is.

    python benchmarks/reproduce_readme.py benchmarks/results/reproduce-table3
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

BEGIN = "<!-- computed by benchmarks/reproduce_readme.py from report.md: do not edit by hand -->"
END = "<!-- end of the computed part -->"
SHORT = {
    "holds": "holds",
    "holds, with lower entropy": "holds (lower entropy)",
    "no difference": "no diff.",
    "reversed": "**reversed**",
    "n/a": "n/a",
}


def tables(report: str) -> dict[str, list[dict[str, str]]]:
    """Every markdown table of ``report`` under its nearest heading, rows as header -> cell."""
    found: dict[str, list[dict[str, str]]] = {}
    heading, header = "", None
    for line in report.splitlines():
        if line.startswith("#"):
            heading, header = line.lstrip("#").strip(), None
        elif line.startswith("|") and header is None:
            header = [c.strip() for c in line.strip("|").split("|")]
        elif line.startswith("|---"):
            continue
        elif line.startswith("|") and header is not None:
            cells = [c.strip() for c in line.strip("|").split("|")]
            found.setdefault(heading, []).append(dict(zip(header, cells, strict=False)))
        else:
            header = None
    return found


def _outcome(cell: str) -> str:
    return SHORT.get(cell.strip("*"), cell)


def summary(report: str) -> list[str]:
    found = tables(report)
    claims = found.get("The paper's orderings, by the rule", [])
    if not claims:
        raise SystemExit("report.md has no 'The paper's orderings, by the rule' table")
    judges = list(dict.fromkeys(row["judge"] for row in claims))
    models = list(dict.fromkeys(row["model"] for row in claims))
    grid: dict[str, dict[str, list[str]]] = {}
    for row in claims:
        grid.setdefault(row["claim"], {}).setdefault(row["model"], []).append(_outcome(row["outcome"]))
    lines = [
        BEGIN,
        "",
        "### The paper's orderings, by the rule (from report.md)",
        "",
        f"Each cell: the outcome under {' / '.join(judges)}. The differences and standard errors "
        "behind every cell are in report.md's table of the same name.",
        "",
        "| claim | " + " | ".join(models) + " |",
        "|---|" + "---|" * len(models),
    ]
    for claim, by_model in grid.items():
        lines.append(f"| {claim} | " + " | ".join(" / ".join(by_model.get(m, ["-"])) for m in models) + " |")
    counts = Counter((row["judge"], row["outcome"].strip("*")) for row in claims)
    for judge in judges:
        parts = ", ".join(f"{o} {n}" for (j, o), n in sorted(counts.items()) if j == judge)
        lines.append("")
        lines.append(f"{judge}: {parts} (of {sum(n for (j, _), n in counts.items() if j == judge)}).")
    table3 = next((rows for heading, rows in found.items() if heading.startswith("Table 3 analogue")), None)
    ordering = [row for row in table3 or [] if "claim" in row]
    if ordering:
        lines += [
            "",
            "### Table 3, across models (from report.md)",
            "",
            "| claim | " + " | ".join(judges) + " |",
        ]
        lines.append("|---|" + "---|" * len(judges))
        by_claim: dict[str, dict[str, str]] = {}
        for row in ordering:
            by_claim.setdefault(row["claim"], {})[row["judge"]] = (
                f"{_outcome(row['outcome'])} ({row['Gen PPL a - b'].rsplit(' (', 1)[0]})"
            )
        for claim, cells in by_claim.items():
            lines.append(f"| {claim} | " + " | ".join(cells.get(j, "-") for j in judges) + " |")
    windows, heading = [], ""
    for line in report.splitlines():
        if line.startswith("### "):
            heading = line[4:].strip()
        elif line.startswith("Does the window help"):
            windows.append(f"- {heading}: {line}")
    if windows:
        lines += ["", "### Long row (from report.md)", "", *windows]
    return [*lines, "", END]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "directory", type=Path, help="a dind reproduce output directory with report.md and README.md"
    )
    args = parser.parse_args(argv)
    report, readme = args.directory / "report.md", args.directory / "README.md"
    block = "\n".join(summary(report.read_text()))
    text = readme.read_text() if readme.is_file() else f"# {args.directory.name}\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        print(f"{readme}: add the two markers where the computed part goes:\n{BEGIN}\n{END}", file=sys.stderr)
        return 1
    head, rest = text.split(BEGIN, 1)
    readme.write_text(head + block + rest.split(END, 1)[1])
    print(f"updated {readme}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
