"""Checks of ``generate``'s arguments: each error names the parameter, the rule and the value.

A prompt is frozen text: token ids of the model's vocabulary, never MASK (a frozen MASK would
be fed to the model as content and never filled). Seeds are 64-bit unsigned integers, the range a
``torch.Generator`` takes. The checks run once per call, before any model forward; the id checks
are vectorised and look for the offending position only when one exists.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from dind.sampling.options import GenerateOptions
from dind.sampling.plan import StagePlan

Prompt = Tensor | Sequence[int] | Sequence[Sequence[int]] | None

# far beyond any run (BD3-LM: L up to 2048 x batch 300), refused before a tensor is allocated
MAX_LENGTH, MAX_BATCH, MAX_POSITIONS = 2**22, 2**20, 2**26
SEED_LIMIT = 2**64  # torch.Generator.manual_seed takes 0 <= seed < 2**64


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_positive_int(name: str, value: Any) -> int:
    """``value`` as an int, if it is an integer >= 1 (bool refused); else TypeError/ValueError."""
    if not _is_int(value):
        raise TypeError(f"{name} must be a positive integer (got {type(value).__name__} {value!r})")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer (got {value!r})")
    return int(value)


def check_token_id(name: str, value: Any, vocab_size: int, *, optional: bool = True) -> int | None:
    """A token id in [0, vocab_size) (or None when ``optional``)."""
    if value is None and optional:
        return None
    if not _is_int(value):
        raise TypeError(f"{name} must be an integer token id (got {type(value).__name__} {value!r})")
    if not 0 <= value < vocab_size:
        raise ValueError(f"{name} must be in [0, vocab_size={vocab_size}) (got {value})")
    return int(value)


def check_seed(seed: Any, batch_size: int) -> int | list[int] | None:
    """None, one int in [0, 2**64), or one such int per row."""
    if seed is None:
        return None
    if _is_int(seed):
        _seed_in_range(seed, "seed")
        return int(seed)
    if isinstance(seed, (str, bytes)) or not isinstance(seed, Sequence | Tensor):
        raise TypeError(
            "seed must be an int in [0, 2**64), a sequence of them, or None "
            f"(got {type(seed).__name__} {seed!r})"
        )
    seeds = seed.tolist() if isinstance(seed, Tensor) else list(seed)
    for row, value in enumerate(seeds):
        if not _is_int(value):
            raise TypeError(f"seed[{row}] must be an int (got {type(value).__name__} {value!r})")
        _seed_in_range(value, f"seed[{row}]")
    if len(seeds) != batch_size:
        raise ValueError(
            f"seed must be an int or one int per row (got {len(seeds)} seeds, batch_size {batch_size})"
        )
    return [int(value) for value in seeds]


def _seed_in_range(value: int, name: str) -> None:
    if not 0 <= value < SEED_LIMIT:
        raise ValueError(f"{name} must be in [0, 2**64) (got {value})")


def check_prompt(prompt: Any, *, vocab_size: int, mask_id: int) -> Tensor | None:
    """The prompt as a (prompt_length,) or (rows, prompt_length) long tensor on the CPU, or None.

    Refused: str, floats and bools, ragged rows, other dimensions, negative ids, ids >= vocab_size
    and the MASK id, each with the offending row and position.
    """
    if prompt is None:
        return None
    ids = _as_id_tensor(prompt)
    if ids.dim() not in (1, 2):
        raise ValueError(
            f"prompt must be (prompt_length,) or (batch, prompt_length) (got shape {tuple(ids.shape)})"
        )
    _check_ids(ids, vocab_size=vocab_size, mask_id=mask_id)
    return ids


def _as_id_tensor(prompt: Any) -> Tensor:
    if isinstance(prompt, (str, bytes)):
        raise TypeError(
            f"prompt must be token ids, not {type(prompt).__name__} {prompt[:20]!r}; "
            "encode the text with a tokenizer"
        )
    if isinstance(prompt, Tensor):
        if prompt.dtype == torch.bool or prompt.is_floating_point() or prompt.is_complex():
            raise TypeError(f"prompt must hold integer token ids (got a {prompt.dtype} tensor)")
        return prompt.detach().to("cpu", torch.long)
    if not isinstance(prompt, Sequence):
        if hasattr(prompt, "tolist"):  # numpy arrays
            return _as_id_tensor(torch.as_tensor(prompt))
        raise TypeError(f"prompt must be a tensor or a list of token ids (got {type(prompt).__name__})")
    nested = [isinstance(item, Sequence | Tensor) and not isinstance(item, str) for item in prompt]
    if any(nested) and not all(nested):
        raise ValueError("prompt must be a list of ids or a list of rows, not a mix of both")
    rows = [list(row.tolist() if isinstance(row, Tensor) else row) for row in prompt] if any(nested) else None
    for r, row in enumerate(rows if rows is not None else [list(prompt)]):
        for p, value in enumerate(row):
            if isinstance(value, Sequence | Tensor) and not isinstance(value, str):
                raise ValueError(
                    "prompt must be (prompt_length,) or (batch, prompt_length) (got a list nested deeper)"
                )
            if not _is_int(value):
                where = f"row {r}, position {p}" if rows is not None else f"position {p}"
                raise TypeError(
                    f"prompt must hold integer token ids (got {type(value).__name__} {value!r} at {where})"
                )
    if rows is None:
        return torch.tensor(list(prompt), dtype=torch.long).reshape(-1)
    lengths = [len(row) for row in rows]
    if len(set(lengths)) > 1:
        r = next(i for i, n in enumerate(lengths) if n != lengths[0])
        raise ValueError(
            "prompt rows must all have the same length "
            f"(row 0 has {lengths[0]} ids, row {r} has {lengths[r]})"
        )
    return torch.tensor(rows, dtype=torch.long).reshape(len(rows), lengths[0] if rows else 0)


def _check_ids(ids: Tensor, *, vocab_size: int, mask_id: int) -> None:
    for bad, rule in (
        (ids < 0, "negative id"),
        (ids >= vocab_size, f"id outside the vocabulary [0, vocab_size={vocab_size})"),
        (ids == mask_id, f"the MASK id ({mask_id}); a prompt is frozen text and cannot hold MASK"),
    ):
        if bool(bad.any()):
            first = bad.nonzero()[0].tolist()
            where = f"row {first[0]}, position {first[1]}" if ids.dim() == 2 else f"position {first[0]}"
            raise ValueError(f"prompt holds {rule}: {int(ids[tuple(first)])} at {where}")


def check_prompt_fits(prefix_length: int, length: int, *, bos: bool) -> None:
    """At least one position must be left to generate after the frozen prefix."""
    if prefix_length >= length:
        raise ValueError(
            f"prompt is too long: {prefix_length} frozen tokens{' (BOS included)' if bos else ''} "
            f"leave nothing to generate in length {length}"
        )


def check_generate_arguments(
    model: Any, plan: Any, *, length: Any, batch_size: Any, prompt: Any, seed: Any, bos_id: int | None
) -> tuple[Tensor | None, int | list[int] | None]:
    """Every check of ``generate``'s arguments; returns the checked (prompt, seed)."""
    for attribute in ("logits", "vocab_size", "mask_id"):
        if not hasattr(model, attribute):
            raise TypeError(
                f"model must be a Denoiser (logits, vocab_size, mask_id) (got {type(model).__name__})"
            )
    check_eval_mode(model)
    if not isinstance(plan, StagePlan):
        hint = "; parse plan text with StagePlan.parse(text)" if isinstance(plan, str) else ""
        raise TypeError(f"plan must be a StagePlan (got {type(plan).__name__} {plan!r}){hint}")
    for name, value, limit in (("length", length, MAX_LENGTH), ("batch_size", batch_size, MAX_BATCH)):
        if check_positive_int(name, value) > limit:
            raise ValueError(f"{name} must be <= {limit:,} (got {value})")
    if length * batch_size > MAX_POSITIONS:
        raise ValueError(
            f"batch_size x length must be <= {MAX_POSITIONS:,} positions per call "
            f"(got {batch_size} x {length}); generate in several calls"
        )
    if check_token_id("bos_id", bos_id, model.vocab_size) == model.mask_id:
        raise ValueError(f"bos_id must not be the MASK id (got bos_id {bos_id} == mask_id {model.mask_id})")
    return check_prompt(prompt, vocab_size=model.vocab_size, mask_id=model.mask_id), check_seed(
        seed, batch_size
    )


