"""Rebuild every figure and table of the reference studies from their stored results.

Each reference study is a TOML file under ``experiments/`` whose runs write their logs into a
results directory (``mfbo study run FILE``); this script turns each results directory into the
paper's figures and tables with :func:`mfbo.analysis.write_report`, exactly what
``mfbo plot RESULTS --out paper_figs/figures/NAME`` does. See ``paper_figs/README.md`` for which
figure comes from which study.

    python paper_figs/make_figures.py                              # every reference study
    python paper_figs/make_figures.py --only compare_acquisitions   # (--study is the same)
    python paper_figs/make_figures.py --results-root /data/mfbo    # results stored elsewhere

Stored results. The run logs of a reference study can be kept as one archive,
``paper_figs/results/NAME.tar.xz`` (the finished ``*.jsonl`` logs only), written by ``--store
NAME`` after a study has run; light ones are committed (``compare_acquisitions``), heavy ones
are git-ignored (``mf_vs_bandits``, 18 MB). The stored trial records leave out the fields no
figure or table reads, :data:`UNSTORED_FIELDS` (each trial's learning curve and the problem's
extra outputs: on LCBench they are half of a log); every other line is stored as the run wrote
it. A study whose results directory is missing is rebuilt from its archive (extracted into a
temporary directory), so a fresh clone rebuilds the committed studies' figures without running
anything. A study with neither (``mf_vs_bandits`` on a fresh clone) is reported with the command
that produces it and what that command needs here (the YAHPO data, say), and skipped: the script
exits 0 after building the others. Only a study named with ``--only`` that cannot be built makes
it exit 1.

    python paper_figs/make_figures.py --store compare_acquisitions   # archive results/compare_acquisitions
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tarfile
import tempfile
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: name -> (study file, results directory), both relative to the repository root.
REFERENCE_STUDIES: dict[str, tuple[str, str]] = {
    "compare_acquisitions": ("experiments/compare_acquisitions.toml", "results/compare_acquisitions"),
    "mf_vs_bandits": ("experiments/mf_vs_bandits.toml", "results/mf_vs_bandits"),
}


#: Trial-record fields left out of the stored logs: no figure or table reads them.
UNSTORED_FIELDS = ("curve", "info")


def archive_path(name: str, archive_root: Path) -> Path:
    """The stored run logs of reference study ``name``."""
    return archive_root / f"{name}.tar.xz"


def store(name: str, results_root: Path, archive_root: Path) -> Path:
    """Archive the run logs (``*.jsonl``, not the evaluation caches) of ``name``'s results
    directory as ``archive_root/NAME.tar.xz``, members relative to the results directory, their
    trial records without :data:`UNSTORED_FIELDS`. Runs without a footer (stopped, or still
    running) are left out, as the figures leave them out, and named."""
    results_dir = results_root / REFERENCE_STUDIES[name][1]
    found = sorted(results_dir.rglob("*.jsonl")) if results_dir.is_dir() else []
    logs = [log for log in found if _finished(log)]
    if not logs:
        raise SystemExit(f"--store {name}: no run logs under {results_dir}; run `mfbo study run {REFERENCE_STUDIES[name][0]}` first")
    archive = archive_path(name, archive_root)
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:xz", preset=9) as tar:
        for log in logs:
            data = _without_unstored_fields(log.read_bytes())
            info = tarfile.TarInfo(log.relative_to(results_dir).as_posix())
            info.size, info.mode = len(data), 0o644  # mtime, owner 0: the same logs give the same archive
            tar.addfile(info, io.BytesIO(data))
    print(f"{name}: stored {len(logs)} run logs in {archive} ({archive.stat().st_size / 1e3:.0f} kB)")
    if unfinished := [log.name for log in found if log not in logs]:
        print(f"{name}: left out {len(unfinished)} unfinished run(s) (no footer): {', '.join(unfinished)}")
    return archive


def _finished(log: Path) -> bool:
    """Whether a run log ends with its footer."""
    with log.open("rb") as f:
        f.seek(max(0, f.seek(0, io.SEEK_END) - 65536))
        last = f.read().rstrip().rsplit(b"\n", 1)[-1]
    try:
        return json.loads(last).get("type") == "footer"
    except (ValueError, AttributeError):
        return False


def _without_unstored_fields(log: bytes) -> bytes:
    """A JSON Lines run log with :data:`UNSTORED_FIELDS` removed from its trial records; other
    lines unchanged, byte for byte."""
    lines = []
    for line in log.splitlines(keepends=True):
        record = json.loads(line) if line.strip() else None
        if isinstance(record, dict) and record.get("type") == "trial" and any(k in record for k in UNSTORED_FIELDS):
            line = (json.dumps({k: v for k, v in record.items() if k not in UNSTORED_FIELDS}, allow_nan=False) + "\n").encode()
        lines.append(line)
    return b"".join(lines)


def build(name: str, results_root: Path, out_root: Path, stat: str, archive_root: Path | None = None) -> list[Path] | None:
    """Write the figures of one reference study from its results directory, else from its stored
    archive; ``None`` (with a message) if it has neither."""
    study_file, results = REFERENCE_STUDIES[name]
    results_dir = results_root / results
    if results_dir.is_dir() and any(results_dir.rglob("*.jsonl")):
        return _report(name, results_dir, out_root, stat, source=str(results_dir))
    archive = archive_path(name, archive_root) if archive_root is not None else None
    if archive is not None and archive.is_file():
        with tempfile.TemporaryDirectory() as tmp, tarfile.open(archive, "r:xz") as tar:
            _safe_extract(tar, Path(tmp) / name)
            return _report(name, Path(tmp) / name, out_root, stat, source=f"the stored logs {archive}")
    state = "has no run logs" if results_dir.is_dir() else "does not exist"
    print(f"{name}: skipped: {results_dir} {state} and there is no stored archive; produce it with "
          f"`mfbo study run {study_file}`{_needs(study_file)}", file=sys.stderr)
    return None


def _needs(study_file: str) -> str:
    """What running ``study_file`` needs that this installation lacks (one short clause), if anything."""
    if not (REPO / study_file).exists():
        return f" (the study file {study_file} is not written yet)"
    from mfbo.study import load_study

    try:
        missing = load_study(REPO / study_file).unavailable
    except Exception as err:  # a broken study file: say so rather than fail the other figures
        return f" (the study file does not load: {type(err).__name__})"
    if not missing:
        return ""
    first = missing[0] if len(missing[0]) <= 160 else missing[0][:157] + "..."
    return f", which needs what this installation lacks ({len(missing)} item(s)), first: {first}"


def _safe_extract(tar: tarfile.TarFile, into: Path) -> None:
    """Extract regular files with relative paths only (the ``"data"`` filter where this Python has it)."""
    for member in tar.getmembers():
        if not member.isfile() or member.name.startswith("/") or ".." in Path(member.name).parts:
            raise SystemExit(f"{tar.name}: refusing the archive member {member.name!r} (only relative run logs are stored)")
    try:
        tar.extractall(into, filter="data")
    except TypeError:  # Python without extraction filters (< 3.10.12 / 3.11.4); the members were checked above
        tar.extractall(into)


def _report(name: str, results_dir: Path, out_root: Path, stat: str, source: str) -> list[Path]:
    from mfbo.analysis import write_report

    out = out_root / name
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = write_report(results_dir, out, stat=stat)
    for w in caught:
        if issubclass(w.category, RuntimeWarning):
            print(f"{name}: warning: {w.message}", file=sys.stderr)
    print(f"{name}: {len(written)} files in {out} from {source} (= mfbo plot RESULTS --out {out} --stat {stat})")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", "--study", dest="study", action="append", choices=sorted(REFERENCE_STUDIES),
                        help="a reference study to rebuild (repeatable; default: every one that can be built)")
    parser.add_argument("--results-root", type=Path, default=REPO, help="where the results/ directories are (default: the repository)")
    parser.add_argument("--out", type=Path, default=REPO / "paper_figs" / "figures", help="output root (default: paper_figs/figures)")
    parser.add_argument("--stat", choices=["median", "mean"], default="median", help="median with IQR, or mean with standard error")
    parser.add_argument("--archives", type=Path, default=REPO / "paper_figs" / "results",
                        help="where the stored run-log archives are (default: paper_figs/results)")
    parser.add_argument("--store", action="append", choices=sorted(REFERENCE_STUDIES), metavar="NAME",
                        help="archive this study's run logs into --archives (repeatable) instead of building figures")
    args = parser.parse_args(argv)
    if args.store:
        for name in args.store:
            store(name, args.results_root, args.archives)
        return 0
    names = args.study or list(REFERENCE_STUDIES)
    missing = [name for name in names if build(name, args.results_root, args.out, args.stat, args.archives) is None]
    if missing:
        print(f"not rebuilt: {', '.join(missing)}" + ("" if args.study else
              f" (no results yet; built: {', '.join(n for n in names if n not in missing) or 'nothing'})"), file=sys.stderr)
    return 1 if missing and args.study else 0


if __name__ == "__main__":
    sys.exit(main())
