"""Rebuild every figure and table of the reference studies from their stored results.

Each reference study is a TOML file under ``experiments/`` whose runs write their logs into a
results directory (``mfbo study run FILE``); this script turns each results directory into the
paper's figures and tables with :func:`mfbo.analysis.write_report`, exactly what
``mfbo plot RESULTS --out paper_figs/figures/NAME`` does. See ``paper_figs/README.md`` for which
figure comes from which study.

    python paper_figs/make_figures.py                              # every reference study
    python paper_figs/make_figures.py --study compare_acquisitions
    python paper_figs/make_figures.py --results-root /data/mfbo    # results stored elsewhere

A study whose results directory is missing (not run yet) is reported with the command that
produces it, and the script exits with status 1 after building the others.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: name -> (study file, results directory), both relative to the repository root.
REFERENCE_STUDIES: dict[str, tuple[str, str]] = {
    "compare_acquisitions": ("experiments/compare_acquisitions.toml", "results/compare_acquisitions"),
    "mf_vs_bandits": ("experiments/mf_vs_bandits.toml", "results/mf_vs_bandits"),
}


def build(name: str, results_root: Path, out_root: Path, stat: str) -> list[Path] | None:
    """Write the figures of one reference study; ``None`` (with a message) if its results are missing."""
    from mfbo.analysis import write_report

    study_file, results = REFERENCE_STUDIES[name]
    results_dir = results_root / results
    if not results_dir.is_dir() or not any(results_dir.rglob("*.jsonl")):
        state = "has no run logs" if results_dir.is_dir() else "does not exist"
        print(f"{name}: skipped: {results_dir} {state}; produce it with `mfbo study run {study_file}`"
              f"{'' if (REPO / study_file).exists() else f' (the study file {study_file} is not written yet)'}",
              file=sys.stderr)
        return None
    out = out_root / name
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = write_report(results_dir, out, stat=stat)
    for w in caught:
        if issubclass(w.category, RuntimeWarning):
            print(f"{name}: warning: {w.message}", file=sys.stderr)
    print(f"{name}: {len(written)} files in {out}  (= mfbo plot {results_dir} --out {out} --stat {stat})")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", action="append", choices=sorted(REFERENCE_STUDIES),
                        help="a reference study to rebuild (repeatable; default: all)")
    parser.add_argument("--results-root", type=Path, default=REPO, help="where the results/ directories are (default: the repository)")
    parser.add_argument("--out", type=Path, default=REPO / "paper_figs" / "figures", help="output root (default: paper_figs/figures)")
    parser.add_argument("--stat", choices=["median", "mean"], default="median", help="median with IQR, or mean with standard error")
    args = parser.parse_args(argv)
    missing = [name for name in (args.study or list(REFERENCE_STUDIES)) if build(name, args.results_root, args.out, args.stat) is None]
    if missing:
        print(f"not rebuilt: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
