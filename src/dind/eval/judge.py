"""Loading a Gen PPL judge (a ``transformers`` causal LM and its tokenizer), preferably offline.

The real setting is GPT-2 Large saved locally (``save_pretrained`` or a hub snapshot folder).
The shipped byte-level judges load by name (``dind.shipped``). A hub id (``owner/name``) is tried
only when it is neither a local path nor a shipped name, and a failure says how to fix it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from dind.errors import UserError
from dind.eval.genppl import Judge
from dind.models.sources import is_hub_id
from dind.shipped import describe, shipped_path

if TYPE_CHECKING:
    from dind.eval.kneser_ney import KneserNeyJudge


class JudgeLoadError(UserError, RuntimeError):
    """The judge could not be loaded (missing directory, no network for a hub id, bad files)."""


def load_judge(
    path_or_id: str | os.PathLike[str],
    *,
    device: str | None = None,
    batch_size: int = 8,
    window: int | None = None,
    stride: int | None = None,
) -> Judge | KneserNeyJudge:
    """A ``Judge`` from a local directory, a shipped judge's name (``judge-shakespeare``,
    ``judge-kn-shakespeare``: read from the package, never from a hub; a local path of the same
    name wins) or, failing those, an ``owner/name`` hub id; in fp32 on ``device``.

    ``device`` defaults to CUDA when available. ``window`` / ``stride``: see ``Judge``.
    A directory whose config says ``"dind_tokenizer": "bytes"`` (the shipped
    ``dind.assets/judge-shakespeare``) is a byte-level judge: no tokenizer files, ids = bytes
    (``dind.eval.byte_judge``), window = the context it was trained on (``dind_window``).
    A directory whose config says ``"dind_judge": "kneser_ney"`` (the shipped
    ``dind.assets/judge-kn-shakespeare``) is a byte n-gram judge (``dind.eval.kneser_ney``):
    it runs on the CPU with numpy and has no window, so ``device``, ``batch_size``, ``window``
    and ``stride`` do not apply to it.
    """
    from dind.eval.kneser_ney import KneserNeyJudge, is_kneser_ney_dir

    name = str(path_or_id)
    shipped = shipped_path(name, "judge", parameter="judge")
    if shipped is not None:
        name = str(shipped)
    elif not Path(name).expanduser().exists() and not is_hub_id(name):
        raise JudgeLoadError(
            f"judge must be a judge directory, a shipped judge ({describe('judge')}) or an 'owner/name' "
            f"hub id such as openai-community/gpt2-large (got {name!r}: no such directory, and none of "
            "the others)"
        )
    if is_kneser_ney_dir(Path(name).expanduser()):
        try:
            return KneserNeyJudge.load(Path(name).expanduser())
        except (OSError, ValueError, KeyError) as error:
            raise JudgeLoadError(f"could not load the Kneser-Ney judge from {name!r}: {error}") from error
    from transformers import AutoModelForCausalLM, AutoTokenizer  # heavy import, only when judging

    local = Path(name).expanduser()
    if local.is_dir():
        source, local_only = str(local), True
    elif local.exists():
        raise JudgeLoadError(
            f"judge must be a directory holding a causal LM and its tokenizer (got {name!r})"
        )
    else:
        source, local_only = name, False
    try:
        model = AutoModelForCausalLM.from_pretrained(source, local_files_only=local_only)
        if getattr(model.config, "dind_tokenizer", None) == "bytes":  # dind's own byte-level judge
            from dind.eval.byte_judge import ByteJudgeTokenizer

            tokenizer = ByteJudgeTokenizer()
            window = window if window is not None else getattr(model.config, "dind_window", None)
        else:
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
    except (OSError, ValueError) as error:
        where = "local directory" if local_only else "hub id (no local directory of that name)"
        raise JudgeLoadError(
            f"could not load the judge from {where} {name!r}: {error}\n"
            "Pass --judge a local directory with a causal LM saved by save_pretrained, e.g. GPT-2 Large: "
            "on a machine with network, "
            "AutoModelForCausalLM.from_pretrained('gpt2-large').save_pretrained(DIR) "
            "and AutoTokenizer.from_pretrained('gpt2-large').save_pretrained(DIR)."
        ) from error
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(device=device, dtype=torch.float32).eval()
    return Judge(
        model=model, tokenizer=tokenizer, device=device, batch_size=batch_size, window=window, stride=stride
    )
