"""The `vertex-cron` console script (pyproject's [project.scripts]).

It answers a bare `--version` itself: importing click and the commands (cli.py) costs
several times what starting Python does, and a version check should cost no more than
that. Everything else, `--help` included, goes to cli.py.
"""

from __future__ import annotations

import sys

from . import __version__

VERSION_LINE = f"vertex-cron, version {__version__}"  # click.version_option's wording, which cli.py shows


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        print(VERSION_LINE)
        return
    from .cli import main as commands

    commands()
