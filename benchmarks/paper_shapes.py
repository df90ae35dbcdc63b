"""The paper's shapes end to end: the 110M BD3-LM backbone, GPT-2 BPE, L = 1024 and 2048.

    python benchmarks/paper_shapes.py                      # CPU: benchmarks/results/paper-shapes-cpu.md
    python benchmarks/paper_shapes.py --device cuda --full # GPU: BD3-LM's window rule, larger budgets

Parts, each timed, with the peak memory (CPU: max RSS of this process, and of the ``dind eval``
process for the judge; GPU: torch's peak allocated):

1. build: the ``bd3lm-110m`` preset (random weights: no hub here), saved in BD3-LM's checkpoint
   format and loaded back with ``dind.load``;
2. fine-tune: a few steps of ``configs/bd3lm-110m-finetune-owt.yaml`` (bimodal 4 / 1024) with the
   corpus swapped for local Shakespeare text, GPT-2 BPE, L = 1024, batch 1, from that checkpoint;
3. sample at L = 1024: ``4 -> L@0.5/N{unmasking=ancestral}`` (a cheap stage 2), NFE per stage;
4. sample at L = 2048 with the model's context 1024: the same plan in windows
   (``dind.sampling.windows``; on CPU the block stage's window moves every 512 positions,
   ``{slide=512}``, instead of BD3-LM's every block, which re-fills a 1020-position window 256 times);
5. judge: ``dind eval`` of the samples with a GPT-2-Large-shaped judge (36 x 1280, 774M
   parameters) built from a local config with RANDOM weights and the shipped GPT-2 tokenizer: it
   measures the pipeline's cost and shapes, not text quality.

Random weights everywhere: the numbers are seconds, NFEs and memory, never quality.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CORPUS = [ROOT / "data" / "shakespeare" / name for name in ("rape_of_lucrece.txt", "lovers_complaint.txt")]
LIMIT_GIB = 8.0
_PEAK_WRAPPER = """
import sys
from pathlib import Path
from dind.cli import main
code = main(sys.argv[2:])
lines = Path("/proc/self/status").read_text().splitlines()
hwm = [line.split()[1] for line in lines if line.startswith("VmHWM")]
Path(sys.argv[1]).write_text(hwm[0] if hwm else "nan")
sys.exit(code)
"""


def peak_gib(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def machine(device: str) -> str:
    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name()}, torch {torch.__version__}"
    cpu = platform.processor() or "CPU"
    if Path("/proc/cpuinfo").exists():
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]  # fmt: skip
        cpu = names[0] if names else cpu
    load = "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    threads = torch.get_num_threads()
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({threads} threads); {load}"


def build(work: Path, device: str) -> Path:
    from dind import models

    model = models.build("bd3lm-110m", init="random", generator=torch.Generator().manual_seed(0))
    models.save_pretrained(model, work / "init")
    return work / "init"


def fine_tune(init: Path, work: Path, device: str, steps: int) -> Path:
    from dind.training import TrainConfig

    corpus = "[" + ", ".join(str(path) for path in CORPUS) + "]"
    overrides = [
        f"model.init={init}",
        f"data.corpus={{name: text, paths: {corpus}}}",
        f"data.cache_dir={work / 'tokens'}",
        "data.validation_fraction=0.0",
        f"steps={steps}", "batch_size=1", "micro_batch_size=null", "optim.warmup_steps=1",
        "eval_every=null", "eval_at_start=false", "variance.enabled=false", "variance.at_validation=false",
        f"save_every={steps}", "keep_every=null", "distributed=none", f"device={device}",
        f"out_dir={work / 'run'}", "progress=false",
    ]  # fmt: skip
    config = TrainConfig.from_file(ROOT / "configs" / "bd3lm-110m-finetune-owt.yaml", overrides)
    trainer = config.build(overwrite=True)
    trainer.fit()
    from dind.training import find_checkpoint

    return find_checkpoint(work / "run")


def sample(checkpoint: Path, device: str, plan_text: str, length: int) -> dict:
    import warnings

    import dind
    from dind.data.tokenizers import TOKENIZERS
    from dind.sampling import GenerateOptions, StagePlan, generate

    model = dind.load(str(checkpoint), device=device)
    tokenizer = TOKENIZERS.build("gpt2")
    options = GenerateOptions(bos_id=tokenizer.eos_id)
    began = time.perf_counter()
    with torch.no_grad(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = generate(
            model, StagePlan.parse(plan_text), length=length, batch_size=1, seed=0, options=options
        )
    seconds = time.perf_counter() - began
    return {
        "plan": plan_text,
        "length": length,
        "seconds": round(seconds, 1),
        "stages": [
            {
                "block_size": stage.block_size,
                "nfe": int(stage.nfe[0]),
                "forward_passes": stage.forward_passes,
                "seconds": round(stage.wall_time_s, 1),
            }
            for stage in result.trace
        ],  # fmt: skip
        "warnings": [str(w.message)[:200] for w in caught],
        "record": {"tokens": result.tokens[0].tolist(), "text": tokenizer.decode(result.tokens[0].tolist())},
    }


def judge(work: Path, records: list[dict], device: str, layers: int) -> dict:
    from transformers import GPT2Config, GPT2LMHeadModel

    from dind.data.tokenizers import TOKENIZERS

    directory = work / "judge"
    config = GPT2Config(n_layer=layers, n_embd=1280, n_head=20, n_positions=1024, vocab_size=50257)
    began = time.perf_counter()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        GPT2LMHeadModel(config).save_pretrained(directory)
    TOKENIZERS.build("gpt2").hf_tokenizer().save_pretrained(directory)
    built = time.perf_counter() - began
    samples = work / "samples.jsonl"
    samples.write_text("".join(json.dumps(record) + "\n" for record in records))
    began = time.perf_counter()
    # its own process, as a user runs it; its peak is the VmHWM of its own memory map, read at its
    # exit (RUSAGE_CHILDREN would report this process's peak: a child starts as its copy)
    peak_file = work / "judge_peak_kib"
    command = [sys.executable, "-c", _PEAK_WRAPPER, str(peak_file), "eval", str(samples), "--judge",
               str(directory), "--tokenizer", "gpt2", "--judge-device", device,
               "--out", str(work / "eval.json")]  # fmt: skip
    code = subprocess.run(command, capture_output=True, text=True, check=False).returncode
    scored = time.perf_counter() - began
    own_peak = int(peak_file.read_text()) / 2**20 if peak_file.exists() else float("nan")
    result = json.loads((work / "eval.json").read_text()) if code == 0 else {}
    parameters = sum(p.numel() for p in GPT2LMHeadModel(config).parameters()) if layers < 36 else 774_030_080
    return {"layers": layers, "parameters": parameters, "build_seconds": round(built, 1),
            "eval_seconds": round(scored, 1), "exit": code, "gen_ppl": result.get("gen_ppl"),
            "process_peak_gib": own_peak, "num_scored_tokens": result.get("num_scored_tokens")}  # fmt: skip


def judge_alone(device: str, layers: int) -> dict:
    """The judge part on its own: two samples of random GPT-2 ids (BOS first), 1024 and 2048 tokens."""
    from dind.data.tokenizers import TOKENIZERS

    tokenizer, generator = TOKENIZERS.build("gpt2"), torch.Generator().manual_seed(0)
    records = []
    for length in (1024, 2048):
        ids = [50256, *torch.randint(0, 50256, (length - 1,), generator=generator).tolist()]
        records.append({"tokens": ids, "text": tokenizer.decode(ids[1:])})
    with tempfile.TemporaryDirectory() as scratch:
        return judge(Path(scratch), records, device, layers)


def run(args: argparse.Namespace) -> dict:
    out: dict = {"device": args.device, "machine": machine(args.device), "parts": {}}
    budget = 32 if args.full else args.steps_per_block
    plan_1024 = f"4 -> L@0.5/{budget}{{unmasking=ancestral}}"
    slide = "" if args.full else "{slide=512}"
    plan_2048 = f"4{slide} -> L@0.5/{budget}{{unmasking=ancestral}}"
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        began = time.perf_counter()
        init = build(work, args.device)
        out["parts"]["build"] = {
            "seconds": round(time.perf_counter() - began, 1),
            "peak_gib": peak_gib(args.device),
        }
        print(json.dumps({"build": out["parts"]["build"]}), flush=True)
        began = time.perf_counter()
        checkpoint = fine_tune(init, work, args.device, args.train_steps)
        seconds = round(time.perf_counter() - began, 1)
        out["parts"]["fine_tune"] = {
            "steps": args.train_steps,
            "seconds": seconds,
            "peak_gib": peak_gib(args.device),
        }
        print(json.dumps({"fine_tune": out["parts"]["fine_tune"]}), flush=True)
        records = []
        for name, plan, length in (("sample_1024", plan_1024, 1024), ("sample_2048", plan_2048, 2048)):
            part = sample(checkpoint, args.device, plan, length)
            records.append(part.pop("record"))
            out["parts"][name] = {**part, "peak_gib": peak_gib(args.device)}
            print(json.dumps({name: out["parts"][name]}), flush=True)
        out["parts"]["judge"] = {
            **judge(work, records, args.device, args.judge_layers),
            "peak_gib": peak_gib(args.device),
        }
        print(json.dumps({"judge": out["parts"]["judge"]}), flush=True)
    out["peak_gib"] = max(part["peak_gib"] for part in out["parts"].values())
    return out


def markdown(out: dict, command: str) -> str:
    parts = out["parts"]
    lines = [
        f"# The paper's shapes end to end ({out['device']})",
        "",
        f"`{command}`: the `bd3lm-110m` preset (random weights), GPT-2 BPE (the shipped files), "
        "a few fine-tuning steps of `configs/bd3lm-110m-finetune-owt.yaml` on local Shakespeare text, "
        "DiD samples at L = 1024 and at L = 2048 with the model's context of 1024 (windows), and "
        "`dind eval` with a GPT-2-Large-shaped judge with random weights. Seconds, NFEs and memory only: "
        "random weights say nothing about quality.",
        "",
        f"Machine: {out['machine']}.",
        "",
        "| part | what | seconds | peak memory (GiB) |",
        "|---|---|---|---|",
        f"| build | 110M preset, saved and loaded in BD3-LM's format | {parts['build']['seconds']} | "
        f"{parts['build']['peak_gib']:.2f} |",
        f"| fine-tune | {parts['fine_tune']['steps']} steps, batch 1, L = 1024, bimodal 4 / 1024 | "
        f"{parts['fine_tune']['seconds']} | {parts['fine_tune']['peak_gib']:.2f} |",
    ]
    for name in ("sample_1024", "sample_2048"):
        part = parts[name]
        stages = "; ".join(
            f"stage {i} (block {s['block_size'] or 'L'}): NFE {s['nfe']}, {s['forward_passes']} passes, "
            f"{s['seconds']} s"
            for i, s in enumerate(part["stages"], 1)
        )
        lines.append(f"| {name} | `{part['plan']}` at L = {part['length']}: {stages} | {part['seconds']} | "
                     f"{part['peak_gib']:.2f} |")  # fmt: skip
    j = parts["judge"]
    lines.append(
        f"| judge | `dind eval` of the 2 samples, GPT-2-Large shape ({j['layers']} x 1280, "
        f"{j['parameters']:,} parameters, random weights): built in {j['build_seconds']} s, "
        f"exit {j['exit']}, "
        f"{j['num_scored_tokens']} tokens scored | {j['eval_seconds']} | {j['peak_gib']:.2f} |"
    )
    verdict = "under" if out["peak_gib"] < LIMIT_GIB else "OVER"
    lines += [
        "",
        f"Peak memory of the whole run: {out['peak_gib']:.2f} GiB ({verdict} the {LIMIT_GIB:g} GiB limit).",
        "",
    ]
    warned = parts["sample_2048"]["warnings"]
    if warned:
        lines += [f'The L = 2048 run said: "{warned[0]}"', ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--full", action="store_true", help="GPU sizes: BD3-LM's window rule, 32 steps")
    parser.add_argument("--train-steps", type=int, default=2)
    parser.add_argument("--steps-per-block", type=int, default=8, help="stage-2 step budget (default 8)")
    parser.add_argument("--judge-layers", type=int, default=36, help="36: GPT-2 Large")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--judge-only", action="store_true",
        help="only the judge part, on two random GPT-2-token samples of 1024 and 2048 tokens: prints "
        "its JSON (seconds, its own process's peak memory) and writes nothing",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.judge_only:
        part = judge_alone(args.device, args.judge_layers)
        print(json.dumps(part))
        return 0 if part["process_peak_gib"] < LIMIT_GIB else 1
    out = run(args)
    suffix = "gpu" if args.device.startswith("cuda") else "cpu"
    path = args.out or RESULTS / f"paper-shapes-{suffix}.md"
    command = "python benchmarks/paper_shapes.py " + " ".join(argv if argv is not None else sys.argv[1:])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown(out, command.strip()))
    path.with_suffix(".json").write_text(json.dumps(out, indent=2))
    print(path.read_text())
    return 0 if out["peak_gib"] < LIMIT_GIB else 1


if __name__ == "__main__":
    raise SystemExit(main())
