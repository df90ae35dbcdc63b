"""dind side by side with BD3-LM's reference code (kuleshov-group/bd3lms), same weights, CPU, fp32.

    python benchmarks/bd3lm_side_by_side.py --bd3lms /path/to/bd3lms [--preset tiny,bd3lm-110m]
        [--rounds 5] [--out benchmarks/results/bd3lm-side-by-side.md]

``--bd3lms``: a work tree of kuleshov-group/bd3lms; without it (or when it holds no
``diffusion.py`` / ``models/dit.py``) the script prints one line and exits 0. Their code is imported
from there at run time, never copied; it needs ``omegaconf``, ``hydra-core`` and ``lightning``
(``pip install omegaconf hydra-core lightning``; not dind dependencies). Patched at run time:
stub modules ``dataloader`` (it needs ``datasets``) and ``timm.scheduler`` (an LR scheduler their
``utils`` imports); ``metrics.Metrics`` (it downloads GPT-2 Large's tokenizer) is a no-op;
``DIT.reset_kv_cache`` takes the batch-size argument their sampler passes and allocates the cache
with the weights' device and dtype (theirs: CUDA, bf16).

dind's DiT is built with random weights, saved with ``save_pretrained`` and loaded into their
``Diffusion`` (strict); a parity check compares the two backbones' training logits first. Then,
each measurement interleaved A (BD3-LM) B (dind) for ``--rounds`` rounds, 1 torch thread, fp32:
- training forward: their backbone over [x_t ; x_0] with their block-diffusion mask vs
  ``DiT.training_logits`` (with dind's mask cache), eval mode, no grad;
- training step: each side's own loss (their ``Diffusion._loss``; dind's ``Objective``), backward,
  clip 1.0, AdamW (theirs: ``torch.optim.AdamW`` as their ``configure_optimizers`` builds it;
  dind's ``build_adamw``), dropout 0.1;
- stage-1 sampling, block 4, KV cache, nucleus 0.9: batch 1 with first-hitting (their Gen PPL
  sampler) vs plan ``4``; batch 8 with their DDPM caching update, 4 steps per block (their
  first-hitting takes batch 1 only) vs plan ``4{unmasking=ancestral}``.
Ratio = dind / BD3-LM seconds per round (< 1: dind faster); median and range over rounds.
"""

from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")  # their sampler's progress bars

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402
from unittest import mock  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training_cpu import machine  # noqa: E402

import dind  # noqa: E402
from dind import models  # noqa: E402
from dind.attention.mask_cache import TrainingMaskCache  # noqa: E402
from dind.training import DiffusionForward, Objective, build_adamw  # noqa: E402
from dind.training.block_sizes import parse_block_sizes  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
BLOCK = 4
# preset: training (batch, length), sampling length, sampling batches, repeats per round (fwd, step)
SHAPES = {"tiny": ((8, 256), 256, (1, 8), (3, 2)), "bd3lm-110m": ((1, 1024), 1024, (), (1, 1))}


def import_bd3lms(root: Path) -> types.ModuleType:
    """Their ``diffusion`` module, imported from ``root``, with the run-time patches above."""
    sys.path.insert(0, str(root))
    sys.modules.setdefault("dataloader", types.ModuleType("dataloader"))
    scheduler = types.ModuleType("timm.scheduler")
    scheduler.CosineLRScheduler = type("CosineLRScheduler", (), {})
    sys.modules.setdefault("timm", types.ModuleType("timm"))
    sys.modules.setdefault("timm.scheduler", scheduler)
    warnings.filterwarnings("ignore", message=".*CUDA is not available.*")  # their autocast("cuda")
    import diffusion

    diffusion.metrics.Metrics = lambda config: None
    dit = diffusion.models.dit.DIT
    original = dit.reset_kv_cache

    def reset_kv_cache(self, eval_batch_size=None):
        weight, zeros = self.vocab_embed.embedding, torch.zeros
        assert eval_batch_size in (None, self.config.loader.eval_batch_size)
        like_weights = lambda *shape, **_: zeros(*shape, dtype=weight.dtype, device=weight.device)  # noqa: E731
        with mock.patch.object(torch, "zeros", like_weights):
            original(self)

    dit.reset_kv_cache = reset_kv_cache
    return diffusion


