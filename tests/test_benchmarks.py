"""Every benchmark script runs from the installed project (with the test extra): it answers
``--help`` from any folder, without pytest and without the tests' own modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import REPO, run_python

BENCHMARKS = sorted((REPO / "benchmarks").glob("bench_*.py"))
#: pytest and the tests' conftest made unimportable: a benchmark needing either fails here.
RUN_WITHOUT_TESTS = """
import runpy, sys
sys.modules.update(pytest=None, conftest=None, storage_backends=None, badcorpus=None)
sys.argv = [sys.argv[1], "--help"]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.mark.parametrize("script", BENCHMARKS, ids=[p.stem for p in BENCHMARKS])
def test_benchmark_answers_help_without_the_test_suite(script: Path, tmp_path: Path) -> None:
    result = run_python(["-c", RUN_WITHOUT_TESTS, str(script)], cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout


def test_there_are_benchmarks() -> None:
    assert len(BENCHMARKS) >= 8


def test_the_baseline_ref_is_an_argument(tmp_path: Path) -> None:
    import subprocess

    result = subprocess.run(["bash", str(REPO / "benchmarks" / "make_baseline.sh")], cwd=tmp_path,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "usage: bash benchmarks/make_baseline.sh REF" in result.stderr
