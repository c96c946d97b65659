"""An example Luigi DAG with a Vertex AI pipeline in the middle:

    PrepareData (local CSV)  ->  TrainModel (examples/pipeline.yaml on Vertex AI)  ->  Publish

Run it from the checkout against the local stack: `vertex-cron local up` stays in the
foreground (Ctrl-C stops it), so start it in one terminal and paste the `export` lines it
prints into a second one, then run there (or against real Google Cloud, with
VERTEX_CRON_PROJECT, VERTEX_CRON_REGION and VERTEX_CRON_WORKLOAD_SA set):

    PYTHONPATH=examples python -m luigi --module luigi_dag Publish --date 2024-05-01 --local-scheduler

(`vertex-cron` and `python` are those of the checkout's .venv/bin: `source .venv/bin/activate`.)
Outputs go to ./luigi-out (`--workdir DIR` elsewhere). Running it again does nothing (every
output exists); if the worker dies while the pipeline runs, running it again attaches to
that same PipelineJob instead of starting another; delete an output to recompute it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import luigi
from vertex_cron.luigi import VertexPipelineTask

SPEC = Path(__file__).resolve().parent / "pipeline.yaml"


class PrepareData(luigi.Task):
    """Stands in for an extract step: writes the rows the pipeline will sample from."""

    date = luigi.DateParameter()
    rows = luigi.IntParameter(default=500)
    workdir = luigi.Parameter(default="luigi-out", significant=False)

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(f"{self.workdir}/prepared-{self.date}.csv")

    def run(self) -> None:
        with self.output().open("w") as out:
            out.write("id,value\n")
            out.writelines(f"{i},{i * 0.5}\n" for i in range(self.rows))


class TrainModel(VertexPipelineTask):
    """The pipeline run for one date and learning rate. The spec's location and the work
    directory are not significant: moving the checkout must not start a second run."""

    date = luigi.DateParameter()
    learning_rate = luigi.FloatParameter(default=0.05)
    dry_run = luigi.BoolParameter()
    spec = luigi.Parameter(default=str(SPEC), significant=False)
    workdir = luigi.Parameter(default="luigi-out", significant=False)

    def requires(self) -> PrepareData:
        return PrepareData(date=self.date, workdir=self.workdir)

    def pipeline_parameters(self) -> Mapping[str, Any]:
        with self.input().open() as prepared:
            sample_rows = sum(1 for _ in prepared) - 1  # minus the header
        return {
            "run_date": self.date.isoformat(),
            "sample_rows": sample_rows,
            "learning_rate": self.learning_rate,
            "dry_run": self.dry_run,
        }

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(f"{self.workdir}/vertex-run-{self.date}.json")


class Publish(luigi.Task):
    """Downstream of the pipeline: reads which PipelineJob produced the model."""

    date = luigi.DateParameter()
    workdir = luigi.Parameter(default="luigi-out", significant=False)

    def requires(self) -> TrainModel:
        return TrainModel(date=self.date, workdir=self.workdir)

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(f"{self.workdir}/published-{self.date}.txt")

    def run(self) -> None:
        with self.input().open() as record_file:
            record = json.load(record_file)
        with self.output().open("w") as out:
            out.write(f"model for {self.date} trained by {record['name']} ({record['state']})\n")