def bd3lm_model(diffusion, model, length: int, bos: int):
    """Their ``Diffusion`` (BD3-LM's config for OWT, ``algo=bd3lm``) in dind's model's shape."""
    c = model.config
    model_config = {"length": length, "hidden_size": c.hidden_dim, "cond_dim": c.cond_dim,
                    "n_heads": c.n_heads, "n_blocks": c.n_blocks, "dropout": c.dropout,
                    "tie_word_embeddings": False, "attn_backend": "sdpa"}  # fmt: skip
    algo = {"name": "bd3lm", "backbone": "dit", "parameterization": "subs", "time_conditioning": False,
            "T": 0, "causal_attention": False, "ignore_bos": True, "cross_attn": True, "var_min": True,
            "clip_search_delta": 0.05, "clip_search_widths": [], "fix_clipping": False, "sampler": "semi_ar",
            "mdlm_loss_scale": False}  # fmt: skip
    config = {
        "mode": "train", "seed": 0, "block_size": BLOCK, "model": model_config, "algo": algo,
        "training": {"ema": 0, "antithetic_sampling": True, "sampling_eps": 1e-3, "resample": False,
                     "sampling_eps_min": 1e-3, "sampling_eps_max": 1.0},
        "sampling": {"first_hitting": True, "kv_cache": True, "nucleus_p": 0.9, "var_length": False,
                     "num_sample_batches": 1},
        "loader": {"eval_batch_size": 1}, "noise": {"type": "loglinear"},
        "optim": {"lr": 3e-4, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0},
    }  # fmt: skip
    assert c.mask_token_id == c.vocab_size - 1  # theirs: MASK = the tokenizer's vocab size
    tokenizer = types.SimpleNamespace(
        vocab_size=c.mask_token_id, mask_token=None, bos_token_id=bos, eos_token_id=bos, pad_token_id=bos
    )
    return diffusion.Diffusion(diffusion.models.dit.omegaconf.OmegaConf.create(config), tokenizer)


def paired(name: str, sides: dict, rounds: int, repeats: int, extra: dict) -> dict:
    """One warm-up call per side, then ``rounds`` rounds of A (bd3lm) then B (dind); a side's time
    in a round is the median of ``repeats`` calls."""
    load_before = os.getloadavg()
    for call in sides.values():
        call()
    times = {side: [] for side in sides}
    for r in range(rounds):
        for side, call in sides.items():
            seconds = []
            for _ in range(repeats):
                begin = time.perf_counter()
                call()
                seconds.append(time.perf_counter() - begin)
            times[side].append(statistics.median(seconds))
        print(f"  {name} round {r}: " + ", ".join(f"{s} {t[-1]:.4f}s" for s, t in times.items()), flush=True)
    ratios = [d / b for b, d in zip(times["bd3lm"], times["dind"], strict=True)]
    return {
        "name": name, "rounds": rounds, "repeats": repeats, "seconds": times,
        "bd3lm_s": statistics.median(times["bd3lm"]), "dind_s": statistics.median(times["dind"]),
        "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
        "ratios": ratios, "load_before": load_before, "load_after": os.getloadavg(), **extra,
    }  # fmt: skip


