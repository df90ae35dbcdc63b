"""The ``dind`` command. Each subcommand lives in its own small function; names become objects here."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def _cmd_list(args: argparse.Namespace) -> int:
    from dind.registry import all_registries

    for kind, registry in all_registries().items():
        print(f"{kind}: {', '.join(registry.names()) or '(none)'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dind", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="print every registry and its registered names")
    p.set_defaults(func=_cmd_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
