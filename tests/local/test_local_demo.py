"""`vertex-cron local demo`: the `make demo` scenario passes, and says why when it cannot."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner
from vertex_cron_local.commands import local

REPO = Path(__file__).resolve().parents[2]


def test_the_demo_absorbs_the_duplicate_delivery_and_shows_one_pipeline_job(monkeypatch):
    monkeypatch.chdir(REPO)

    result = CliRunner().invoke(local, ["demo"])

    assert result.exit_code == 0, result.output
    assert re.search(r"1st\s+200\s+created", result.output)
    assert re.search(r"2nd\s+200\s+duplicate\s+.*already exists", result.output)
    job_ids = re.findall(r"^\s+id\s+(nightly-training-\d{8}-020000)$", result.output, re.MULTILINE)
    assert len(job_ids) == 1
    assert "serviceAccount  vertex-cron-workload@local-project.iam.gserviceaccount.com" in result.output
    assert re.search(r'parameterValues \{"run_date": "\d{4}-\d{2}-\d{2}", "sample_rows": 5000\}', result.output)
    # The day before's firing, never delivered, created by the catch-up sweep job; `status` shows both.
    assert re.search(r"HTTP 200 swept: swept 1 schedule: 1 created", result.output)
    assert re.search(r"^\s+\+ projects/.*/pipelineJobs/nightly-training-\d{8}-0[12]0000$", result.output, re.MULTILINE)
    assert re.search(r"^\s+nightly-training\s+ENABLED\s+.*✓✓\s+0\s", result.output, re.MULTILINE)
    assert "Demo passed" in result.output


def test_the_demo_fails_with_a_reason_when_the_example_spec_is_missing(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)

    result = CliRunner().invoke(local, ["demo"])

    assert result.exit_code == 1
    assert "examples/pipeline.yaml not found" in result.output
    assert "Traceback" not in result.output