def run_preset(diffusion, preset: str, rounds: int) -> dict:
    (batch, length), sample_length, sample_batches, (fwd_repeats, step_repeats) = SHAPES[preset]
    generator = torch.Generator().manual_seed(0)
    model = models.build(preset, init="random", generator=generator)
    bos = model.config.mask_token_id - 1  # byte vocabulary: EOS 256; GPT-2: 50256
    with tempfile.TemporaryDirectory() as tmp:
        models.save_pretrained(model, tmp)
        state = load_file(str(Path(tmp) / "model.safetensors"))
    ref = bd3lm_model(diffusion, model, length, bos)
    ref.load_state_dict(state, strict=True)
    model.eval()
    ref.eval()

    clean = torch.randint(0, bos + 1, (batch, length), generator=generator)
    clean[:, 0] = bos
    noisy = torch.where(torch.rand(batch, length, generator=generator) < 0.5, model.mask_id, clean)
    noisy[:, 0] = bos
    sigma, masks = torch.zeros(batch), TrainingMaskCache()
    with torch.no_grad():
        theirs = ref.backbone(torch.cat((noisy, clean), 1), sigma)
        ours = model.training_logits(noisy, clean, BLOCK, masks=masks)
    parity, scale = (theirs - ours).abs().max().item(), ours.abs().max().item()
    print(f"{preset}: parity max |logit diff| {parity:.3e} (largest |logit| {scale:.2f})", flush=True)
    report = {"preset": preset, "parameters": sum(p.numel() for p in model.parameters()),
              "parity_max_abs_diff": parity, "logit_max_abs": scale, "results": []}  # fmt: skip

    @torch.no_grad()
    def forward_bd3lm():
        ref.backbone(torch.cat((noisy, clean), 1), sigma)

    @torch.no_grad()
    def forward_dind():
        model.training_logits(noisy, clean, BLOCK, masks=masks)

    sides = {"bd3lm": forward_bd3lm, "dind": forward_dind}
    extra = {"shape": f"batch {batch}, L {length} ([x_t ; x_0]: {2 * length})"}
    report["results"].append(paired("training forward", sides, rounds, fwd_repeats, extra))

    for sample_batch in sample_batches:
        first_hitting, nfe = sample_batch == 1, {}

        def sample_bd3lm(sample_batch=sample_batch, first_hitting=first_hitting, nfe=nfe):
            ref.config.sampling.first_hitting = first_hitting
            ref.config.loader.eval_batch_size = sample_batch
            torch.manual_seed(0)
            np.random.seed(0)
            steps = 5000 if first_hitting else BLOCK  # 5000: their Gen PPL script's algo.T (an upper bound)
            x, nfe["bd3lm"] = ref._semi_ar_sampler(
                n_samples=sample_batch,
                num_steps=steps,
                num_strides=sample_length // BLOCK,
                seqlen=sample_length,
            )
            assert x is not None and not (x == model.mask_id).any()

        text = f"{BLOCK}{{top_p=0.9}}" if first_hitting else f"{BLOCK}{{top_p=0.9,unmasking=ancestral}}"
        plan, options = dind.StagePlan.parse(text), dind.GenerateOptions(bos_id=bos)

        def sample_dind(sample_batch=sample_batch, plan=plan, options=options, nfe=nfe):
            result = dind.generate(
                model, plan, length=sample_length, batch_size=sample_batch, options=options
            )
            nfe["dind"] = result.nfe.float().mean().item()
            nfe["dind_batch_forwards"] = sum(stage.forward_passes for stage in result.trace)

        rule = "first-hitting" if first_hitting else f"DDPM/ancestral, {BLOCK} steps/block"
        extra = {"shape": f"batch {sample_batch}, L {sample_length}, {rule}", "dind_plan": text, "nfe": nfe}
        sides = {"bd3lm": sample_bd3lm, "dind": sample_dind}
        report["results"].append(paired(f"sampling batch {sample_batch}", sides, rounds, 1, extra))

    model.train()
    ref.train()
    for block in ref.backbone.blocks:  # their training forward assumes no KV cache (sampling set one)
        block.kv_cache = None
    o = ref.config.optim
    their_optimizer = torch.optim.AdamW(
        ref.backbone.parameters(), lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps, weight_decay=o.weight_decay
    )
    forward = DiffusionForward(model)
    optimizer = build_adamw(model.named_parameters(), lr=3e-4)
    objective = Objective(parse_block_sizes(f"fixed:{BLOCK}"))
    attention_mask = torch.ones(batch, length)

    def step_bd3lm():
        ref._loss(clean, attention_mask).loss.backward()
        torch.nn.utils.clip_grad_norm_(ref.backbone.parameters(), 1.0)
        their_optimizer.step()
        their_optimizer.zero_grad(set_to_none=True)

    def step_dind():
        draw = objective.draw(clean, mask_id=model.mask_id, low=1e-3, high=1.0, generator=generator)
        objective.loss(forward, draw, mask_id=model.mask_id).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    sides = {"bd3lm": step_bd3lm, "dind": step_dind}
    extra = {"shape": f"batch {batch}, L {length}, dropout {model.config.dropout}"}
    report["results"].append(paired("training step", sides, rounds, step_repeats, extra))
    return report


NOTES = [
    "Notes:",
    "- Training forward: the same function (parity above), but their backbone runs the output layer "
    "on all 2L positions and then keeps the noisy half; dind's `training_logits` runs it on the noisy "
    "half only.",
    "- Training step: each side's own noise draw and loss (theirs: `Diffusion._loss`, the subs "
    "log-softmax over all noisy positions; dind: `Objective.loss`, cross-entropy on the masked "
    "positions). AdamW: theirs `torch.optim.AdamW` with its default implementation (for-loop on "
    "CPU), dind's `build_adamw` (`auto`: fused on CPU). Gradient clipping 1.0 on both, no EMA.",
    "- Sampling, batch 1: both first-hitting (one reveal per step, NFE = generated tokens). Batch 8: "
    "their first-hitting sampler takes batch 1 only (`.item()` on the per-row masked count), so "
    "their DDPM caching update with 4 steps per block runs instead, against dind's ancestral rule "
    "with 4 steps per block (reveal grids differ slightly: theirs t = linspace(1, 0, 4) with dt = "
    "1/4, dind's t = 1 - i/4). NFE: theirs counts batch steps that changed the batch; dind's is the "
    "mean per row (a row whose step revealed nothing reuses its p(x0)); in brackets dind's raw batch "
    "forward passes, cache appends (one per block) included. Neither side's NFE counts appends.",
    "- Their KV cache holds q, k and v for 1024 positions whatever L; each cached step copies the "
    "cached prefix, re-applies rotary to all of it and runs attention for every cached query, keeping "
    "the last block's rows (their `DDiTBlock.get_qkv` / `forward`): a step's cost grows with the "
    "square of the prefix length.",
    "- The machine is shared: absolute seconds move with the load average; the paired ratios are the result.",
]


