"""NAS-Bench-101: a module is a DAG of at most 7 vertices and 9 edges with 3 ops.

Parameters: the 21 upper-triangular adjacency bits ``e_{i}_{j}`` (``IntDistribution(0, 1)``, i < j,
vertices 0 = input .. 6 = output) and the 5 interior ops ``op_1`` .. ``op_5``.

Architecture value: ``NB101Arch(matrix, ops)``, the *pruned* module spec as NAS-Bench-101's
``ModelSpec`` holds it: a square upper-triangular 0/1 matrix as a tuple of tuples, and the op names
including ``input`` and ``output``. Pruning removes the vertices that are not on an input→output
path (not reachable from the input, or not reaching the output), so the matrix has 2 to 7
vertices. An architecture is rejected when no input→output path exists, or when the pruned matrix
has more than 9 edges (NAS-Bench-101 prunes first, then counts).

Because pruning drops vertices, several parameter dicts map to one architecture. ``to_params``
returns one canonical dict: kept vertices stay in their order at slots 1.., the output at slot 6;
an unused slot gets the first op (conv3x3) and one edge to the output, which keeps it dead (it is
not reachable from the input) but lets one flip ``e_{v}_{u}`` attach it after vertex ``v``, so
that small modules have "add a vertex" neighbours. ``from_params(to_params(a)) == a`` always.

``sample`` is uniform over the valid parameter dicts, as NAS-Bench-101's (and NASLib's) random
sampling; after pruning small modules are common (about 1 in 9 draws is the input→output-only
module, as in NASLib's 500-cell subset).

``key`` is a Weisfeiler-Lehman style graph fingerprint computed the way NAS-Bench-101's
``hash_module`` describes it (initial vertex label = md5 of (out-degree, in-degree, op label),
``n`` rounds of md5 over the sorted in-neighbour labels, the sorted out-neighbour labels and the
own label, then md5 of the sorted vertex labels), so isomorphic modules share a key and the keys
equal NAS-Bench-101's module hashes (checked against published hashes in the tests).

Caveat, inherited from the benchmark: NAS-Bench-101 gives the output's channels to the vertices
that feed it in vertex order (``compute_vertex_channels``; the first ``out % k`` get one extra), so
two isomorphic modules can be built with slightly different channel splits when the output
in-degree does not divide the channel count. The benchmark trained one representative per hash;
``key`` follows the benchmark and treats them as one architecture.

Full network (``build_full``): NAS-Bench-101's skeleton, stem conv3x3-BN-ReLU (128), 3 stacks of 3
modules with a 2x2 max-pool and channel doubling between stacks, global average pooling, dense.
BatchNorm as in NAS-Bench-101 (TF momentum 0.997, eps 1e-5).

Proxy (``build_proxy``): MOTE's reduced architecture (``ReducedNet``: stem, cell, 4x4 avg-pool,
cell, GAP, dense) with the NB101 cell of the authors' released code (MOTE_SPEC §4):
vertices are 1x1/3x3 conv-BN-GELU with ``width // 2`` filters or a 3x3 max-pool; each edge out of
the input has its own 1x1 conv-BN-GELU projection to ``width // 2``; interior vertices sum their
inputs; the output concatenates its interior predecessors and, with an input→output edge, adds a
1x1 conv-BN-GELU of that edge's projection to the concatenated width (the released code chains the
two projections). Adaptation: in the released code the cell emits ``k * (width // 2)`` channels
(``k`` = interior vertices feeding the output), so its second cell and the classifier see a width
that varies with ``k``. ``ReducedNet`` needs a cell that keeps ``width``; when
``k * (width // 2) != width`` a 1x1 conv-BN (no activation) maps the released cell's output to
``width``. With ``k == 2`` and an even width the cell is exactly the released one. A module whose
only edge is input→output (``k == 0``, which the released code cannot build) emits the chained
projection at ``width`` channels.

The graph rules (spec checks, pruning, the module hash, counting) are in ``nb101_graph``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import optuna
import pandas as pd
import torch
from torch import nn

from mote_optuna.errors import UserError
from mote_optuna.estimators.boxcox import BoxCoxConstants
from mote_optuna.spaces.base import FullNetSpec, InvalidArchitecture, read_truth_csv
from mote_optuna.spaces.layers import KERAS_BN, BatchNormArgs, ReducedNet
from mote_optuna.spaces.nb101_graph import (
    CONV3X3,
    INPUT,
    MAX_VERTICES,
    MAXPOOL3X3,
    OPS,
    OUTPUT,
    NB101Arch,
    arch_from_csv,
    arch_hash,
    check_spec,
)

EDGE_PARAMS = tuple(
    (i, j, f"e_{i}_{j}") for i in range(MAX_VERTICES) for j in range(i + 1, MAX_VERTICES)
)
OP_PARAMS = tuple(f"op_{v}" for v in range(1, MAX_VERTICES - 1))

# BatchNorm of NAS-Bench-101's model_builder (TF momentum 0.997, epsilon 1e-5).
NB101_BN: BatchNormArgs = {"momentum": 0.003, "eps": 1e-5}


def vertex_channels(
    in_channels: int, out_channels: int, matrix: Sequence[Sequence[int]]
) -> list[int]:
    """Channels per vertex, following NAS-Bench-101's ``compute_vertex_channels`` rule.

    The vertices feeding the output share its channels (the earliest ones get the remainder, one
    each); a vertex that feeds only interior vertices gets the largest width among its successors.
    """
    n = len(matrix)
    channels = [0] * n
    channels[0], channels[n - 1] = in_channels, out_channels
    if n == 2:
        return channels
    feeders = [v for v in range(1, n - 1) if matrix[v][n - 1]]
    share, extra = divmod(out_channels, len(feeders))
    for rank, v in enumerate(feeders):
        channels[v] = share + (1 if rank < extra else 0)
    for v in range(n - 2, 0, -1):
        if not matrix[v][n - 1]:
            channels[v] = max(channels[w] for w in range(v + 1, n - 1) if matrix[v][w])
    return channels


# --------------------------------------------------------------------------------------------
# the space


class NB101Space:
    """The NAS-Bench-101 module space (see module docstring)."""

    name = "nb101"
    channels_last = True
    full_net = FullNetSpec(resolution=32, num_classes=10)
    published_boxcox = BoxCoxConstants(0.397, 0.463, 0.714, 1.538)  # MOTE_SPEC §2.3
    # NASLib's NB101 subset (nb101_subset_naslib.csv): 108-epoch validation accuracy only
    truth_targets: ClassVar[dict[str, str]] = {"cifar10": "cifar10_valid_acc_108ep"}

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        dists: dict[str, optuna.distributions.BaseDistribution] = {
            name: optuna.distributions.IntDistribution(0, 1) for _, _, name in EDGE_PARAMS
        }
        for name in OP_PARAMS:
            dists[name] = optuna.distributions.CategoricalDistribution(OPS)
        return dists

    def from_params(self, params: dict[str, Any]) -> NB101Arch:
        matrix = [[0] * MAX_VERTICES for _ in range(MAX_VERTICES)]
        try:
            for i, j, name in EDGE_PARAMS:
                bit = params[name]
                if bit not in (0, 1):
                    raise InvalidArchitecture(f"{name} must be 0 or 1, got {bit!r}")
                matrix[i][j] = int(bit)
            ops = [INPUT, *(str(params[name]) for name in OP_PARAMS), OUTPUT]
        except KeyError as missing:
            raise InvalidArchitecture(f"missing parameter {missing}") from None
        return check_spec(matrix, ops)

    def to_params(self, arch: NB101Arch) -> dict[str, Any]:
        n = len(arch.ops)
        slot = [*range(n - 1), MAX_VERTICES - 1]  # the output goes to slot 6
        bits = {(slot[a], slot[b]) for a in range(n) for b in range(n) if arch.matrix[a][b]}
        bits |= {(u, MAX_VERTICES - 1) for u in range(n - 1, MAX_VERTICES - 1)}  # dead slots
        params: dict[str, Any] = {name: int((i, j) in bits) for i, j, name in EDGE_PARAMS}
        for v, name in enumerate(OP_PARAMS, start=1):
            params[name] = arch.ops[v] if v < n - 1 else OPS[0]
        return params

    def to_str(self, arch: NB101Arch) -> str:
        """``{"matrix":[[...]],"ops":[...]}``; the two values are the CSV's JSON columns."""
        matrix = json.dumps([list(row) for row in arch.matrix], separators=(",", ":"))
        ops = json.dumps(list(arch.ops), separators=(",", ":"))
        return f'{{"matrix":{matrix},"ops":{ops}}}'

    def from_str(self, text: str) -> NB101Arch:
        try:
            obj = json.loads(text)
        except (TypeError, json.JSONDecodeError):
            raise InvalidArchitecture(f"not a NAS-Bench-101 spec string: {text!r}") from None
        if not isinstance(obj, dict) or set(obj) != {"matrix", "ops"}:
            raise InvalidArchitecture(
                f'expected {{"matrix": [[...]], "ops": [...]}}, got {text!r}'
            )
        return check_spec(obj["matrix"], obj["ops"])

    @staticmethod
    def from_csv(adjacency: str, operations: str) -> NB101Arch:
        """See ``arch_from_csv``."""
        return arch_from_csv(adjacency, operations)

    def key(self, arch: NB101Arch) -> str:
        return arch_hash(arch)

    def sample(self, rng: np.random.Generator) -> NB101Arch:
        """Uniform over the valid parameter dicts (rejection sampling, as NAS-Bench-101's own
        random search); isomorphism classes with many encodings are drawn more often."""
        while True:
            bits = rng.integers(0, 2, size=len(EDGE_PARAMS))
            ops = rng.integers(0, len(OPS), size=len(OP_PARAMS))
            params: dict[str, Any] = {
                name: int(b) for (_, _, name), b in zip(EDGE_PARAMS, bits, strict=True)
            }
            params.update({name: OPS[o] for name, o in zip(OP_PARAMS, ops, strict=True)})
            try:
                return self.from_params(params)
            except InvalidArchitecture:
                continue

    def neighbours(self, arch: NB101Arch) -> list[NB101Arch]:
        """Valid architectures one parameter away from ``to_params(arch)``.

        Changes that leave the function unchanged (same ``key``: a pruned vertex's op, an edge to
        a dead vertex, an isomorphic rewiring) are left out, and each key appears once.
        """
        base = self.to_params(arch)
        seen = {self.key(arch)}
        out: list[NB101Arch] = []
        candidates: list[dict[str, Any]] = []
        for _, _, name in EDGE_PARAMS:
            candidates.append({**base, name: 1 - base[name]})
        for name in OP_PARAMS:
            candidates.extend({**base, name: op} for op in OPS if op != base[name])
        for params in candidates:
            try:
                other = self.from_params(params)
            except InvalidArchitecture:
                continue
            k = self.key(other)
            if k not in seen:
                seen.add(k)
                out.append(other)
        return out

    def build_proxy(self, arch: NB101Arch, *, num_classes: int, width: int = 32) -> nn.Module:
        return ReducedNet(lambda c: MoteCell(arch, c), width=width, num_classes=num_classes)

    def build_full(self, arch: NB101Arch, *, num_classes: int | None = None) -> nn.Module:
        return NB101Network(arch, num_classes=num_classes or self.full_net.num_classes)

    def build_live(self, arch: NB101Arch, *, num_classes: int | None = None) -> nn.Module:
        """An NB101 arch is already pruned as the benchmark prunes (``prune``)."""
        return self.build_full(arch, num_classes=num_classes)

    # optional parts of the contract (spaces.base)

    def covering_archs(self) -> list[NB101Arch]:
        """A vertex gets ``c // k`` or ``c // k + 1`` channels (k = 1..4 vertices feed the
        output; 5 would need 10 edges), interior-only vertices the width of a successor; so k
        parallel vertices of one op, fed by the input, feeding the output, with and without an
        input→output edge, plus the input→output-only module, cover every latency unit."""
        archs = [NB101Arch(((0, 1), (0, 0)), (INPUT, OUTPUT))]
        for k in range(1, 5):
            for op in OPS:
                for direct in (0, 1):
                    n = k + 2
                    m = [[0] * n for _ in range(n)]
                    for v in range(1, k + 1):
                        m[0][v] = m[v][n - 1] = 1
                    m[0][n - 1] = direct
                    archs.append(NB101Arch(tuple(map(tuple, m)), (INPUT, *[op] * k, OUTPUT)))
        return archs

    def read_truth(self, path: Path) -> pd.DataFrame:
        """NASLib's subset: ``arch_str`` from the adjacency/operations columns, one row per module
        (the NB101 hash ``key``; numeric columns of duplicate rows, other seeds, are averaged)."""
        target = self.truth_targets["cifar10"]
        truth = read_truth_csv(path, ["adjacency", "operations", target])
        try:
            archs = [
                arch_from_csv(a, o) for a, o in zip(truth.adjacency, truth.operations, strict=True)
            ]
        except (ValueError, InvalidArchitecture) as exc:
            raise UserError(f"truth table {path}: a module does not parse ({exc})") from None
        truth = truth.assign(
            arch_str=[self.to_str(a) for a in archs], key=[self.key(a) for a in archs]
        )
        numeric = truth.select_dtypes("number").columns
        first = truth.groupby("key", sort=False).first()
        first[numeric] = truth.groupby("key", sort=False)[list(numeric)].mean()
        return first.reset_index()


