"""The local stack and the `vertex-cron` CLI run against it: the deployer's end-to-end tests
share these (import them: `from local_cli import local_stack, vertex_cron`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from vertex_cron.cli import cli
from vertex_cron_local.stack import LocalStack

# Settings the developer's environment may hold; the stack's own settings_env() must decide.
_HOST_SETTINGS = ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT", "VERTEX_CRON_PROJECT", "VERTEX_CRON_BUILD_SA")


@contextmanager
def local_stack(directory: Path) -> Iterator[LocalStack]:
    """A started LocalStack, with `directory` as the working directory (so no vertex-cron.toml
    of this checkout applies) and none of the host's settings."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(directory)
        for name in _HOST_SETTINGS:
            patch.delenv(name, raising=False)
        with LocalStack() as stack:
            yield stack


def vertex_cron(stack: LocalStack, *args: str, code: int | None = 0, **env_overrides: str) -> Result:
    """The CLI against `stack`; fails the test unless it exits with `code` (None: any)."""
    env = {**stack.settings_env(), "VERTEX_CRON_POLL_SECONDS": "0.05", **env_overrides}
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    if code is not None:
        assert result.exit_code == code, result.output
    return result
