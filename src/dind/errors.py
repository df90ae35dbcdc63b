"""The errors a user can cause, as opposed to bugs.

The ``dind`` command turns any ``UserError`` (and the standard ``ValueError``, ``TypeError``,
``OSError`` that validators and the file system raise) into one line on stderr and a non-zero
exit; a traceback is printed only with ``--debug``. Library code raises these with a message that
names the parameter, the rule and the value, and says what to do where that is not obvious.
"""

from __future__ import annotations


class UserError(Exception):
    """Base class: a bad input or an unusable file, reported to the user in one line."""


class ConfigError(UserError, ValueError):
    """A configuration file, override or argument breaks a rule."""


class OutputExistsError(UserError, FileExistsError):
    """An output would overwrite earlier results; pass --overwrite (or --resume) to allow it."""


class RunLockedError(UserError, RuntimeError):
    """Another process holds the lock of a run directory or of an output file (it is writing it)."""


class DiskFullError(UserError, OSError):
    """The disk filled up while an output or a checkpoint was written (what was there before is intact)."""


class SaveFailedError(UserError, RuntimeError):
    """Under DDP/FSDP: the main process failed to write a checkpoint (it raises its own error)."""


class NonFiniteError(UserError, FloatingPointError):
    """A model produced NaN or infinite numbers (logits, loss or gradient norm)."""


class DataFormatError(UserError, ValueError):
    """A data file (JSONL samples, results, tokens) is malformed; the message names the file and line."""