# --------------------------------------------------------------------------------------------
# NAS-Bench-101 network


class ConvBNReLU(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out, **NB101_BN),
            nn.ReLU(),
        )


def _vertex_op(op: str, channels: int) -> nn.Module:
    if op == MAXPOOL3X3:
        return nn.MaxPool2d(3, stride=1, padding=1)
    return ConvBNReLU(channels, channels, 3 if op == CONV3X3 else 1)


class NB101Module(nn.Module):
    """One NAS-Bench-101 module (``model_builder.build_module``)."""

    latency_container: ClassVar[bool] = True  # latency tables time its ops (spaces.base)

    def __init__(self, arch: NB101Arch, in_channels: int, out_channels: int) -> None:
        super().__init__()
        m = arch.matrix
        n = len(arch.ops)
        self.n = n
        self.matrix = m
        self.channels = vertex_channels(in_channels, out_channels, m)
        # 1x1 projection of the input for every input→vertex edge (and input→output).
        self.proj = nn.ModuleDict(
            {str(v): ConvBNReLU(in_channels, self.channels[v], 1) for v in range(1, n) if m[0][v]}
        )
        self.ops = nn.ModuleDict(
            {str(v): _vertex_op(arch.ops[v], self.channels[v]) for v in range(1, n - 1)}
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, m, ch = self.n, self.matrix, self.channels
        values: list[torch.Tensor] = [x]
        for v in range(1, n - 1):
            # truncation keeps the first channels (a source has at most one more than v)
            parts = [values[u][:, : ch[v]] for u in range(1, v) if m[u][v]]
            if m[0][v]:
                parts.append(self.proj[str(v)](x))
            total = parts[0]
            for part in parts[1:]:
                total = total + part
            values.append(self.ops[str(v)](total))
        feeding = [values[v] for v in range(1, n - 1) if m[v][n - 1]]
        if not feeding:
            return self.proj[str(n - 1)](x)
        out = torch.cat(feeding, dim=1) if len(feeding) > 1 else feeding[0]
        if m[0][n - 1]:
            out = out + self.proj[str(n - 1)](x)
        return out


class NB101Network(nn.Module):
    """NAS-Bench-101's network: stem, 3 stacks x 3 modules, pool + doubling between, GAP, FC."""

    def __init__(
        self,
        arch: NB101Arch,
        *,
        num_classes: int,
        stem_channels: int = 128,
        stacks: int = 3,
        modules_per_stack: int = 3,
    ) -> None:
        super().__init__()
        self.stem = ConvBNReLU(3, stem_channels, 3)
        layers: list[nn.Module] = []
        c_in = c = stem_channels
        for stack in range(stacks):
            if stack:
                layers.append(nn.MaxPool2d(2, stride=2))
                c *= 2
            for _ in range(modules_per_stack):
                layers.append(NB101Module(arch, c_in, c))
                c_in = c
        self.layers = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.stem(x))
        return self.classifier(x.mean(dim=(2, 3)))