def check_eval_mode(model: Any) -> None:
    """Refuse a model whose training-mode layers would change its outputs: a dropout layer with
    p > 0 in training mode makes every sample irreproducible (the seeds no longer determine them).
    Refused rather than switched, so the caller's module is never changed behind its back."""
    if not isinstance(model, torch.nn.Module):
        return
    for name, module in model.named_modules():
        if module.training and isinstance(module, torch.nn.modules.dropout._DropoutNd) and module.p > 0:
            raise ValueError(
                f"model is in training mode with dropout p={module.p} active at {name or 'the model'!r} "
                "(samples would not be reproducible from their seeds): call model.eval() before generate"
            )


def prompt_prefix(prompt: Prompt, bos_id: int | None, batch_size: int, device: torch.device) -> Tensor:
    """(batch, prompt_length) long: [BOS] + prompt for every row (prompt_length may be 0)."""
    ids = torch.as_tensor(prompt if prompt is not None else [], dtype=torch.long, device=device)
    if ids.dim() == 1:
        ids = ids[None, :].expand(batch_size, -1)
    if ids.dim() != 2 or ids.shape[0] != batch_size:
        raise ValueError(
            f"prompt must be (prompt_length,) or (batch, prompt_length) with batch={batch_size} "
            f"(got {tuple(ids.shape)})"
        )
    if bos_id is not None:
        ids = torch.cat([torch.full((batch_size, 1), bos_id, dtype=torch.long, device=device), ids], dim=1)
    return ids.contiguous()


def frozen_prefix_length(scores: Tensor) -> int:
    """The number of frozen (BOS, prompt) positions of a result: its +inf scores, which must be the
    same prefix of every row."""
    frozen = torch.isposinf(scores)
    prompt_length = int(frozen[0].sum())
    if not bool(frozen[:, :prompt_length].all()) or bool(frozen[:, prompt_length:].any()):
        raise ValueError(
            "the result's +inf scores must be the same prefix of every row (got another pattern)"
        )
    return prompt_length


def checked_options(options: GenerateOptions | None) -> GenerateOptions:
    if options is None:
        return GenerateOptions()
    if not isinstance(options, GenerateOptions):
        raise TypeError(f"options must be a GenerateOptions or None (got {type(options).__name__})")
    return options
