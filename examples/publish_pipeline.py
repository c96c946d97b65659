"""Publish the example pipeline to an Artifact Registry KFP repository, then schedule it.

Run with kfp installed (it is not a vertex-cron dependency) and Application Default
Credentials that may write to the repository (roles/artifactregistry.writer on it):
    gcloud artifacts repositories create pipelines --repository-format=kfp \\
        --location=europe-west1 --project=my-project
    python examples/publish_pipeline.py https://europe-west1-kfp.pkg.dev/my-project/pipelines prod
It prints the `vertex-cron deploy` command for the tag. Deploy pins the schedule to the
version the tag names then; publish again and move the tag, and the next deploy shows the
move as an update (docs/cli.md, "Pipelines published to Artifact Registry").
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from kfp.registry import RegistryClient

SPEC = Path(__file__).parent / "pipeline.yaml"


def publish(host: str, tag: str, *, spec: Path = SPEC, **client_options: Any) -> tuple[str, str]:
    """Upload `spec` to the repository at `host` tagged `tag`: (the tag's URI, the version).
    An existing tag moves to the new version. `client_options` go to RegistryClient
    (`auth`, `config_file`)."""
    client = RegistryClient(host=host, **client_options)
    package, version = client.upload_pipeline(str(spec), tags=[tag])
    return f"{host}/{package}/{tag}", version


def main(argv: list[str]) -> None:
    host, tag = argv
    uri, version = publish(host, tag)
    print(f"published {uri} -> {version}")
    print(
        f"vertex-cron deploy nightly --spec {uri} --cron '0 3 * * *' --param run_date='{{{{schedule_time:%Y-%m-%d}}}}'"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
