"""NAS-Bench-Macro space: canonical codes, cost against the benchmark table, truth, proxy and
latency units."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mote_optuna.cost import count_flops, count_params
from mote_optuna.errors import UserError
from mote_optuna.latency.units import covering_archs, full_network, input_shape, units
from mote_optuna.spaces import InvalidArchitecture, get_space, suggest
from mote_optuna.spaces.base import HasAnalyticCost, HasCoveringArchs, HasTruth
from mote_optuna.spaces.nb_macro import NBMacroSpace

CSV = Path(__file__).resolve().parents[1] / "data" / "nas_bench_macro_cifar10.csv.gz"


@pytest.fixture(scope="module")
def space() -> NBMacroSpace:
    space = get_space("nb-macro")
    assert isinstance(space, NBMacroSpace)
    return space


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return pd.read_csv(CSV, dtype={"arch": str, "canonical_arch": str})


@pytest.fixture(scope="module")
def distinct(table: pd.DataFrame) -> pd.DataFrame:
    return table[table.is_canonical == 1].reset_index(drop=True)


pytestmark = pytest.mark.usefixtures("one_thread")


def test_canonical_form_is_the_benchmarks(space: NBMacroSpace, table: pd.DataFrame) -> None:
    """Every one of the 6,561 codes canonicalises to the table's ``canonical_arch``; a stage's
    first-layer identity (a strided conv) stays, later identities move to the stage's end."""
    assert len(table) == 3**8
    got = [space.to_str(space.from_str(code)) for code in table.arch]
    assert got == list(table.canonical_arch)
    assert space.to_str(space.from_str("00201000")) == "00210000"
    assert space.to_str(space.from_str("01020102")) == "01020120"


def test_all_archs_are_the_distinct_rows(space: NBMacroSpace, distinct: pd.DataFrame) -> None:
    archs = space.all_archs()
    assert len(archs) == len(distinct) == 3969
    assert {space.to_str(a) for a in archs} == set(distinct.arch)
    assert {space.key(a) for a in archs} == set(distinct.arch)


def test_values_are_canonical_everywhere(space: NBMacroSpace) -> None:
    params = {f"layer_{i}": d for i, d in enumerate((1, 0, 2, 0, 1, 0, 0, 2))}
    arch = space.from_params(params)
    assert arch == (1, 0, 2, 1, 0, 0, 2, 0)  # stages 10 | 201 -> 210 | 002 -> 020
    assert space.to_params(arch) != params  # the canonical parameters, not the given ones
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = space.sample(rng)
        assert space.from_str(space.to_str(a)) == a
        neighbours = space.neighbours(a)
        assert a not in neighbours and len(set(neighbours)) == len(neighbours)
        assert all(space.from_str(space.to_str(n)) == n for n in neighbours)
        assert all(sum(x != y for x, y in zip(n, a, strict=True)) >= 1 for n in neighbours)


def test_neighbours_are_the_canonical_codes_one_digit_away(space: NBMacroSpace) -> None:
    code = "12020112"  # canonical
    arch = space.from_str(code)
    one_off = {code[:i] + d + code[i + 1 :] for i in range(8) for d in "012" if d != code[i]}
    assert set(space.neighbours(arch)) == {space.from_str(c) for c in one_off} - {arch}
    assert space.from_str("12002112") == arch


def test_bad_strings_and_params_are_rejected(space: NBMacroSpace) -> None:
    with pytest.raises(InvalidArchitecture, match=r"layer 3 is '3'"):
        space.from_str("12032112")
    with pytest.raises(InvalidArchitecture, match="8 digits"):
        space.from_str("1202011")
    with pytest.raises(InvalidArchitecture, match="layer 0 is 'x'"):
        space.from_str("x2020112")
    with pytest.raises(InvalidArchitecture, match="missing parameter 'layer_7'"):
        space.from_params({f"layer_{i}": 0 for i in range(7)})
    with pytest.raises(InvalidArchitecture, match="layer_2=3"):
        space.from_params({f"layer_{i}": 3 if i == 2 else 0 for i in range(8)})


def test_suggest_gives_canonical_architectures(space: NBMacroSpace) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for _ in range(20):
        arch = suggest(space, study.ask())
        assert space.from_str(space.to_str(arch)) == arch


