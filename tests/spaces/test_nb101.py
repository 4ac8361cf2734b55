"""NAS-Bench-101 space: validity, isomorphism keys, published hashes/params/counts, builders."""

from __future__ import annotations

import contextlib
import itertools
import json
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import torch

from mote_optuna.spaces import InvalidArchitecture, get_space, space_hash, suggest
from mote_optuna.spaces.nb101 import NB101Space, vertex_channels
from mote_optuna.spaces.nb101_graph import OPS, NB101Arch, check_spec, count_unique, graph_hash

CSV = Path(__file__).resolve().parents[1] / "data" / "nb101_subset_naslib.csv"  # tests/data/
C3, C1, MP = OPS

# Published in NAS-Bench-101's data (a row of the full dataset, quoted with its hash by NNI's
# NAS-benchmark docs and other users of nasbench_full.tfrecord): hash and trainable parameters.
FIRST_HASH = "00005c142e6f48ac74fdcf73e3439874"
FIRST_MATRIX = [
    [0, 1, 0, 0, 1, 1, 0],
    [0, 0, 1, 0, 0, 0, 0],
    [0, 0, 0, 1, 0, 0, 1],
    [0, 0, 0, 0, 0, 1, 0],
    [0, 0, 0, 0, 0, 1, 0],
    [0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 0, 0],
]
FIRST_OPS = ["input", C3, MP, C3, C3, C1, "output"]
FIRST_PARAMS = 8_555_530

# The nasbench README example: the Inception-like query cell and the isomorphic representative the
# dataset returns for it (module_adjacency/module_operations), with trainable_parameters 2694282.
README_QUERY = (
    [
        [0, 1, 1, 1, 0, 1, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 1, 0, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 0],
    ],
    ["input", C1, C3, C3, C3, MP, "output"],
)
README_STORED = (
    [
        [0, 1, 1, 1, 1, 0, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 1, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 0],
    ],
    ["input", C3, C1, MP, C3, C3, "output"],
)
README_PARAMS = 2_694_282

# Modules with exactly V vertices (labelled, unique), by the enumeration of NAS-Bench-101's
# generate_graphs (every vertex on an input->output path, <= 9 edges, distinct hashes). V = 5 is
# checked against brute-force isomorphism classes below; the slow test checks the total of V = 2..7
# against NAS-Bench-101's published 423,624 unique modules.
UNIQUE_BY_VERTICES = {2: 1, 3: 6, 4: 84, 5: 2441}
LABELLED_BY_VERTICES = {2: 1, 3: 6, 4: 90, 5: 3267}


@pytest.fixture(scope="module")
def space() -> NB101Space:
    return NB101Space()


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def full_params(space: NB101Space, arch: NB101Arch) -> int:
    with torch.device("meta"):  # shapes only: no allocation, no init
        return n_params(space.build_full(arch))


def test_registered_and_distributions(space: NB101Space) -> None:
    assert isinstance(get_space("nb101"), NB101Space)
    dists = space.distributions()
    edges = [name for name in dists if name.startswith("e_")]
    assert len(edges) == 21 and "e_0_6" in edges and "e_5_6" in edges
    assert all(isinstance(dists[e], optuna.distributions.IntDistribution) for e in edges)
    assert [n for n in dists if n.startswith("op_")] == [f"op_{i}" for i in range(1, 6)]
    assert dists["op_3"].choices == OPS
    assert space_hash(space) == space_hash(NB101Space())


def test_published_hash_and_params(space: NB101Space) -> None:
    arch = check_spec(FIRST_MATRIX, FIRST_OPS)
    assert space.key(arch) == FIRST_HASH
    assert full_params(space, arch) == FIRST_PARAMS


def test_readme_example_isomorphic_pair(space: NB101Space) -> None:
    query, stored = check_spec(*README_QUERY), check_spec(*README_STORED)
    assert query != stored
    assert space.key(query) == space.key(stored)
    assert full_params(space, stored) == README_PARAMS
    assert full_params(space, query) == README_PARAMS


def test_params_match_naslib_subset(space: NB101Space) -> None:

    rows = pd.read_csv(CSV)
    bad = []
    vertices = []
    counted: dict[NB101Arch, int] = {}  # 500 rows, about 300 distinct pruned modules
    for row in rows.itertuples():
        arch = space.from_csv(row.adjacency, row.operations)
        vertices.append(len(arch.ops))
        if len(arch.ops) == 7:  # nothing pruned: the string holds the CSV's two JSON columns
            assert space.to_str(arch) == f'{{"matrix":{row.adjacency},"ops":{row.operations}}}'
        got = counted.setdefault(arch, full_params(space, arch))
        if got != round(row.params_M_naslib * 1e6):
            bad.append((row.Index, got, row.params_M_naslib))
    assert len(rows) == 500 and not bad
    # NASLib stored the raw sampled 7x7 matrices; NAS-Bench-101 pruned them before the lookup,
    # and the published params are those of the pruned modules (all 500 match only that way).
    assert vertices.count(7) == 1 and vertices.count(2) == 55
    only_skip = rows.cifar10_valid_acc_108ep[[v == 2 for v in vertices]]
    assert only_skip.max() - only_skip.min() < 0.5  # one module (input->output), 3 seeds


