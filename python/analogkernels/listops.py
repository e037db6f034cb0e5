"""ListOps generator with the Long Range Arena rules.

ListOps: Nangia & Bowman, "ListOps: a diagnostic dataset for latent tree
learning", NAACL Student Research Workshop (2018); the rules and the tokenisation
of Tay et al., "Long Range Arena: a benchmark for efficient Transformers", ICLR
(2021), as in GitHub google-research/long-range-arena
(``lra_benchmarks/data/listops.py``, ``lra_benchmarks/listops/input_pipeline.py``).

Operators MIN, MAX, MED (median, truncated to int), SM (sum mod 10) over the
digits 0–9, as prefix sequences ``[MAX 4 3 [MIN 2 3 ] 1 0 ]`` (closing bracket
written ``X`` in the token stream). A tree is grown from depth 1: below
``max_depth`` a uniform draw r decides (r > 0.25: a digit leaf, else an operator
with ``k ∈ [2, max_args]`` children); at ``max_depth`` every node is a leaf.
Trees whose length (tokens without parentheses) lies strictly inside
``(min_length, max_length)`` are kept, duplicates rejected. The LRA setting is
depth 10, 10 arguments, length window (500, 2000); :data:`REDUCED` is the
setting that trains on a 2-core CPU (depth 4, 5 arguments, window (8, 64)).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

__all__ = ["LRA", "REDUCED", "VOCAB", "ListOpsConfig", "evaluate", "generate", "tokenize"]

OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
#: Token ids: 0 is padding, then the operators, the closing "X", the digits.
VOCAB = {"<pad>": 0, **{op: i + 1 for i, op in enumerate(OPERATORS)}, "X": 5}
VOCAB.update({str(d): 6 + d for d in range(10)})


@dataclass(frozen=True)
class ListOpsConfig:
    """Generator settings (LRA: 10, 10, 500, 2000)."""

    max_depth: int = 10
    max_args: int = 10
    min_length: int = 500
    max_length: int = 2000

    def __post_init__(self) -> None:
        if self.max_depth < 1 or self.max_args < 2:
            raise ValueError("max_depth must be >= 1 and max_args >= 2")
        if not 0 <= self.min_length < self.max_length:
            raise ValueError("need 0 <= min_length < max_length")


LRA = ListOpsConfig()
REDUCED = ListOpsConfig(max_depth=4, max_args=5, min_length=8, max_length=64)


def _tree(rng: random.Random, depth: int, cfg: ListOpsConfig):
    r = rng.random() if depth < cfg.max_depth else 1.0
    if r > 0.25:
        return rng.randrange(10), 1
    op = rng.choice(OPERATORS)
    k = rng.randint(2, cfg.max_args)
    children, length = [], 2
    for _ in range(k):
        child, n = _tree(rng, depth + 1, cfg)
        children.append(child)
        length += n
    return (op, children), length


def evaluate(tree) -> int:
    """The value of a tree (an int leaf or ``(operator, children)``)."""
    if isinstance(tree, int):
        return tree
    op, children = tree
    values = [evaluate(c) for c in children]
    if op == "[MIN":
        return min(values)
    if op == "[MAX":
        return max(values)
    if op == "[MED":
        return int(np.median(values))
    return sum(values) % 10


def _tokens(tree) -> list[str]:
    if isinstance(tree, int):
        return [str(tree)]
    op, children = tree
    out = [op]
    for c in children:
        out.extend(_tokens(c))
    out.append("X")
    return out


def tokenize(tree, length: int) -> np.ndarray:
    """Token ids of a tree, cut or padded (with 0) to ``length``."""
    ids = [VOCAB[t] for t in _tokens(tree)][:length]
    return np.array(ids + [0] * (length - len(ids)), dtype=np.int64)


def generate(
    n: int, cfg: ListOpsConfig = REDUCED, *, seed: int = 0, pad_to: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unique accepted trees as token ids (n × pad_to, default
    ``cfg.max_length``) and labels (n,)."""
    rng = random.Random(seed)
    pad_to = cfg.max_length if pad_to is None else pad_to
    seen: set[tuple[str, ...]] = set()
    X, y = [], []
    attempts = 0
    while len(X) < n:
        attempts += 1
        if attempts > 1000 * n + 10000:
            raise RuntimeError(f"could not generate {n} unique trees with {cfg}")
        tree, length = _tree(rng, 1, cfg)
        if not cfg.min_length < length < cfg.max_length:
            continue
        key = tuple(_tokens(tree))
        if key in seen:
            continue
        seen.add(key)
        X.append(tokenize(tree, pad_to))
        y.append(evaluate(tree))
    return np.stack(X), np.array(y, dtype=np.int64)
