"""Evaluation: Gen PPL under a judge causal LM, unigram entropy and repetition, sweeps and plots.

``load_judge(dir)`` -> ``Judge``; ``Judge.score_texts(texts)`` -> ``GenPPLReport``;
``evaluate(judge, texts, tokens=...)`` -> the dict ``dind eval`` writes.
``redraw_low_entropy(model, plan, result)``: BD3-LM's degenerate-sample rejection over a result. Plots live in
``dind.eval.plots`` and the stage-2 sweep in ``dind.eval.sweep`` (both import matplotlib).
"""

from dind.eval.entropy import batch_unigram_entropy, repeated_ngram_rate, text_stats, unigram_entropy
from dind.eval.genppl import GenPPLReport, Judge, window_plan
from dind.eval.judge import JudgeLoadError, load_judge
from dind.eval.rejection import low_entropy_rows, redraw_low_entropy
from dind.eval.report import decode_for_judge, evaluate, read_samples, write_samples

__all__ = [
    "GenPPLReport",
    "Judge",
    "JudgeLoadError",
    "batch_unigram_entropy",
    "decode_for_judge",
    "evaluate",
    "load_judge",
    "low_entropy_rows",
    "read_samples",
    "redraw_low_entropy",
    "repeated_ngram_rate",
    "text_stats",
    "unigram_entropy",
    "window_plan",
    "write_samples",
]
