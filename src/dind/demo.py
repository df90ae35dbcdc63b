"""``dind demo``: Diffusion in Diffusion end to end, offline, on a CPU, in seconds.

Loads the tiny byte-level Shakespeare model shipped in ``dind/assets/tiny-shakespeare`` (the
shipped model ``demo``; or ``--model``), drafts a continuation of a frozen prompt with small
blocks, shows which positions the snapshot confidence sends back to MASK, refines them with a
large block, and prints each stage as it finishes, then the NFEs and timings of every stage.
Writes the final text, the full trace (JSON) and the trace picture (PNG) to ``--out``: all three
are checked before sampling starts (an existing one needs ``--overwrite``) and written atomically.

torch is imported only inside the functions that need it, so ``dind demo --help`` is instant.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dind.cli.support import load_model, positive_int, resolve_device, seed_int
from dind.outputs import atomic_write, atomic_write_text, check_output
from dind.shipped import ASSETS

if TYPE_CHECKING:
    from torch import Tensor

PLACEHOLDER = "_"  # a remasked position in the printed drafts
EOS_MARK = "¶"
ASSET = "tiny-shakespeare"


def packaged_checkpoint() -> Path | None:
    """The shipped tiny checkpoint directory (``dind.load("demo")``), or None when the package holds none."""
    directory = ASSETS["demo"].path()
    if (directory / "config.json").is_file() and (directory / "model.safetensors").is_file():
        return directory
    return None


def load_demo_model(checkpoint: str | None, *, vocab_size: int, seed: int) -> tuple[Any, str]:
    """The model and a line describing it. ``checkpoint``: anything ``dind.load`` takes (a
    checkpoint or run directory, a shipped model's name). Without one, the shipped demo model; if
    the package holds none, a random-init "tiny" model (announced on stderr: its text is noise,
    but every stage of the pipeline still runs). Weights stored in bf16 compute in fp32 on a CPU
    (``dind.load``'s rule)."""
    import torch

    from dind.models import load

    directory = packaged_checkpoint()
    if checkpoint is not None:  # as dind sample's --model: dind.load, errors naming --model
        model, description = load_model(checkpoint, torch.device("cpu")), f"checkpoint {checkpoint}"
    elif directory is not None:
        model, description = load(directory), f"the shipped model {ASSET} ({directory})"
    else:
        print(
            "WARNING: no trained tiny checkpoint in dind/assets/tiny-shakespeare and no --model: "
            "using a RANDOMLY INITIALISED 'tiny' model; expect gibberish.",
            file=sys.stderr,
        )
        model = load("tiny", init="random", seed=seed, dropout=0.0)
        description = "random-init 'tiny' preset (no checkpoint)"
    if model.vocab_size != vocab_size:
        raise ValueError(
            f"model vocab_size must equal the bytes tokenizer's model vocabulary "
            f"(got {model.vocab_size}, {vocab_size})"
        )
    return model.eval(), description


def _printable(text: str) -> str:
    return "".join(c if c in "\n\t" or unicodedata.category(c)[0] != "C" else "·" for c in text)


def render(ids: Tensor, tokenizer: Any, *, hidden: Tensor | None = None) -> str:
    """Text of one row of token ids; ``hidden`` positions (and MASKs) print as ``PLACEHOLDER``,
    EOS as ``EOS_MARK``. Runs of visible ids decode together so multi-byte characters survive."""
    ids_list = ids.tolist()
    hide = hidden.tolist() if hidden is not None else [False] * len(ids_list)
    pieces: list[str] = []
    run: list[int] = []
    for token, hidden_here in zip(ids_list, hide, strict=True):
        if hidden_here or token in (tokenizer.mask_id, tokenizer.eos_id):
            pieces.append(_printable(tokenizer.decode(run)))
            pieces.append(EOS_MARK if token == tokenizer.eos_id and not hidden_here else PLACEHOLDER)
            run = []
        else:
            run.append(token)
    pieces.append(_printable(tokenizer.decode(run)))
    return "".join(pieces)


def _block(stage: Any, length: int) -> str:
    return f"{stage.block_size}" if stage.block_size is not None and stage.block_size < length else "global"


def stage_table(trace: Any, length: int) -> str:
    header = (
        f"{'stage':<6}{'block':>7}{'remask':>8}{'remasked':>10}{'NFE':>6}"
        f"{'forwards':>10}{'wall s':>9}{'model s':>9}"
    )
    lines = [header]
    for k, stage in enumerate(trace, start=1):
        lines.append(
            f"{k:<6}{_block(stage, length):>7}{stage.remask_ratio:>8.2f}{int(stage.remasked[0].sum()):>10}"
            f"{int(stage.nfe[0]):>6}{stage.forward_passes:>10}{stage.wall_time_s:>9.2f}"
            f"{stage.model_time_s:>9.2f}"
        )
    return "\n".join(lines)


def stage_report(result: Any, tokenizer: Any, index: int, *, length: int) -> str:
    """The printed story of stage ``index`` (0-based) of one sample: for a later stage, what it
    remasks in the previous draft first; then the stage's draft."""
    stage, sections = result.trace[index], []
    if index > 0:
        count = int(stage.remasked[0].sum())
        sections.append(
            f"== before stage {index + 1}: the {count} least confident positions "
            f"({stage.remask_ratio:g} of the generated ones) go back to MASK, shown as "
            f"{PLACEHOLDER} ==\n"
            + render(result.trace[index - 1].tokens[0], tokenizer, hidden=stage.remasked[0])
        )
    verb = "draft" if index == 0 else "refined"
    sections.append(
        f"== stage {index + 1}: {verb} with blocks of {_block(stage, length)} "
        f"({stage.wall_time_s:.1f} s) ==\n" + render(stage.tokens[0], tokenizer)
    )
    return "\n\n".join(sections)


def report(result: Any, tokenizer: Any, *, length: int) -> str:
    """Every stage's ``stage_report``."""
    return "\n\n".join(stage_report(result, tokenizer, k, length=length) for k in range(len(result.trace)))


def generate_stage_by_stage(model: Any, plan: Any, *, on_stage: Any, **arguments: Any) -> Any:
    """``generate(model, plan, **arguments)``, one stage at a time: stage 1 by ``generate``, each
    later one by ``continue_plan`` from the result so far (the same tokens as one call: every
    draw is a function of the row seed, stage, block, step and position). ``on_stage(result,
    index)`` is called as each stage finishes."""
    from dind.sampling import continue_plan, generate
    from dind.sampling.plan import StagePlan

    stages = list(plan)
    result = generate(model, StagePlan(stages[:1]), **arguments)
    on_stage(result, 0)
    for index in range(1, len(stages)):
        result = continue_plan(
            model, StagePlan(stages[: index + 1]), result, options=arguments.get("options")
        )
        on_stage(result, index)
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        "--checkpoint",
        dest="checkpoint",
        default=None,
        help="a byte-level model: a checkpoint or training run directory, or a shipped model's name "
        "(default: demo, the tiny Shakespeare model shipped in the package)",
    )
    parser.add_argument(
        "--prompt", default="ROMEO:", help="frozen text the sample starts with (default: ROMEO:)"
    )
    parser.add_argument(
        "--plan",
        default="4 -> 256@0.5",
        help='stage plan, e.g. "4 -> 256@0.5" or "4 -> 32@0.25 -> 256@0.5" (default: 4 -> 256@0.5)',
    )
    parser.add_argument(
        "--length", type=positive_int, default=256, help="sample length in bytes, prompt included (256)"
    )
    parser.add_argument("--seed", type=seed_int, default=0, help="sampling seed (default: 0)")
    parser.add_argument("--device", default="cpu", help="device (default: cpu)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("dind-demo-out"),
        help="output directory for sample.txt, trace.json, trace.png (default: ./dind-demo-out)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace sample.txt, trace.json, trace.png in --out"
    )


OUTPUT_FILES = ("sample.txt", "trace.json", "trace.png")


def run(args: argparse.Namespace) -> int:
    from dind.data.tokenizers import TOKENIZERS
    from dind.eval.plots import stage_trace_figure, trace_arrays
    from dind.sampling import GenerateOptions
    from dind.sampling.plan import StagePlan

    started = time.perf_counter()
    paths = [check_output(args.out / name, overwrite=args.overwrite, option="--out") for name in OUTPUT_FILES]
    tokenizer = TOKENIZERS.build("bytes")
    plan = StagePlan.parse(args.plan)
    model, description = load_demo_model(
        args.checkpoint, vocab_size=tokenizer.model_vocab_size, seed=args.seed
    )
    device = resolve_device(args.device)
    model = model.to(device)
    prompt = tokenizer.encode(args.prompt)
    print(f"dind demo: Diffusion in Diffusion with {description}")
    print(f"plan {args.plan!r}, length {args.length}, prompt {args.prompt!r} (frozen), seed {args.seed}\n")

    def on_stage(result: Any, index: int) -> None:  # printed as each stage finishes
        print(
            ("\n" if index else "") + stage_report(result, tokenizer, index, length=args.length), flush=True
        )

    result = generate_stage_by_stage(
        model, plan, on_stage=on_stage, length=args.length, prompt=prompt, seed=args.seed,
        options=GenerateOptions(device=device),
    )  # fmt: skip
    print("\n" + stage_table(result.trace, args.length))
    atomic_write_text(paths[0], tokenizer.decode(result.tokens[0].tolist()) + "\n")
    trace = {
        "plan": args.plan,
        "prompt": args.prompt,
        "model": description,
        **result.to_dict(),
        "stage_texts": [render(stage.tokens[0], tokenizer) for stage in result.trace],
    }
    atomic_write_text(paths[1], json.dumps(trace) + "\n")
    with atomic_write(paths[2], "wb") as handle:
        stage_trace_figure(*trace_arrays(result.trace)).savefig(
            handle, format="png", dpi=120, bbox_inches="tight"
        )
    picture = args.out / "trace.png"
    total_nfe = int(result.nfe[0])
    print(f"\ntotal NFE {total_nfe}; demo ran in {time.perf_counter() - started:.1f} s")
    print(f"wrote {args.out / 'sample.txt'}, {args.out / 'trace.json'} and {picture}")
    return 0
