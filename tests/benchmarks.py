"""Running a benchmark script in its quick mode, for the benchmarks' smoke tests."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def quick_results(script, out):
    """Run ``bench/<script> --quick --out <out>`` and return its JSON results,
    after checking that it succeeded and printed and wrote its acceptance numbers."""
    run = subprocess.run([sys.executable, str(BENCH / script), "--quick", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Acceptance numbers" in out.with_suffix(".txt").read_text()
    assert "Acceptance numbers" in run.stdout
    return json.loads(out.read_text())
