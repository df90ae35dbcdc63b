"""The ``dind`` command: train, sample, eval, nelbo, sweep, reproduce, demo, list.

Each subcommand is a module of this package (``dind.cli.train``, ``sample``, ``evaluate``,
``nelbo``, ``sweep``, ``reproduce``; and ``dind.demo``) exposing ``add_arguments(parser)`` and
``run(args) -> int``; what several share is in ``dind.cli.support``. This module only wires them;
the CLI (with config loading) is the one place where names become objects.

Three rules hold here for every subcommand:

- Startup stays light: a subcommand's module (and so torch) is imported only when that subcommand
  is parsed, so ``dind --help`` and a mistyped subcommand answer at once.
- Threads: when torch's CPU threads exceed the cores that other processes leave free (a shared
  machine: the load average, capped by the tasks running now), a one-line note on stderr suggests
  ``--threads`` (once per command; not when the user set --threads or OMP_NUM_THREADS).
- One error handler: every expected failure (``UserError``, ``ValueError``, ``TypeError``,
  ``OSError``, an unknown registry name, Ctrl-C) is one line on stderr,
  ``dind <subcommand>: error: <message>``, and a non-zero exit status (2: usage or configuration,
  1: anything else, 130: interrupted, 143: SIGTERM, which is handled like Ctrl-C). Anything else
  is reported as an internal error, also in one line. ``--debug`` (before or after the subcommand)
  re-raises instead, to show the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import pkgutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dind
from dind.cli.signals import Terminated, sigterm_like_ctrl_c
from dind.cli.support import positive_threads
from dind.errors import ConfigError, DataFormatError, UserError
from dind.locks import output_locks

# subcommand -> (module with add_arguments/run, help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "train": ("dind.cli.train", "train or fine-tune a model (mixed-scale block diffusion)"),
    "sample": ("dind.cli.sample", "generate text with a multi-stage (DiD) plan"),
    "eval": ("dind.cli.evaluate", "score samples: Gen PPL under a judge, unigram entropy"),
    "nelbo": (
        "dind.cli.nelbo",
        "likelihood: NELBO (nats/token) and perplexity bound on text, per block size",
    ),
    "sweep": ("dind.cli.sweep", "sweep stage-2 block size / remask ratio and plot Gen PPL"),
    "reproduce": ("dind.cli.reproduce", "the paper's tables (1-3, Figure 2) for models and a judge"),
    "demo": ("dind.demo", "offline demo: draft, remask, refine with the embedded tiny model"),
}
EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 1, 2, 130, 143


def all_registries() -> dict[str, Any]:
    """Every registry of the dind package (imports all of dind's modules once), by kind."""
    from dind.registry import registry_index

    for module in pkgutil.walk_packages(dind.__path__, prefix="dind."):
        if module.name.startswith("dind.cli") or module.name == "dind.__main__":
            continue
        importlib.import_module(module.name)
    return registry_index()


def _cmd_list(args: argparse.Namespace) -> int:
    from dind.shipped import describe

    for kind, registry in all_registries().items():
        print(f"{kind}: {', '.join(registry.names()) or '(none)'}")
    print(f"shipped models (--model, dind.load): {describe('model')}")
    print(f"shipped judges (--judge, dind.eval.load_judge): {describe('judge')}")
    return 0


class _LazySubcommands(argparse._SubParsersAction):
    """Subparsers whose arguments are added when their subcommand is parsed (``populate``)."""

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[no-untyped-def]
        chosen = self._name_parser_map.get(values[0])
        if chosen is not None:
            populate(chosen)
        super().__call__(parser, namespace, values, option_string)


def populate(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add a lazily built subparser's arguments (imports its module once); returns the parser."""
    module_name = getattr(parser, "dind_module", None)
    if module_name is not None:
        module = importlib.import_module(module_name)
        module.add_arguments(parser)
        parser.set_defaults(func=module.run)
        parser.dind_module = None  # type: ignore[attr-defined]
    return parser


def _add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # after the subcommand the options must not reset what was given before it: SUPPRESS defaults
    parser.add_argument(
        "--debug",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="show the full traceback of an error instead of one line",
    )
    parser.add_argument(
        "--plugin",
        dest="plugin" if top else "plugin_after",
        action="append",
        default=[] if top else argparse.SUPPRESS,
        metavar="MODULE_OR_PATH",
        help="import a module (dotted name or .py file) whose registrations take effect; repeatable",
    )
    parser.add_argument(
        "--threads",
        dest="threads" if top else "threads_after",
        type=positive_threads,
        default=None if top else argparse.SUPPRESS,
        metavar="N",
        help="CPU threads for torch (default: torch's, one per core); on a shared CPU, 1 is often "
        "several times faster",
    )


def _set_threads(threads: int | None) -> None:
    if threads is not None:
        import torch  # only when asked: the parser and --help stay light

        torch.set_num_threads(threads)


def thread_note(busy: float, cores: int, threads: int) -> str | None:
    """The note for a CPU that other work keeps busy: torch's ``threads`` exceed the cores left free
    (``cores`` minus ``busy``, the load of other processes, rounded to the nearest core), so its
    threads wait for each other at every op (measured: 2-5x slower); or None when they fit."""
    free = math.floor(cores - busy + 0.5)
    if threads <= 1 or threads <= free:
        return None
    suggested = max(1, free)
    return (
        f"dind: note: this CPU is shared (other processes' load {busy:.1f} on {cores} cores) and torch would "
        f"use {threads} threads, which then wait for each other (often several times slower): pass "
        f"--threads {suggested} (e.g. dind --threads {suggested} ...)"
    )


def busy_cores() -> float | None:
    """The load of other processes: the 1-minute load average, capped (on Linux) by the tasks running
    right now besides this one, so a job that just ended is not counted; None where unknown."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on this platform
        return None
    try:
        running = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return load
    return max(0.0, min(load, running - 1))


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may run on
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


def _warn_oversubscribed(command: str | None, threads: int | None) -> None:
    """Says ``thread_note`` once per command on stderr, unless the user chose the threads
    (--threads, OMP_NUM_THREADS) or the command does no numerical work (list)."""
    if command in (None, "list") or threads is not None or "OMP_NUM_THREADS" in os.environ:
        return
    busy = busy_cores()
    if busy is None:
        return
    import torch  # every subcommand but list imports it anyway

    note = thread_note(busy, _cores(), torch.get_num_threads())
    if note is not None:
        print(note, file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dind", description="Diffusion in Diffusion for block diffusion LMs"
    )
    _add_global_options(parser, top=True)
    parser.register("action", "parsers", _LazySubcommands)
    sub = parser.add_subparsers(dest="command", required=True, metavar="{list," + ",".join(SUBCOMMANDS) + "}")
    p = sub.add_parser("list", help="print every registry and its registered names")
    _add_global_options(p, top=False)
    p.set_defaults(func=_cmd_list)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        _add_global_options(p, top=False)
        p.dind_module = module_name  # type: ignore[attr-defined]
    return parser


def describe(error: BaseException) -> tuple[str, int]:
    """(one-line message, exit status) for an error that reached the command line."""
    if isinstance(error, Terminated):
        return "terminated (SIGTERM)", EXIT_TERMINATED
    if isinstance(error, KeyboardInterrupt):
        return "interrupted", EXIT_INTERRUPTED
    from dind.registry import RegistryError

    text = " ".join(str(error).split())
    if isinstance(error, (ConfigError, RegistryError)):
        return text, EXIT_USAGE
    if isinstance(error, UserError):
        return text or type(error).__name__, EXIT_ERROR
    if isinstance(error, OSError):
        return _os_message(error), EXIT_ERROR
    if isinstance(error, (ValueError, TypeError)) and not isinstance(error, DataFormatError):
        return text or type(error).__name__, EXIT_USAGE
    if type(error).__module__.split(".")[0] == "yaml":  # yaml.YAMLError: a config file's syntax
        return f"invalid YAML: {text}", EXIT_USAGE
    if type(error).__name__ == "OutOfMemoryError":
        first = str(error).splitlines()[0] if str(error) else ""
        return f"out of memory ({first}); try a smaller --batch-size or --length", EXIT_ERROR
    return (
        f"internal error: {type(error).__name__}: {text} "
        "(run again with --debug for the traceback; please report it)",
        EXIT_ERROR,
    )


def _os_message(error: OSError) -> str:
    if error.strerror and error.filename is not None:
        target = f"{error.filename}" + (f" -> {error.filename2}" if error.filename2 is not None else "")
        return f"{error.strerror}: {target}"
    return " ".join(str(error).split()) or type(error).__name__


def _load_plugins(specs: Sequence[str]) -> None:
    if not specs:
        return
    try:
        from dind.plugins import load_plugin
    except ModuleNotFoundError as error:
        if error.name != "dind.plugins":
            raise
        raise UserError("--plugin is not supported by this installation (no dind.plugins module)") from None
    for spec in specs:
        load_plugin(spec)


def _command_in(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (for the error prefix when parsing itself fails)."""
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token in ("--plugin", "--threads"):
            skip = True
        elif not token.startswith("-"):
            return token if token in SUBCOMMANDS or token == "list" else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    with sigterm_like_ctrl_c(), output_locks():  # outputs stay locked until the command ends
        return _main(argv)


def _main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command, debug = _command_in(argv), "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        command, debug = args.command, args.debug
        _load_plugins([*args.plugin, *getattr(args, "plugin_after", [])])
        threads = getattr(args, "threads_after", args.threads)
        _set_threads(threads)
        _warn_oversubscribed(command, threads)
        return int(args.func(args) or 0)
    except SystemExit:
        raise
    except BaseException as error:
        if debug or not isinstance(error, Exception | KeyboardInterrupt):
            raise
        message, status = describe(error)
        print(f"dind {command}: error: {message}" if command else f"dind: error: {message}", file=sys.stderr)
        return status
