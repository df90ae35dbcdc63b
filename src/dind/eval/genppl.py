"""Generative perplexity (Gen PPL): how likely a judge causal LM finds generated text.

The protocol (REFERENCE.md "Gen PPL"): decode samples to text, retokenise with the judge's
tokenizer, truncate to the generating model's length, run the judge in fp32 and score
``logits[:-1]`` against ``ids[1:]``. The first token is never a target and EOS targets are
excluded. Sequences longer than the judge's context are scored with overlapping windows
(``window`` tokens, advancing by ``stride``) so that each target is scored exactly once, with the
longest context available to it. BD3-LM's headline number is the mean of per-sample
perplexities; the token-weighted corpus perplexity and mean unigram entropy are reported too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from dind.errors import NonFiniteError
from dind.eval.entropy import mean, unigram_entropy
from dind.validation import optional_positive_int, positive_int

Window = tuple[int, int, int]  # (start, end, first target): feed ids[start:end], score targets >= first


def window_plan(length: int, *, window: int, stride: int) -> tuple[Window, ...]:
    """Windows covering a sequence of ``length`` ids so that each target 1..length-1 is scored once.

    Window k feeds ids[k*stride : k*stride + window] and scores the targets the previous window
    did not reach, so every target past the first window has at least ``window - stride`` ids of
    context. The first token is never a target.
    """
    if window < 2:
        raise ValueError(f"window must be >= 2 (got {window})")
    if not 1 <= stride <= window - 1:
        raise ValueError(f"stride must be in [1, window - 1] (got stride={stride}, window={window})")
    if length < 2:
        return ()
    windows: list[Window] = []
    scored_until = 1
    start = 0
    while scored_until < length:
        end = min(start + window, length)
        windows.append((start, end, scored_until))
        scored_until = end
        start += stride
    return tuple(windows)


@attrs.frozen
class GenPPLReport:
    """Gen PPL of a set of samples. ``sample_ppl`` is NaN for a sample with no scored target."""

    mean_sample_ppl: float  # mean over samples of exp(mean NLL of the sample): BD3-LM's number
    corpus_ppl: float  # exp(total NLL / total scored targets)
    mean_unigram_entropy: float  # nats, mean over samples of the entropy of their token histogram
    num_samples: int
    num_scored_tokens: int
    sample_ppl: tuple[float, ...] = attrs.field(repr=False)
    sample_entropy: tuple[float, ...] = attrs.field(repr=False)

    def summary(self) -> dict[str, float | int]:
        """The scalar fields (for printing and JSON)."""
        return {
            "gen_ppl": self.mean_sample_ppl,
            "corpus_ppl": self.corpus_ppl,
            "unigram_entropy": self.mean_unigram_entropy,
            "num_samples": self.num_samples,
            "num_scored_tokens": self.num_scored_tokens,
        }

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self, recurse=False) | {
            "sample_ppl": list(self.sample_ppl),
            "sample_entropy": list(self.sample_entropy),
        }


def report_from_nll(nll_sum: Tensor, count: Tensor, entropy_ids: Sequence[Sequence[int]]) -> GenPPLReport:
    """The Gen PPL report of per-sample summed NLLs and scored-target counts (any judge)."""
    if len(entropy_ids) != len(nll_sum):
        raise ValueError(
            f"entropy_ids must have one entry per sample (got {len(entropy_ids)}, {len(nll_sum)})"
        )
    bad = ~torch.isfinite(nll_sum)
    if bool(bad.any()):  # a NaN report would look like a result; the judge is broken, say so
        rows = bad.nonzero().flatten().tolist()
        raise NonFiniteError(
            f"the judge's loss is not finite ({float(nll_sum[rows[0]])}) for {len(rows)} of {len(nll_sum)} "
            f"sample(s), first sample {rows[0]}: check the judge's weights and dtype (no report written)"
        )
    sample_ppl = tuple(
        math.exp(s / c) if c > 0 else math.nan for s, c in zip(nll_sum.tolist(), count.tolist(), strict=True)
    )
    total = int(count.sum())
    entropies = tuple(unigram_entropy(seq) for seq in entropy_ids)
    return GenPPLReport(
        mean_sample_ppl=mean(sample_ppl),
        corpus_ppl=math.exp(float(nll_sum.sum()) / total) if total else math.nan,
        mean_unigram_entropy=mean(entropies),
        num_samples=len(entropy_ids),
        num_scored_tokens=total,
        sample_ppl=sample_ppl,
        sample_entropy=entropies,
    )


def _default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


class ScoresSamples:
    """``tokenize`` / ``score_ids`` / ``score_texts`` of a judge from its ``tokenizer`` and
    ``target_nll`` (the neural ``Judge`` and the Kneser-Ney judge share them)."""

    __slots__ = ()

    def tokenize(self, texts: Sequence[str], *, max_length: int | None = None) -> list[list[int]]:
        """Judge token ids of each text, truncated to ``max_length`` ids (the model length)."""
        if max_length is not None and max_length < 1:
            raise ValueError(f"max_length must be >= 1 or None (got {max_length})")
        encoded = self.tokenizer(list(texts))["input_ids"]
        return [list(ids[:max_length]) for ids in encoded]

    def score_ids(
        self,
        ids: Sequence[Sequence[int]],
        *,
        entropy_ids: Sequence[Sequence[int]] | None = None,
        progress: bool = False,
    ) -> GenPPLReport:
        """Gen PPL of samples already in judge token ids; entropy over ``entropy_ids`` if given
        (e.g. the generating model's own tokens, as BD3-LM does), else over the judge ids."""
        if entropy_ids is not None and len(entropy_ids) != len(ids):
            raise ValueError(
                f"entropy_ids must have one entry per sample (got {len(entropy_ids)}, {len(ids)})"
            )
        nll_sum, count = self.target_nll(ids, progress=progress)
        return report_from_nll(nll_sum, count, entropy_ids if entropy_ids is not None else ids)

    def score_texts(
        self,
        texts: Sequence[str],
        *,
        max_length: int | None = None,
        entropy_ids: Sequence[Sequence[int]] | None = None,
        progress: bool = False,
    ) -> GenPPLReport:
        """Retokenise ``texts`` with the judge's tokenizer (truncated to ``max_length``) and score them."""
        ids = self.tokenize(texts, max_length=max_length)
        return self.score_ids(ids, entropy_ids=entropy_ids, progress=progress)


def output_head(model: Any) -> torch.nn.Linear | None:
    """The vocabulary projection of a judge whose logits are exactly ``head(base_model(...)
    .last_hidden_state)``, so a caller can project one window at a time; None for any other model
    (its logits come from its own forward). Only GPT-2 is known to qualify: other families may
    scale or cap their logits after the head."""
    if getattr(getattr(model, "config", None), "model_type", None) != "gpt2":
        return None
    head = model.get_output_embeddings()
    return head if isinstance(head, torch.nn.Linear) else None


@attrs.frozen
class Judge(ScoresSamples):
    """A causal LM (a ``transformers`` model with its tokenizer) that scores text.

    ``window`` defaults to min(1024, the judge's context size), ``stride`` to window // 2.
    The model must already sit on ``device`` in fp32 (``load_judge`` does that).
    """

    model: Any
    tokenizer: Any
    device: str = attrs.field(factory=_default_device)
    batch_size: int = attrs.field(default=8, validator=positive_int)
    window: int | None = attrs.field(default=None, validator=optional_positive_int)
    stride: int | None = attrs.field(default=None, validator=optional_positive_int)

    @property
    def context_size(self) -> int | None:
        config = self.model.config
        return getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)

    def windowing(self) -> tuple[int, int]:
        """The (window, stride) in use, checked against the judge's context size."""
        context = self.context_size
        window = self.window if self.window is not None else min(1024, context or 1024)
        if context is not None and window > context:
            raise ValueError(f"window must be <= the judge's context size (got {window}, {context})")
        stride = self.stride if self.stride is not None else max(1, window // 2)
        return window, stride

    def settings(self) -> dict[str, Any]:
        """What a result should record about the judge: its scoring window and stride."""
        window, stride = self.windowing()
        return {"judge_kind": "causal_lm", "judge_window": window, "judge_stride": stride}

    def target_nll(self, ids: Sequence[Sequence[int]], *, progress: bool = False) -> tuple[Tensor, Tensor]:
        """Summed NLL (float64) and number of scored targets (long) per sample, both (samples,)."""
        window, stride = self.windowing()
        jobs = [
            (row, *w)
            for row, seq in enumerate(ids)
            for w in window_plan(len(seq), window=window, stride=stride)
        ]
        jobs.sort(key=lambda job: job[2] - job[1], reverse=True)  # similar lengths share a batch
        nll_sum = torch.zeros(len(ids), dtype=torch.float64)
        count = torch.zeros(len(ids), dtype=torch.long)
        eos = self.tokenizer.eos_token_id
        batches = range(0, len(jobs), self.batch_size)
        for begin in tqdm(batches, desc="judge", unit="batch", disable=not progress, leave=False):
            batch = jobs[begin : begin + self.batch_size]
            rows = torch.tensor([job[0] for job in batch])
            nll, scored = self._score_windows(
                [ids[row][start:end] for row, start, end, _ in batch],
                [first - start for _, start, _, first in batch],
                eos,
            )
            nll_sum.index_add_(0, rows, nll.double().cpu())
            count.index_add_(0, rows, scored.cpu())
        return nll_sum, count

    @torch.no_grad()
    def _score_windows(
        self, pieces: list[Sequence[int]], first_target: list[int], eos: int | None
    ) -> tuple[Tensor, Tensor]:
        width = max(len(piece) for piece in pieces)
        input_ids = torch.zeros(len(pieces), width, dtype=torch.long)
        present = torch.zeros(len(pieces), width, dtype=torch.bool)
        for i, piece in enumerate(pieces):
            input_ids[i, : len(piece)] = torch.as_tensor(piece, dtype=torch.long)
            present[i, : len(piece)] = True
        input_ids, present = input_ids.to(self.device), present.to(self.device)
        targets = input_ids[:, 1:]
        # one window at a time: the logits of a batch (GPT-2 Large, 8 windows of 1024: 1.6 GB), a
        # (batch, vocab, width) transpose or its log-softmax would each hold the whole batch's vocab
        head = output_head(self.model)
        if head is None:
            logits = self.model(input_ids=input_ids, attention_mask=present.long()).logits
            rows = (row[:-1] for row in logits)
        else:  # the final hidden states, projected to the vocabulary one window at a time
            out = self.model.base_model(input_ids=input_ids, attention_mask=present.long())
            rows = (head(row[:-1]) for row in out.last_hidden_state)
        pairs = zip(rows, targets, strict=True)
        nll = torch.stack([F.cross_entropy(row.float(), target, reduction="none") for row, target in pairs])
        position = torch.arange(1, width, device=self.device)
        scored = present[:, 1:] & (position >= torch.tensor(first_target, device=self.device)[:, None])
        if eos is not None:
            scored &= targets != eos
        return (nll * scored).sum(dim=1), scored.sum(dim=1)
