"""How reproducible is a measured latency here, and what does the table reach against it?

On ``--n`` seeded random architectures of a space (seed 0, as ``bench latency``), each network is
compiled ``--sessions`` times (a new runtime session each time, alternating the order) and timed
as ``bench latency`` times it (median of ``--runs`` after 3 warm-up, the runtime's clock). It
prints the agreement (Kendall tau over the architectures):

- of two timings in the *same* session, and of two *fresh* sessions: the noise a single
  measurement carries;
- of the median of half the sessions with the median of the other half: the ceiling of a
  many-session measurement;
- of this machine's cached table and of FLOPs with the median over all sessions.

    python scripts/latency_noise.py --space mobilenetv3 --runtime onnxruntime --n 30 --sessions 8
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import stats

from mote_optuna.cost import count_flops
from mote_optuna.latency import get_runtime, load_table
from mote_optuna.latency.units import full_network, input_shape
from mote_optuna.spaces import get_space


def tau(a: np.ndarray, b: np.ndarray) -> float:
    return round(float(stats.kendalltau(a, b)[0]), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="mobilenetv3")
    parser.add_argument("--runtime", default="onnxruntime")
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    space, runtime = get_space(args.space), get_runtime(args.runtime)
    rng = np.random.default_rng(0)
    found: dict[str, object] = {}
    while len(found) < args.n:
        arch = space.sample(rng)
        found.setdefault(space.key(arch), arch)
    archs, shape = list(found.values()), input_shape(space)
    same = np.zeros((args.n, 2))
    fresh = np.zeros((args.n, args.sessions))
    with runtime.threads_fixed():
        kept = [runtime.compile(full_network(space, a), shape) for a in archs]
        for p in range(2):
            for i, run in enumerate(kept):
                same[i, p] = runtime.median_ms(run, warmup=3, runs=args.runs)
        for s in range(args.sessions):
            for i in range(args.n) if s % 2 == 0 else reversed(range(args.n)):
                run = runtime.compile(full_network(space, archs[i]), shape)
                fresh[i, s] = runtime.median_ms(run, warmup=3, runs=args.runs)
    half = args.sessions // 2
    truth = np.median(fresh, axis=1)
    table = load_table(space, runtime)
    predicted = np.array([table.predict(space, a) for a in archs])
    flops = np.array([count_flops(space.build_full(a), space.full_net.resolution) for a in archs])
    print(f"{args.space} on {args.runtime}, {args.n} architectures, {args.sessions} sessions")
    print(f"  same session, two timings: tau {tau(same[:, 0], same[:, 1])}")
    print(f"  two fresh sessions:        tau {tau(fresh[:, 0], fresh[:, 1])}")
    med_a, med_b = np.median(fresh[:, :half], axis=1), np.median(fresh[:, half:], axis=1)
    print(f"  median of {half} vs median of the other {half} sessions: tau {tau(med_a, med_b)}")
    error = float(np.mean(np.abs(predicted - truth) / truth))
    print(
        f"  against the median of all {args.sessions}: table tau {tau(predicted, truth)} "
        f"(mean relative error {error:.1%}), FLOPs tau {tau(flops, truth)}"
    )


if __name__ == "__main__":
    main()