# --------------------------------------------------------------------------------------------
# MOTE's NB101 cell (proxy)


class ConvBNGELU(nn.Sequential):
    """The authors' Keras ``ConvBN``: conv (no bias) + BN + tanh-approximated GELU."""

    def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out, **KERAS_BN),
            nn.GELU(approximate="tanh"),
        )


class MoteCell(nn.Module):
    """The NB101 cell of MOTE's released code, adapted to emit ``channels`` (module docstring)."""

    def __init__(self, arch: NB101Arch, channels: int) -> None:
        super().__init__()
        m = arch.matrix
        n = len(arch.ops)
        half = max(1, channels // 2)
        self.n = n
        self.matrix = m
        self.proj = nn.ModuleDict(
            {str(v): ConvBNGELU(channels, half, 1) for v in range(1, n) if m[0][v]}
        )
        ops: dict[str, nn.Module] = {}
        for v in range(1, n - 1):
            if arch.ops[v] == MAXPOOL3X3:
                ops[str(v)] = nn.MaxPool2d(3, stride=1, padding=1)
            else:
                ops[str(v)] = ConvBNGELU(half, half, 3 if arch.ops[v] == CONV3X3 else 1)
        self.ops = nn.ModuleDict(ops)
        k = sum(m[v][n - 1] for v in range(1, n - 1))
        concat = k * half if k else channels
        self.out_proj = ConvBNGELU(half, concat, 1) if m[0][n - 1] else None
        self.resize: nn.Module | None = None
        if concat != channels:
            self.resize = nn.Sequential(
                nn.Conv2d(concat, channels, 1, bias=False), nn.BatchNorm2d(channels, **KERAS_BN)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, m = self.n, self.matrix
        values: list[torch.Tensor] = [x]
        for v in range(1, n - 1):
            parts = [self.proj[str(v)](x)] if m[0][v] else []
            parts.extend(values[u] for u in range(1, v) if m[u][v])
            total = parts[0]
            for part in parts[1:]:
                total = total + part
            values.append(self.ops[str(v)](total))
        feeding = [values[v] for v in range(1, n - 1) if m[v][n - 1]]
        out: torch.Tensor | None = None
        if feeding:
            out = torch.cat(feeding, dim=1) if len(feeding) > 1 else feeding[0]
        if self.out_proj is not None:
            skip = self.out_proj(self.proj[str(n - 1)](x))
            out = skip if out is None else out + skip
        assert out is not None  # a pruned module always reaches its output
        return self.resize(out) if self.resize is not None else out


__all__ = ["NB101Module", "NB101Network", "NB101Space", "vertex_channels"]
