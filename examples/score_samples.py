"""Generate with a DiD plan and score the samples' Gen PPL: the library calls behind `dind sweep`.

    python examples/score_samples.py --model /path/to/bd3lm-owt-block_size4 --judge /path/to/gpt2-large \
        --plan "4 -> 1024@0.5" --length 1024 --num-samples 8

Stage 1's drafts are in the trace, so one run scores the draft and the refined samples.
"""

from __future__ import annotations

import argparse
import functools

import torch

import dind
from dind.data.tokenizers import TOKENIZERS
from dind.eval import decode_for_judge, evaluate, load_judge
from dind.sampling import GenerateOptions, generate
from dind.sampling.plan import StagePlan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="micro", help="preset name or checkpoint directory")
    parser.add_argument("--tokenizer", default="gpt2", help="the model's tokenizer (gpt2 or bytes)")
    parser.add_argument("--judge", required=True, help="local directory of a causal LM (GPT-2 Large)")
    parser.add_argument("--plan", default="4 -> 1024@0.5")
    parser.add_argument("--length", type=int, default=1024)
    parser.add_argument("--num-samples", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = TOKENIZERS.build(args.tokenizer)
    model = dind.load(args.model, device=device)  # a preset name gives seeded random weights
    judge = load_judge(args.judge)
    result = generate(
        model,
        StagePlan.parse(args.plan),
        length=args.length,
        batch_size=args.num_samples,
        seed=args.seed,
        options=GenerateOptions(bos_id=tokenizer.eos_id, progress=True),
    )

    # EOS (BOS included) reaches the judge as its own EOS string: boundaries stay, and are not scored
    decode = functools.partial(
        decode_for_judge, tokenizer.decode, eos_id=tokenizer.eos_id, eos_text=judge.tokenizer.eos_token
    )
    for name, tokens in (("stage 1 draft", result.trace[0].tokens), ("final", result.tokens)):
        rows = tokens.tolist()
        scores = evaluate(judge, [decode(row) for row in rows], tokens=rows, max_length=args.length)
        print(
            f"{name:>14}: Gen PPL {scores['gen_ppl']:.2f}  corpus PPL {scores['corpus_ppl']:.2f}  "
            f"entropy {scores['unigram_entropy']:.2f}  repeated 4-grams {scores['repeated_4gram_rate']:.3f}"
        )
    print(
        f"NFE per sample: {result.nfe.float().mean():.0f} "
        f"({', '.join(f'{stage.nfe.float().mean():.0f}' for stage in result.trace)} by stage)"
    )
    print(decode(result.tokens[0].tolist())[:500])


if __name__ == "__main__":
    main()