def _permuted(matrix: np.ndarray, perm: list[int]) -> np.ndarray:
    out = np.zeros_like(matrix)
    for u, v in zip(*np.nonzero(matrix), strict=True):
        out[perm[u], perm[v]] = 1
    return out


def test_key_invariant_under_all_vertex_permutations(space: NB101Space) -> None:
    rng = np.random.default_rng(0)
    for _ in range(6):
        arch = space.sample(rng)
        n = len(arch.ops)
        labels = [-1] + [OPS.index(op) for op in arch.ops[1:-1]] + [-2]
        m = np.array(arch.matrix)
        reference = space.key(arch)
        for inner in itertools.permutations(range(1, n - 1)):
            perm = [0, *inner, n - 1]
            relabelled = [0] * n
            for v in range(n):
                relabelled[perm[v]] = labels[v]
            pm = _permuted(m, perm)
            assert graph_hash(pm.tolist(), relabelled) == reference
            if not np.tril(pm).any():  # still a topological order: a valid spec
                ops = ["input"] + [OPS[x] for x in relabelled[1:-1]] + ["output"]
                assert space.key(check_spec(pm.tolist(), ops)) == reference


def test_known_equivalent_and_distinct_pairs(space: NB101Space) -> None:
    # two parallel branches: swapping the interior vertices is an isomorphism
    m = [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]]
    a = check_spec(m, ["input", C3, C1, "output"])
    b = check_spec(m, ["input", C1, C3, "output"])
    assert a != b and space.key(a) == space.key(b)
    # a chain is ordered: swapping the ops changes the function
    chain = [[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]]
    c = check_spec(chain, ["input", C3, C1, "output"])
    d = check_spec(chain, ["input", C1, C3, "output"])
    assert space.key(c) != space.key(d)
    # pruning: a dead vertex (no path to the output) does not change the key
    dead = [[0, 1, 1, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0] * 5]
    pruned = check_spec(dead, ["input", C3, MP, C1, "output"])
    assert len(pruned.ops) == 3 and space.key(pruned) == space.key(
        check_spec([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", C3, "output"])
    )


@pytest.mark.parametrize("vertices", [2, 3, 4, 5])
def test_unique_module_counts(vertices: int) -> None:
    assert count_unique(vertices) == (LABELLED_BY_VERTICES[vertices], UNIQUE_BY_VERTICES[vertices])


@pytest.mark.slow  # about 4 minutes of one core (V = 7)
def test_enumeration_gives_the_published_total_of_unique_modules() -> None:
    assert sum(count_unique(v)[1] for v in range(2, 8)) == 423_624


def test_hash_count_equals_exact_isomorphism_classes() -> None:
    """Brute-force canonical forms (minimum over interior permutations) for 5 vertices."""
    n = 5
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    canon: set[tuple] = set()
    keys: set[str] = set()
    for bits in range(2 ** len(pairs)):
        m = np.zeros((n, n), dtype=int)
        for b, (i, j) in enumerate(pairs):
            m[i, j] = bits >> b & 1
        if not (m[:-1].any(axis=1).all() and m[:, 1:].any(axis=0).all()) or m.sum() > 9:
            continue
        for labels in itertools.product(range(3), repeat=n - 2):
            lab = [-1, *labels, -2]
            keys.add(graph_hash(m.tolist(), lab))
            forms = []
            for inner in itertools.permutations(range(1, n - 1)):
                perm = [0, *inner, n - 1]
                pm = _permuted(m, perm)
                pl = [0] * n
                for v in range(n):
                    pl[perm[v]] = lab[v]
                forms.append((tuple(pm.ravel()), tuple(pl)))
            canon.add(min(forms))
    assert len(keys) == len(canon) == UNIQUE_BY_VERTICES[n]


def _params(space: NB101Space, edges: set[tuple[int, int]], ops: list[str]) -> dict:
    params: dict = {f"e_{i}_{j}": int((i, j) in edges) for i in range(7) for j in range(i + 1, 7)}
    params.update({f"op_{v}": ops[v - 1] for v in range(1, 6)})
    return params


def test_validity_rules(space: NB101Space) -> None:
    ops = [C3, C1, MP, C3, C1]
    with pytest.raises(InvalidArchitecture, match="no path"):
        space.from_params(_params(space, {(0, 1), (1, 2), (3, 6)}, ops))
    chain = {(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6)}
    with pytest.raises(InvalidArchitecture, match="10 edges"):
        space.from_params(_params(space, chain | {(0, 6), (0, 2), (0, 3), (1, 3)}, ops))
    # 11 bits, but vertex 5 does not reach the output: pruned first, then 9 edges remain
    edges = {(0, 1), (1, 2), (2, 3), (3, 4), (4, 6), (0, 6), (0, 2), (0, 3), (1, 3)}
    arch = space.from_params(_params(space, edges | {(1, 5), (4, 5)}, ops))
    assert len(arch.ops) == 6 and sum(map(sum, arch.matrix)) == 9
    assert arch.ops == ("input", C3, C1, MP, C3, "output")
    with pytest.raises(InvalidArchitecture, match="missing"):
        space.from_params({"op_1": C3})
    with pytest.raises(InvalidArchitecture, match="unknown op"):
        space.from_params(_params(space, chain, [C3, C3, "conv5x5", C3, C3]))
    with pytest.raises(InvalidArchitecture, match="upper-triangular"):
        space.from_str(
            '{"matrix":[[0,1,0],[0,0,1],[1,0,0]],"ops":["input","maxpool3x3","output"]}'
        )
    with pytest.raises(InvalidArchitecture, match="vertices"):
        check_spec([[0] * 8 for _ in range(8)], ["input", *[C3] * 6, "output"])
    with pytest.raises(InvalidArchitecture):
        space.from_str("not json")
    only_skip = check_spec([[0, 1], [0, 0]], ["input", "output"])
    assert space.key(only_skip) and n_params(space.build_full(only_skip)) > 0


def test_round_trips(space: NB101Space) -> None:
    rng = np.random.default_rng(1)
    for _ in range(50):
        arch = space.sample(rng)
        assert space.from_params(space.to_params(arch)) == arch
        assert space.from_str(space.to_str(arch)) == arch
        assert json.loads(space.to_str(arch))["ops"][0] == "input"
        assert hash(arch) == hash(NB101Arch(arch.matrix, arch.ops))


def test_neighbours_are_one_param_away(space: NB101Space) -> None:
    rng = np.random.default_rng(2)
    for _ in range(5):
        arch = space.sample(rng)
        base = space.to_params(arch)
        reachable = set()
        for name, value in base.items():
            choices = (0, 1) if name.startswith("e_") else OPS
            for other in choices:
                if other != value:
                    with contextlib.suppress(InvalidArchitecture):
                        reachable.add(space.from_params({**base, name: other}))
        neighbours = space.neighbours(arch)
        keys = [space.key(a) for a in neighbours]
        assert neighbours and len(set(keys)) == len(keys)
        assert space.key(arch) not in keys
        assert set(neighbours) <= reachable
        assert {space.key(a) for a in reachable} - {space.key(arch)} == set(keys)
    # the canonical params leave unused slots one flip away from joining (attach a vertex)
    only_skip = check_spec([[0, 1], [0, 0]], ["input", "output"])
    assert [a.ops for a in space.neighbours(only_skip)] == [("input", C3, "output")]


def test_vertex_channels_rule() -> None:
    # three vertices feed the output: 128 = 43 + 43 + 42 in vertex order; vertex 1 feeds 2 only
    m = [[0, 1, 0, 1, 1, 0], [0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 1]]
    m += [[0, 0, 0, 0, 0, 1], [0] * 6]
    assert vertex_channels(64, 128, m) == [64, 43, 43, 43, 42, 128]


def test_full_network_forward(space: NB101Space) -> None:
    arch = check_spec([[0, 1, 1], [0, 0, 1], [0, 0, 0]], ["input", C1, "output"])
    net = space.build_full(arch, num_classes=7).eval()
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 32, 32)).shape == (1, 7)
    assert space.full_net.resolution == 32 and space.full_net.num_classes == 10


