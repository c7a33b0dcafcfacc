"""Reference values of the YAHPO Gym problems: writes ``mfbo/problems/yahpo_reference.json``.

For every instance of the four scenarios of :mod:`mfbo.problems.yahpo`, the best target-fidelity
objective of a seeded random search (:func:`mfbo.problems.yahpo.reference_search`: 100,000
configurations from ``space.sample(numpy.random.default_rng(0), 100_000)``, one sample shared by
all instances of a scenario, evaluated in batches) and the configuration that attains it. The
file also stores what the package needs without the data: every scenario's instance ids (from
its ``config_space.json``) and the membership of YAHPO Gym's single-objective suite
(``suites/single_v1.0.json``) in these scenarios.

Needs the v1.0.2 surrogate files under ``$MFBO_DATA_DIR/yahpo`` (or ``--data-dir``). Runs on one
core in about 10 minutes (most of it the surrogate calls; timings are printed per scenario).
The output is deterministic for a given onnxruntime build.

    MFBO_DATA_DIR=../shared/data python experiments/yahpo_reference.py
    python experiments/yahpo_reference.py --data-dir ../shared/data --samples 2000 --out /tmp/ref.json
"""

from __future__ import annotations

import argparse
import json
import time
from importlib.metadata import version
from pathlib import Path

import torch

from mfbo.problems import yahpo


def suite_members(data_dir: str | None) -> dict[str, list[str]]:
    """The instances of the single-objective suite in each supported scenario (empty if none)."""
    path = yahpo.yahpo_data_dir(data_dir) / "suites" / f"{yahpo.SUITE}.json"
    if not path.is_file():
        raise FileNotFoundError(f"suite file {path} is missing; it is suites/{yahpo.SUITE}.json of YAHPO Gym's data repository")
    members: dict[str, list[str]] = {name: [] for name in yahpo.SCENARIOS}
    for entry in json.loads(path.read_text()):
        if entry["scenario"] in members:
            members[entry["scenario"]].append(str(entry["instance"]))
    return members


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="data directory (default: $MFBO_DATA_DIR)")
    parser.add_argument("--samples", type=int, default=yahpo.REFERENCE_SAMPLES)
    parser.add_argument("--seed", type=int, default=yahpo.REFERENCE_SEED)
    parser.add_argument("--out", default=str(Path(yahpo.__file__).with_name(yahpo.REFERENCE_FILE)))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    data_version = (yahpo.yahpo_data_dir(args.data_dir) / "VERSION").read_text().strip().removeprefix("VERSION:")
    if data_version != yahpo.DATA_VERSION:
        raise SystemExit(f"the data directory holds YAHPO Gym data version {data_version}, expected {yahpo.DATA_VERSION}")
    scenarios = {}
    total = time.perf_counter()
    for name in yahpo.SCENARIOS:
        start, cpu = time.perf_counter(), time.process_time()
        surrogate = yahpo.load_surrogate(name, args.data_dir)
        refs = yahpo.reference_search(name, args.samples, args.seed, data_dir=args.data_dir)
        scenarios[name] = {"instances": surrogate.instances, "reference": refs}
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
        values = [r["value"] for r in refs.values()]
        print(f"{name:13s} {len(refs):4d} instances  {seconds:6.1f} s wall, {cpu_seconds:6.1f} s CPU  "
              f"values {min(values):.4f} .. {max(values):.4f}", flush=True)
    out = {
        "about": (
            "Reference values of mfbo's YAHPO Gym problems: per instance, the best target-fidelity objective "
            "(and its configuration) among n_samples random configurations drawn with "
            "space.sample(numpy.random.default_rng(seed), n_samples), the same sample for all instances of a scenario. "
            "Not true optima: regret against them can be negative. Written by experiments/yahpo_reference.py."
        ),
        "data_version": data_version,
        "n_samples": args.samples,
        "seed": args.seed,
        "fixed_inputs": {"repl": yahpo.REPL},
        "onnxruntime": version("onnxruntime"),
        "suites": {yahpo.SUITE: suite_members(args.data_dir)},
        "scenarios": scenarios,
    }
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out} in {time.perf_counter() - total:.0f} s wall, {time.process_time():.0f} s CPU")


if __name__ == "__main__":
    main()
