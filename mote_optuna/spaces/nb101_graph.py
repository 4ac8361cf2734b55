"""NAS-Bench-101's module graphs, without torch: the spec rules (at most 7 vertices and 9 edges,
``check_spec``), pruning to the input→output paths (``prune``), the module hash that ``key`` is
(``graph_hash``, as NAS-Bench-101's ``hash_module``) and the enumeration that counts the unique
modules (``count_unique``). The space built on them is ``nb101.NB101Space``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Sequence
from typing import Any, NamedTuple

from mote_optuna.spaces.base import InvalidArchitecture

INPUT = "input"
OUTPUT = "output"
CONV3X3 = "conv3x3-bn-relu"
CONV1X1 = "conv1x1-bn-relu"
MAXPOOL3X3 = "maxpool3x3"
OPS = (CONV3X3, CONV1X1, MAXPOOL3X3)  # NAS-Bench-101's order; the index is the hash label
MAX_VERTICES = 7
MAX_EDGES = 9


class NB101Arch(NamedTuple):
    """A pruned NAS-Bench-101 module spec (immutable, hashable)."""

    matrix: tuple[tuple[int, ...], ...]
    ops: tuple[str, ...]


# --------------------------------------------------------------------------------------------
# graph helpers


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def prune(matrix: Sequence[Sequence[int]], ops: Sequence[str]) -> NB101Arch:
    """Drop the vertices that are not on an input→output path (as NAS-Bench-101's ModelSpec).

    Raises InvalidArchitecture when the output cannot be reached from the input.
    """
    n = len(ops)
    from_input = [False] * n
    from_input[0] = True
    for dst in range(1, n):
        from_input[dst] = any(from_input[src] and matrix[src][dst] for src in range(dst))
    to_output = [False] * n
    to_output[n - 1] = True
    for src in range(n - 2, -1, -1):
        to_output[src] = any(to_output[dst] and matrix[src][dst] for dst in range(src + 1, n))
    if not to_output[0]:
        raise InvalidArchitecture("no path from the input to the output vertex")
    keep = [v for v in range(n) if from_input[v] and to_output[v]]
    return NB101Arch(
        tuple(tuple(int(matrix[a][b]) for b in keep) for a in keep),
        tuple(ops[v] for v in keep),
    )


def check_spec(matrix: Any, ops: Any) -> NB101Arch:
    """Validate a raw (matrix, ops) pair, prune it and enforce the edge limit."""
    if not isinstance(ops, list | tuple) or not all(isinstance(op, str) for op in ops):
        raise InvalidArchitecture(f"ops must be a list of op names, got {ops!r}")
    n = len(ops)
    if not 2 <= n <= MAX_VERTICES:
        raise InvalidArchitecture(f"a module has 2 to {MAX_VERTICES} vertices, got {n}")
    if not isinstance(matrix, list | tuple) or len(matrix) != n:
        raise InvalidArchitecture(f"matrix must be {n}x{n} to match {n} ops")
    for i, row in enumerate(matrix):
        if not isinstance(row, list | tuple) or len(row) != n:
            raise InvalidArchitecture(f"matrix row {i} must have {n} entries")
        for j, bit in enumerate(row):
            if bit not in (0, 1) or isinstance(bit, float):
                raise InvalidArchitecture(f"matrix[{i}][{j}] must be 0 or 1, got {bit!r}")
            if bit and j <= i:
                raise InvalidArchitecture(f"matrix must be strictly upper-triangular ({i}->{j})")
    if ops[0] != INPUT or ops[-1] != OUTPUT:
        raise InvalidArchitecture(f"ops must start with {INPUT!r} and end with {OUTPUT!r}")
    for op in ops[1:-1]:
        if op not in OPS:
            raise InvalidArchitecture(f"unknown op {op!r}; allowed: {', '.join(OPS)}")
    arch = prune(matrix, ops)
    edges = sum(map(sum, arch.matrix))
    if edges > MAX_EDGES:
        raise InvalidArchitecture(f"{edges} edges after pruning; NAS-Bench-101 allows {MAX_EDGES}")
    return arch


def graph_hash(matrix: Sequence[Sequence[int]], labels: Sequence[int]) -> str:
    """Iterated neighbourhood hashing of a labelled DAG (NAS-Bench-101's ``hash_module``)."""
    n = len(labels)
    preds = [[u for u in range(n) if matrix[u][v]] for v in range(n)]
    succs = [[w for w in range(n) if matrix[v][w]] for v in range(n)]
    names = [_md5(str((len(succs[v]), len(preds[v]), labels[v]))) for v in range(n)]
    for _ in range(n):
        names = [
            _md5(
                "".join(sorted(names[u] for u in preds[v]))
                + "|"
                + "".join(sorted(names[w] for w in succs[v]))
                + "|"
                + names[v]
            )
            for v in range(n)
        ]
    return _md5(str(sorted(names)))


def arch_hash(arch: NB101Arch) -> str:
    labels = [-1] + [OPS.index(op) for op in arch.ops[1:-1]] + [-2]
    return graph_hash(arch.matrix, labels)


def arch_from_csv(adjacency: str, operations: str) -> NB101Arch:
    """The architecture of a ``nb101_subset_naslib.csv`` row (its JSON adjacency, operations)."""
    try:
        matrix, ops = json.loads(adjacency), json.loads(operations)
    except (TypeError, json.JSONDecodeError) as exc:
        raise InvalidArchitecture(f"not JSON: {exc}") from None
    return check_spec(matrix, ops)


def count_unique(num_vertices: int, max_edges: int = MAX_EDGES) -> tuple[int, int]:
    """Enumerate all modules with exactly ``num_vertices`` vertices (every vertex on an
    input→output path, at most ``max_edges`` edges) as NAS-Bench-101's ``generate_graphs`` does.

    Returns (number of labelled matrices, number of distinct keys). Cost grows as
    2**(n(n-1)/2) * 3**(n-2); fine up to 6 vertices.
    """
    n = num_vertices
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    total = 0
    keys: set[str] = set()
    for bits in range(2 ** len(pairs)):
        if bits.bit_count() > max_edges:
            continue
        matrix = [[0] * n for _ in range(n)]
        for b, (i, j) in enumerate(pairs):
            if bits >> b & 1:
                matrix[i][j] = 1
        # full DAG: every non-output vertex has a successor, every non-input one a predecessor
        if not all(any(matrix[v]) for v in range(n - 1)):
            continue
        if not all(any(matrix[u][v] for u in range(n)) for v in range(1, n)):
            continue
        for labels in itertools.product(range(len(OPS)), repeat=n - 2):
            total += 1
            keys.add(graph_hash(matrix, [-1, *labels, -2]))
    return total, len(keys)