@pytest.mark.parametrize(
    ("matrix", "ops"),
    [
        README_STORED,
        (FIRST_MATRIX, FIRST_OPS),
        ([[0, 1], [0, 0]], ["input", "output"]),  # input->output only
        ([[0, 1, 1], [0, 0, 1], [0, 0, 0]], ["input", MP, "output"]),  # k = 1 with a skip
        (
            [[0, 1, 1, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0] * 5],
            ["input", C3, C1, MP, "output"],  # k = 3
        ),
    ],
)
@pytest.mark.parametrize("width", [32, 17])
def test_proxy_keeps_width(space: NB101Space, matrix: list, ops: list, width: int) -> None:
    arch = check_spec(matrix, ops)
    net = space.build_proxy(arch, num_classes=10, width=width)
    x = torch.randn(2, 3, 32, 32)
    assert net.cell1(net.stem(x)).shape == (2, width, 32, 32)
    assert net(x).shape == (2, 10)
    feeders = sum(arch.matrix[v][-1] for v in range(1, len(arch.ops) - 1))
    assert (net.cell1.resize is None) == (feeders * (width // 2) == width or feeders == 0)


def test_suggest_on_optuna_trial(space: NB101Space) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for _ in range(20):
        trial = study.ask()
        try:
            arch = suggest(space, trial)
        except InvalidArchitecture:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            continue
        assert space.from_params(trial.params) == arch
        assert set(trial.params) == set(space.distributions())
        study.tell(trial, 0.0)
        return
    pytest.fail("20 random trials without a valid module")
