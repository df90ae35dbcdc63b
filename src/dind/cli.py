"""The ``dind`` command: train, sample, eval, demo, list.

Each subcommand's arguments and body live next to the code they drive (``<package>/command.py``
exposes ``add_arguments(parser)`` and ``run(args) -> int``); this module only wires them, and is
the one place (with config loading) where names become objects.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

# subcommand -> (module with add_arguments/run, help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "train": ("dind.training.command", "train or fine-tune a model (mixed-scale block diffusion)"),
    "sample": ("dind.sampling.command", "generate text with a multi-stage (DiD) plan"),
    "eval": ("dind.eval.command", "score samples: Gen PPL under a judge, unigram entropy"),
    "sweep": ("dind.eval.sweep_command", "sweep stage-2 block size / remask ratio and plot Gen PPL"),
    "demo": ("dind.demo", "offline demo: draft, remask, refine with the embedded tiny model"),
}


def _cmd_list(args: argparse.Namespace) -> int:
    from dind.registry import all_registries

    for kind, registry in all_registries().items():
        print(f"{kind}: {', '.join(registry.names()) or '(none)'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dind", description="Diffusion in Diffusion for block diffusion LMs"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="print every registry and its registered names")
    p.set_defaults(func=_cmd_list)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            continue
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(func=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
