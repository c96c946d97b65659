"""Compile the example pipeline to examples/pipeline.json and examples/pipeline.yaml.

Run with kfp installed (it is not a vertex-cron dependency):
    python -m venv /tmp/kfp && /tmp/kfp/bin/pip install 'kfp>=2.7,<3'
    /tmp/kfp/bin/python examples/compile_pipeline.py
The outputs are committed so tests, the demo and users need no kfp.
"""

from pathlib import Path

from kfp import compiler, dsl

HERE = Path(__file__).parent


@dsl.component(base_image="python:3.12-slim")
def extract(run_date: str, sample_rows: int) -> str:
    """Pretend to pull one day of data and report what was read."""
    return f"read {sample_rows} rows for {run_date}"


@dsl.component(base_image="python:3.12-slim")
def train(summary: str, learning_rate: float, dry_run: bool) -> str:
    """Pretend to train on the extracted data."""
    mode = "dry run" if dry_run else "trained"
    return f"{mode} at lr={learning_rate} on: {summary}"


@dsl.pipeline(
    name="nightly-training",
    description="Example pipeline scheduled by vertex-cron.",
    pipeline_root="gs://vertex-cron-demo-artifacts/pipeline-root",
)
def nightly_training(
    run_date: str,
    sample_rows: int = 1000,
    learning_rate: float = 0.01,
    dry_run: bool = False,
):
    summary = extract(run_date=run_date, sample_rows=sample_rows)
    train(summary=summary.output, learning_rate=learning_rate, dry_run=dry_run)


if __name__ == "__main__":
    for name in ("pipeline.json", "pipeline.yaml"):
        compiler.Compiler().compile(nightly_training, str(HERE / name))
        print(f"wrote examples/{name}")
