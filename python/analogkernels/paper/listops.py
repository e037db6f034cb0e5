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

Two generators follow these rules. :func:`generate` grows one tree at a time in
Python (the reference; the reduced experiment's data). :func:`generate_vectorized`
grows tens of thousands of candidate trees at once in numpy, one token per step
for every tree still growing, and evaluates them bottom-up as the brackets
close; it draws its random numbers in another order, so the same seed gives
other trees than :func:`generate`, from the same distribution. It makes the
LRA's 100,000 trees in well under a minute; :func:`load_or_generate` caches its
output on disk with a SHA-256 checksum.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .. import datasets
from .._io import atomic_write

__all__ = [
    "LRA",
    "PAD",
    "REDUCED",
    "VOCAB",
    "ListOpsConfig",
    "evaluate",
    "generate",
    "generate_vectorized",
    "load_or_generate",
    "parse",
    "tokenize",
]

logger = logging.getLogger(__name__)

OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
#: Token ids: 0 is padding, then the operators, the closing "X", the digits.
VOCAB = {"<pad>": 0, **{op: i + 1 for i, op in enumerate(OPERATORS)}, "X": 5}
VOCAB.update({str(d): 6 + d for d in range(10)})
#: The padding token id.
PAD = VOCAB["<pad>"]


@dataclass(frozen=True)
class ListOpsConfig:
    """Generator settings (LRA: 10, 10, 500, 2000)."""

    max_depth: int = 10
    max_args: int = 10
    min_length: int = 500
    max_length: int = 2000

    def __post_init__(self) -> None:
        """Check the settings.

        Raises
        ------
        ValueError
            If ``max_depth < 1``, ``max_args < 2`` or not
            ``0 <= min_length < max_length``.
        """
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
    """Token ids of a tree, cut or padded (with :data:`PAD`) to ``length``."""
    ids = [VOCAB[t] for t in _tokens(tree)][:length]
    return np.array(ids + [PAD] * (length - len(ids)), dtype=np.int64)


def generate(
    n: int, cfg: ListOpsConfig = REDUCED, *, seed: int = 0, pad_to: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unique accepted trees as token ids and labels.

    Token ids are ``n × pad_to`` (default ``cfg.max_length``), labels ``(n,)``.
    """
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


def parse(ids: np.ndarray):
    """The tree of a token-id sequence (padding ignored).

    The inverse of :func:`tokenize` for a whole tree.

    Raises
    ------
    ValueError
        If the ids are not one well-formed prefix tree.
    """
    names = {v: k for k, v in VOCAB.items()}
    toks = [names[int(i)] for i in np.asarray(ids) if int(i) != PAD]
    pos = 0

    def node():
        nonlocal pos
        if pos >= len(toks):
            raise ValueError("token sequence ends inside a tree")
        t = toks[pos]
        pos += 1
        if t in OPERATORS:
            children = []
            while pos < len(toks) and toks[pos] != "X":
                children.append(node())
            if pos >= len(toks):
                raise ValueError(f"operator {t} is never closed")
            pos += 1
            return (t, children)
        if t == "X":
            raise ValueError("closing bracket without an operator")
        return int(t)

    tree = node()
    if pos != len(toks):
        raise ValueError(f"{len(toks) - pos} tokens after the end of the tree")
    return tree


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    return int(n)


def _grow_chunk(cfg: ListOpsConfig, seed: int, c: int, chunk: int):
    """Grow ``chunk`` candidate trees (chunk number ``c``).

    Returns the accepted ones' token rows (without padding) and labels, in
    candidate order.
    """
    width = max(cfg.max_length - 1, 1)
    frames = max(cfg.max_depth - 1, 1)  # open operators: at depths 1 .. max_depth - 1
    close_tok = VOCAB["X"]
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(c,)))
    buf = np.zeros((chunk, width), dtype=np.uint8)
    slot = np.arange(chunk)  # buffer row of each growing tree
    sp = np.zeros(chunk, dtype=np.int64)  # open operators
    ops = np.zeros((chunk, frames), dtype=np.int64)  # operator index per frame
    want = np.zeros((chunk, frames), dtype=np.int64)  # children still to come
    vals = np.full((chunk, frames, cfg.max_args), 127, dtype=np.int8)
    cnt = np.zeros((chunk, frames), dtype=np.int64)
    done_len = np.zeros(chunk, dtype=np.int64)
    done_val = np.full(chunk, -1, dtype=np.int64)
    alive = np.ones(chunk, dtype=bool)
    n_dead = 0
    for step in range(width):
        m = len(slot)
        if m == 0:
            break
        rows = np.arange(m)
        top = np.maximum(sp - 1, 0)
        closing = (sp > 0) & (want[rows, top] == 0)
        # One uniform draw per tree and step: u > 0.25 is a leaf whose digit
        # is the position of u in (0.25, 1); u <= 0.25 an operator whose
        # kind and child count come from the position of u in [0, 0.25]
        # (53-bit uniforms: the derived draws are uniform to ~2^-45).
        u = rng.random(m)
        is_op = ~closing & (sp + 1 < cfg.max_depth) & (u <= 0.25)
        is_leaf = ~closing & ~is_op
        tok = np.empty(m, dtype=np.uint8)
        value = np.full(m, -1, dtype=np.int64)  # a value handed to the parent
        li = np.flatnonzero(is_leaf)
        digit = np.minimum(((u[li] - 0.25) / 0.75 * 10).astype(np.int64), 9)
        digit = np.where(u[li] <= 0.25, (u[li] * 40).astype(np.int64) % 10, digit)
        tok[li] = VOCAB["0"] + digit
        value[li] = digit
        # Closing brackets: the node's value from its children.
        ci = np.flatnonzero(closing)
        if len(ci):
            ft = top[ci]
            v = vals[ci, ft].astype(np.int64)  # unused entries are 127
            k = cnt[ci, ft]
            srt = np.sort(v, axis=1)
            op = ops[ci, ft]
            ar = np.arange(len(ci))
            total = np.where(v < 127, v, 0).sum(axis=1) % 10
            med = (srt[ar, (k - 1) // 2] + srt[ar, k // 2]) // 2
            res = np.choose(op, [srt[:, 0], srt[ar, k - 1], med, total])
            tok[ci] = close_tok
            value[ci] = res
            vals[ci, ft] = 127
            cnt[ci, ft] = 0
            sp[ci] -= 1
        # Operators: a new frame.
        oi = np.flatnonzero(is_op)
        if len(oi):
            w = u[oi] * 4.0  # in [0, 1]: operator, then child count
            op_draw = np.minimum(w * len(OPERATORS), len(OPERATORS) - 1e-9)
            kind = op_draw.astype(np.int64)
            frac = op_draw - kind
            k_draw = 2 + np.minimum((frac * (cfg.max_args - 1)).astype(np.int64), cfg.max_args - 2)
            tok[oi] = 1 + kind
            ops[oi, sp[oi]] = kind
            want[oi, sp[oi]] = k_draw
            sp[oi] += 1
        buf[slot, step] = tok
        # Hand values to the parent frame (or finish the tree at the root).
        hv = np.flatnonzero(value >= 0)
        at_root = sp[hv] == 0
        parent = hv[~at_root]
        pt = sp[parent] - 1
        vals[parent, pt, cnt[parent, pt]] = value[parent]
        cnt[parent, pt] += 1
        want[parent, pt] -= 1
        fin = hv[at_root]
        fin = fin[done_len[slot[fin]] == 0]  # trees finished before stay finished
        done_len[slot[fin]] = step + 1
        done_val[slot[fin]] = value[fin]
        alive[slot[fin]] = False
        n_dead += len(fin)
        # A tree that cannot end below max_length (each child still to come
        # is at least one token, each open operator one closing bracket) is
        # dropped now rather than grown to max_length.
        if step % 16 == 15:
            hopeless = np.flatnonzero(step + 1 + want.sum(axis=1) + sp >= cfg.max_length)
            hopeless = hopeless[alive[slot[hopeless]]]
            alive[slot[hopeless]] = False
            n_dead += len(hopeless)
        # Finished trees keep running (their tokens land after their end and
        # are never read) until a quarter of the rows are finished: then the
        # state is compacted, so copying costs O(work done).
        if 4 * n_dead > m:
            keep = alive[slot]
            slot, sp, ops, want, vals, cnt = (a[keep] for a in (slot, sp, ops, want, vals, cnt))
            n_dead = 0
    ok = np.flatnonzero((done_len > cfg.min_length) & (done_len < cfg.max_length))
    return [buf[i, : done_len[i]].copy() for i in ok], done_val[ok].copy()


def generate_vectorized(
    n: int,
    cfg: ListOpsConfig = LRA,
    *,
    seed: int = 0,
    pad_to: int | None = None,
    chunk: int = 32768,
    workers: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unique accepted trees, grown ``chunk`` candidates at a time in numpy.

    The rules are those of :func:`generate` (and of the LRA): a node below
    ``max_depth`` is a digit leaf with probability 0.75, else an operator with
    a uniform number of children in ``[2, max_args]``; a tree is kept when its
    length lies strictly inside ``(min_length, max_length)``; duplicates are
    dropped. Every step appends one token to every tree still growing (an
    operator, a digit, or the closing ``X`` of a node whose children are all
    there, which also computes that node's value), so a tree that reaches
    ``max_length - 1`` tokens unfinished is dropped without growing further.

    Parameters
    ----------
    n : int
        Number of trees.
    cfg : ListOpsConfig
        Generator settings (default: the LRA's).
    seed : int
        Chunk ``c`` draws from ``numpy.random.default_rng`` seeded with
        ``SeedSequence(seed, spawn_key=(c,))``, so the result depends on
        ``seed`` and ``chunk`` only.
    pad_to : int, optional
        Width of the token array (default ``cfg.max_length``; longer trees are
        cut, as by :func:`tokenize`).
    chunk : int
        Candidate trees grown together (memory: about ``chunk × max_length``
        bytes per worker).
    workers : int
        Processes growing chunks in parallel. The result does not depend on
        it: chunks are grown ``workers`` at a time and their trees taken in
        chunk order.

    Returns
    -------
    tokens : ndarray of uint8, shape (n, pad_to)
        Token ids (:data:`VOCAB`), right-padded with 0.
    labels : ndarray of int64, shape (n,)
        The value of each tree (0–9).
    """
    n = _check_n(n)
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    pad_to = cfg.max_length if pad_to is None else int(pad_to)
    if pad_to < 1:
        raise ValueError(f"pad_to must be >= 1, got {pad_to}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    seen: set[bytes] = set()
    X_out: list[np.ndarray] = []
    y_out: list[int] = []
    c = 0
    with _pool(workers) as pool:
        while len(y_out) < n:
            if c > 10000 + 1000 * (n // chunk + 1):
                raise RuntimeError(f"could not generate {n} unique trees with {cfg}")
            batch = range(c, c + workers)
            c += workers
            if pool is None:
                results = [_grow_chunk(cfg, seed, b, chunk) for b in batch]
            else:
                results = list(
                    pool.map(
                        _grow_chunk, [cfg] * workers, [seed] * workers, batch, [chunk] * workers
                    )
                )
            for rows_, labels in results:
                for row, label in zip(rows_, labels, strict=True):
                    if len(y_out) == n:
                        break
                    key = row.tobytes()
                    if key in seen:
                        continue
                    seen.add(key)
                    out = np.full(pad_to, PAD, dtype=np.uint8)
                    w = min(pad_to, len(row))
                    out[:w] = row[:w]
                    X_out.append(out)
                    y_out.append(int(label))
    if n == 0:
        return np.full((0, pad_to), PAD, dtype=np.uint8), np.zeros(0, dtype=np.int64)
    return np.stack(X_out), np.array(y_out, dtype=np.int64)


#: The folder of :func:`load_or_generate`'s cache in the package's cache
#: (:func:`analogkernels.datasets.cache_dir`).
CACHE_FOLDER = "listops"

#: Version of :func:`generate_vectorized`'s output, part of the cache key.
_GENERATOR_VERSION = 1


@contextlib.contextmanager
def _pool(workers: int):
    if workers == 1:
        yield None
        return
    import concurrent.futures as cf
    import multiprocessing as mp

    # "spawn": a forked child of a process running torch or threads can hang.
    with cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        yield pool


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def load_or_generate(
    n: int,
    cfg: ListOpsConfig = LRA,
    *,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    workers: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`generate_vectorized` (padded to ``cfg.max_length``), cached on disk.

    The arrays are stored as ``listops-<key>.npz`` in ``cache_dir`` (default
    :data:`CACHE_FOLDER` in :func:`analogkernels.datasets.cache_dir`:
    ``$XDG_CACHE_HOME/analogkernels/listops``, i.e. ``~/.cache/…``) with a
    ``.sha256`` file beside it; the key hashes ``n``, ``cfg``, ``seed`` and the
    generator version. A cached file whose checksum does not match (damaged,
    truncated, edited) is regenerated, with a warning. The cache is written
    atomically (temporary file, then rename). A cache folder that cannot be
    written only costs the caching (logged at WARNING).

    Returns
    -------
    tokens : ndarray of uint8, shape (n, cfg.max_length)
    labels : ndarray of int64, shape (n,)
    """
    n = _check_n(n)
    if cache_dir is None:
        cache_dir = datasets.cache_dir() / CACHE_FOLDER
    cache_dir = Path(cache_dir)
    spec = json.dumps(
        {"n": n, "cfg": asdict(cfg), "seed": seed, "version": _GENERATOR_VERSION}, sort_keys=True
    )
    key = hashlib.sha256(spec.encode()).hexdigest()[:16]
    path = cache_dir / f"listops-{key}.npz"
    check = path.with_suffix(".sha256")
    if path.is_file() and check.is_file():
        if _sha256(path) == check.read_text().strip():
            with np.load(path) as data:
                return data["tokens"], data["labels"]
        logger.warning("ListOps cache %s fails its SHA-256 check; generating it again", path)
    logger.info("generating %d ListOps trees (%s)", n, cfg)
    X, y = generate_vectorized(n, cfg, seed=seed, workers=workers)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        # Written whole or not at all (a half-written cache is never read: its
        # checksum file is written after it).
        with atomic_write(path, "wb") as f:
            np.savez(f, tokens=X, labels=y)
        check.write_text(_sha256(path) + "\n")
    except OSError as exc:
        logger.warning("could not cache the ListOps trees in %s (%s)", cache_dir, exc)
    return X, y
