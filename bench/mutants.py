"""Mutation check: does the test suite catch deliberate bugs?

Each mutant in bench/mutants.toml names a file, an exact snippet of it, the buggy
replacement, and the tests that should catch it. For each mutant, in a temporary copy of
the tree (never the working tree), the snippet is replaced, the tests run, and the file is
restored. A mutant is

- killed:   the tests failed (or hung past --timeout), as they should;
- survived: the tests passed: a bug they would let through;
- stale:    the snippet is not in the file exactly once (the code changed: re-target it).

    .venv/bin/python bench/mutants.py                 # all mutants
    .venv/bin/python bench/mutants.py --only tolerance-equal-dose --only store-failure-uncaught
    .venv/bin/python bench/mutants.py --stale         # only check which snippets still match
    .venv/bin/python bench/mutants.py --markdown bench/results/mutants.md

Before the mutants, the union of their test selections runs once on the unmutated copy:
a selection that fails on its own would make every "killed" meaningless.
Exit status: 0 when every mutant is killed, 1 otherwise.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "bench" / "mutants.toml"
PYTEST = ["-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "--no-header"]


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str
    original: str
    replacement: str
    tests: tuple[str, ...]
    why: str = ""


@dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    status: str  # killed | survived | stale | timeout
    seconds: float
    detail: str = ""


def load_mutants(path: Path = TABLE) -> list[Mutant]:
    table = tomllib.loads(path.read_text(encoding="utf-8"))
    mutants = [Mutant(id=entry["id"], file=entry["file"], original=entry["original"],
                      replacement=entry["replacement"], tests=tuple(entry["tests"]),
                      why=entry.get("why", "")) for entry in table["mutant"]]
    ids = [m.id for m in mutants]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise SystemExit(f"{path}: duplicate mutant ids {duplicated}")
    return mutants


def copy_tree(destination: Path) -> Path:
    """The files git knows of (tracked, or new and not ignored), as they are now."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def stale_reason(tree: Path, mutant: Mutant) -> str | None:
    path = tree / mutant.file
    if not path.is_file():
        return f"{mutant.file} does not exist"
    found = path.read_text(encoding="utf-8").count(mutant.original)
    if found != 1:
        return f"snippet found {found} times in {mutant.file} (needs exactly 1)"
    return None


def run_tests(tree: Path, tests: list[str], timeout: float) -> tuple[bool | None, str]:
    """(passed, tail of the output); passed is None when the run hit the timeout."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1",
           "COVERAGE_PROCESS_START": ""}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", *PYTEST, *tests], cwd=tree, env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"no result within {timeout:.0f} s"
    failed = [line for line in done.stdout.splitlines() if line.startswith(("FAILED ", "ERROR tests"))]
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return done.returncode == 0, " | ".join(failed[:1] + lines[-1:])[-400:]


def try_mutant(tree: Path, mutant: Mutant, timeout: float) -> Outcome:
    started = time.monotonic()
    reason = stale_reason(tree, mutant)
    if reason:
        return Outcome(mutant, "stale", 0.0, reason)
    path = tree / mutant.file
    original_text = path.read_text(encoding="utf-8")
    path.write_text(original_text.replace(mutant.original, mutant.replacement), encoding="utf-8")
    try:
        passed, detail = run_tests(tree, list(mutant.tests), timeout)
    finally:
        path.write_text(original_text, encoding="utf-8")
    status = "timeout" if passed is None else "survived" if passed else "killed"
    return Outcome(mutant, status, time.monotonic() - started, detail)


def check_imports_from(tree: Path) -> None:
    """The copy's own modules must be the ones tested, not the working tree's."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    where = subprocess.run([sys.executable, "-c", "import service, cards; print(service.__file__, cards.__file__)"],
                           cwd=tree, env=env, capture_output=True, text=True, check=True).stdout
    if any(not Path(p).resolve().is_relative_to(tree.resolve()) for p in where.split()):
        raise SystemExit(f"the copy imports modules from elsewhere: {where}")


def markdown(outcomes: list[Outcome]) -> str:
    lines = ["| mutant | the bug | file | caught by | result |", "|---|---|---|---|---|"]
    for o in outcomes:
        tests = ", ".join(f"`{t.removeprefix('tests/')}`" for t in o.mutant.tests)
        lines.append(f"| `{o.mutant.id}` | {o.mutant.why} | `{o.mutant.file}` | {tests} | {o.status} |")
    return "\n".join(lines) + "\n"


def summary(outcomes: list[Outcome]) -> str:
    counts = {status: sum(o.status == status for o in outcomes)
              for status in ("killed", "timeout", "survived", "stale")}
    return (f"{len(outcomes)} mutants: {counts['killed']} killed, {counts['timeout']} killed by "
            f"timeout, {counts['survived']} survived, {counts['stale']} stale")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", default=[], metavar="ID", help="run only these mutants")
    parser.add_argument("--stale", action="store_true", help="only report which snippets no longer match")
    parser.add_argument("--skip-baseline", action="store_true", help="do not run the selections unmutated first")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per mutant's test run")
    parser.add_argument("--markdown", type=Path, help="also write the results table here")
    args = parser.parse_args()

    mutants = load_mutants()
    unknown = set(args.only) - {m.id for m in mutants}
    if unknown:
        parser.error(f"unknown mutant ids: {sorted(unknown)}")
    if args.only:
        mutants = [m for m in mutants if m.id in args.only]

    with tempfile.TemporaryDirectory(prefix="baclofen-mutants-") as folder:
        tree = copy_tree(Path(folder))
        if args.stale:
            stale = [(m, stale_reason(tree, m)) for m in mutants]
            for mutant, reason in stale:
                print(f"{'STALE' if reason else 'ok':5} {mutant.id}: {reason or mutant.file}")
            return 1 if any(reason for _, reason in stale) else 0
        check_imports_from(tree)
        if not args.skip_baseline:
            selections = sorted({t for m in mutants for t in m.tests})
            passed, detail = run_tests(tree, selections, args.timeout * 2)
            if not passed:
                print(f"baseline: the unmutated selections do not pass: {detail}")
                return 2
            print(f"baseline: {len(selections)} selections pass unmutated", flush=True)
        outcomes = []
        for mutant in mutants:
            outcome = try_mutant(tree, mutant, args.timeout)
            outcomes.append(outcome)
            print(f"{outcome.status:8} {mutant.id} ({outcome.seconds:.0f} s): {outcome.detail}",
                  flush=True)
    print(summary(outcomes))
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(summary(outcomes) + "\n\n" + markdown(outcomes), encoding="utf-8")
    return 0 if all(o.status in ("killed", "timeout") for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