def write_markdown(report: dict, path: Path) -> None:
    m = report["machine"]
    lines = [
        "# dind vs BD3-LM's reference code, side by side (CPU)",
        "",
        f"`python benchmarks/bd3lm_side_by_side.py {' '.join(report['argv'])}`; BD3-LM at commit "
        f"{report['bd3lms_commit']}, dind at {report['dind_commit']}.",
        "",
        f"Machine: {m['cpu']}, {m['cpu_count']} cores shared with other jobs, torch {m['torch']}, "
        f"{m['torch_threads']} torch thread, fp32. Load average (1/5/15 min) at start "
        f"{_load(report['load_before'])}, at end {_load(report['load_after'])}.",
        "",
        "Same weights on both sides (dind's random init, saved in BD3-LM's format, loaded strictly into "
        "their `Diffusion`). Each round runs A (BD3-LM) then B (dind); ratio = dind / BD3-LM seconds "
        "per round (< 1: dind faster), median and range over the rounds.",
    ]
    for preset in report["presets"]:
        lines += [
            "",
            f"## `{preset['preset']}` ({preset['parameters'] / 1e6:.1f}M parameters)",
            "",
            f"Parity: training logits over [x_t ; x_0] (eval mode), max |BD3-LM - dind| = "
            f"{preset['parity_max_abs_diff']:.2e} (largest |logit| {preset['logit_max_abs']:.2f}).",
            "",
            "| measurement | shape | rounds x calls | BD3-LM s | dind s | dind / BD3-LM | range "
            "| NFE BD3-LM / dind (dind batch forwards) | load before -> after |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in preset["results"]:
            n = r.get("nfe")
            nfe = f"{n['bd3lm']} / {n['dind']:g} ({n['dind_batch_forwards']})" if n else "-"
            lines.append(
                f"| {r['name']} | {r['shape']} | {r['rounds']} x {r['repeats']} | {r['bd3lm_s']:.3f} | "
                f"{r['dind_s']:.3f} | {r['ratio']:.3f} | {r['ratio_min']:.3f}-{r['ratio_max']:.3f} | "
                f"{nfe} | {_load(r['load_before'])} -> {_load(r['load_after'])} |"
            )
    path.write_text("\n".join([*lines, "", *NOTES, ""]))


def _commit(path: Path) -> str:
    """HEAD of the git checkout holding ``path``, "+ local changes" when its files differ from it."""
    git = ["git", "-C", str(path)]
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "."], capture_output=True, text=True).stdout
    return (head[:12] + (" + local changes" if dirty.strip() else "")) if head else "unknown"


def _load(values) -> str:
    return "/".join(f"{v:.2f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bd3lms", type=Path, help="a work tree of kuleshov-group/bd3lms")
    parser.add_argument("--preset", default="tiny", help=f"comma-separated, of {', '.join(SHAPES)}")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS / "bd3lm-side-by-side.md")
    args = parser.parse_args()
    root = args.bd3lms
    if root is None or not (root / "diffusion.py").is_file() or not (root / "models" / "dit.py").is_file():
        print(f"skipped: no BD3-LM work tree given (--bd3lms {root}: needs diffusion.py and models/dit.py)")
        return
    torch.set_num_threads(1)
    diffusion = import_bd3lms(root.resolve())
    report = {
        "argv": sys.argv[1:], "machine": machine(), "bd3lms_commit": _commit(root),
        "dind_commit": _commit(Path(dind.__file__).parent), "load_before": os.getloadavg(), "presets": [],
    }  # fmt: skip
    for preset in args.preset.split(","):
        report["presets"].append(run_preset(diffusion, preset, args.rounds))
    report["load_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    write_markdown(report, args.out)
    print(args.out.read_text())


if __name__ == "__main__":
    main()