def test_analytic_cost_equals_the_table_on_every_network(
    space: NBMacroSpace, distinct: pd.DataFrame
) -> None:
    """The benchmark's params (count) and FLOPs (MACs) from the closed form, all 3,969 rows."""
    assert isinstance(space, HasAnalyticCost)
    for code, params, flops in zip(distinct.arch, distinct.params, distinct.flops, strict=True):
        cost = space.analytic_cost(space.from_str(code))
        assert (round(cost.params * 1e6), round(cost.flops * 1e6)) == (params, flops), code


def _measured(space: NBMacroSpace, code: str) -> tuple[float, float]:
    net = space.build_full(space.from_str(code))
    return count_params(net), count_flops(net, space.full_net.resolution)


def test_built_networks_have_the_table_cost(space: NBMacroSpace, distinct: pd.DataFrame) -> None:
    """200 seeded rows built and counted: the table's numbers and ``analytic_cost`` exactly."""
    rows = distinct.sample(200, random_state=0)
    for code, params, flops in zip(rows.arch, rows.params, rows.flops, strict=True):
        measured = _measured(space, code)
        assert (round(measured[0] * 1e6), round(measured[1] * 1e6)) == (params, flops), code
        cost = space.analytic_cost(space.from_str(code))
        assert (cost.params, cost.flops) == measured, code


@pytest.mark.slow  # about 105 s of one core (3,969 networks built and counted)
def test_every_built_network_has_the_table_cost(
    space: NBMacroSpace, distinct: pd.DataFrame
) -> None:
    for code, params, flops in zip(distinct.arch, distinct.params, distinct.flops, strict=True):
        measured = _measured(space, code)
        assert (round(measured[0] * 1e6), round(measured[1] * 1e6)) == (params, flops), code


def test_read_truth_keeps_one_row_per_network(space: NBMacroSpace, tmp_path: Path) -> None:
    assert isinstance(space, HasTruth)
    truth = space.read_truth(CSV)
    assert len(truth) == 3969 and truth.key.is_unique
    assert list(truth.arch_str) == list(truth.key)
    assert truth.arch_str.str.fullmatch("[012]{8}").all()  # leading zeros kept
    first = truth.set_index("arch_str").loc["00000000"]
    assert first.params == pytest.approx(0.387882) and first.flops == pytest.approx(7.71328)
    main = space.truth_targets["cifar10"]
    assert first[main] == pytest.approx(45.363332)
    seeds = truth[["acc_seed0", "acc_seed1", "acc_seed2"]].mean(axis=1)
    assert np.allclose(seeds, truth[main], atol=1e-4)
    other = tmp_path / "other.csv"
    pd.DataFrame({"canonical_arch": ["00000000"], "acc": [1.0]}).to_csv(other, index=False)
    with pytest.raises(UserError, match=r"other\.csv.*acc_seed0, acc_seed1.*flops"):
        space.read_truth(other)


@pytest.mark.parametrize("resolution", [16, 32])
@torch.no_grad()
def test_proxy_takes_16_and_32_px_and_builds_every_choice(
    space: NBMacroSpace, resolution: int
) -> None:
    """Each searched layer of the proxy is its digit's op: three archs differing in one layer
    differ in params, and the logits have the class count at either input size."""
    counts = set()
    for digit in (0, 1, 2):
        arch = space.from_str(f"1{digit}121212")
        proxy = space.build_proxy(arch, num_classes=10, width=16).eval()
        assert proxy(torch.randn(2, 3, resolution, resolution)).shape == (2, 10)
        counts.add(count_params(proxy))
    assert len(counts) == 3


def test_covering_archs_cover_random_architectures(space: NBMacroSpace) -> None:
    assert isinstance(space, HasCoveringArchs)
    assert covering_archs(space) == space.covering_archs()
    shape = input_shape(space)
    covered = {
        u.key
        for a in covering_archs(space)
        for u in units(full_network(space, a, meta=True), shape)
    }
    rng = np.random.default_rng(0)
    for _ in range(50):
        model = full_network(space, space.sample(rng), meta=True)
        assert {u.key for u in units(model, shape)} <= covered
