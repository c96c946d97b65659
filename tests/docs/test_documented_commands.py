"""The first hour of a new user: README's, docs/local.md's and docs/luigi.md's shell commands,
taken from the Markdown and run exactly as written in a fresh copy of this checkout.

Every shell block in those documents carries, on the line before it, an HTML comment saying
how this check treats it (GitHub does not render it):

- `<!-- doc-check: run -->`: each command runs in "terminal 2", one bash session shared by
  all such blocks (variables and background jobs carry over, as in a terminal), and must exit
  0; a `console` block's lines after a command are an excerpt of its output (see `excerpt`).
  `run; not "PREFIX" (REASON)` leaves out the commands starting with PREFIX.
- `<!-- doc-check: start -->`: "terminal 1", started before anything else: its last command
  stays in the foreground (`vertex-cron local up`), so it runs in the background until the
  end, when it gets the Ctrl-C the docs say stops it. Once its output has shown the block's
  lines before the first `...`, the `source`/`export` lines it printed are pasted into
  terminal 2, as the docs say.
- `<!-- doc-check: output of "COMMAND" -->`: the block is an excerpt of the output of
  COMMAND, run earlier by a `run` block (a `console` block's own `$ COMMAND` line aside).
- `<!-- doc-check: skip (REASON) -->`: not run (it needs a Google Cloud project, say).

Terminal 1's blocks start first, then the `run` blocks follow in the order of DOCUMENTS:
README's real-cloud quickstart runs against the local stack, which stands for the project.

The copy is of this checkout's working tree (uncommitted edits included), with its `.venv`
and `.venv-uv` linked in, so `make demo` there finds the install up to date and changes
nothing; the commands run with none of the developer's vertex-cron settings and without
`.venv/bin` on PATH until the docs activate it. After the last command the copy must be as
clean as it started (`git status`): the recipes leave no litter in a checkout.

Network: none, once two caches exist. The stack's function virtualenv comes from
~/.cache/vertex-cron/function-envs (the whole suite shares it) and the recipe's
/tmp/vertex-cron-fn is reused by later runs; the first run on a machine builds both with pip
from PyPI (about 15 s each). The recipe's fixed path and port (8089) are why one run of this
check at a time holds a lock. The whole check takes minutes, not seconds (`make demo`, about
twenty CLI commands, a Luigi DAG, the function served from its own virtualenv), so it is
marked slow; it runs in `make test` and so on CI.
"""

from __future__ import annotations

import fcntl
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from vertex_cron_local.function_env import RUNTIME_VERSION, runtime_interpreter

REPO = Path(__file__).resolve().parents[2]
# In the order the run blocks run: README's quickstart first, then the local stack's pages.
DOCUMENTS = ("README.md", "docs/local.md", "docs/luigi.md")
SHELL_LANGUAGES = frozenset({"console", "sh", "shell", "bash"})
MARKER = re.compile(r"<!-- doc-check: (?P<action>.+?) -->")
ACTION = re.compile(
    r'run(?:; not "(?P<left_out>[^"]+)" \((?P<why>[^)]+)\))?'
    r"|skip \((?P<reason>.+)\)"
    r"|start"
    r'|output of "(?P<command>[^"]+)"'
)
# How the docs write the checkout's path where the real one would be printed.
CHECKOUT_PLACEHOLDER = "/path/to/checkout"
SENTINEL = "__doc_check_done__"
# Not a timing assertion: how long a command may take before the check gives up on it (a pip
# install from PyPI on a loaded machine included).
COMMAND_DEADLINE_SECONDS = 600.0
SHARED_RECIPE_LOCK = Path("/tmp/vertex-cron-doc-check.lock")
# The developer's own settings must not reach the commands: the docs' exports must suffice.
_SETTINGS_PREFIXES = ("VERTEX_CRON_", "GOOGLE_", "CLOUDSDK_", "STORAGE_EMULATOR_HOST", "VIRTUAL_ENV", "PYTHONPATH")
# A `make test` parent's jobserver must not leak into the documented `make demo`.
_MAKE_VARIABLES = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKE_TERMOUT", "MAKE_TERMERR")


@dataclass
class Command:
    text: str
    shown: list[str] = field(default_factory=list)  # the output lines the docs show after it


@dataclass
class Block:
    where: str  # "README.md:12", the block's opening fence
    language: str
    action: str | None  # the marker's text, None when the block has none
    lines: list[str]

    @property
    def marker(self) -> re.Match[str]:
        match = ACTION.fullmatch(self.action or "")
        assert match, f"{self.where}: doc-check marker {self.action!r} is none of run, start, skip (...), output of ..."
        return match

    def commands(self) -> list[Command]:
        """`console`: the `$ ` lines (with their `\\` continuations), each followed by its output;
        other shells: every line that is not blank or a comment."""
        commands: list[Command] = []
        continued = False
        for line in self.lines:
            if continued:
                commands[-1].text += "\n" + line
            elif self.language != "console" and line.strip() and not line.lstrip().startswith("#"):
                commands.append(Command(line))
            elif line.startswith("$ "):
                commands.append(Command(line[2:]))
            elif self.language == "console" and commands:
                commands[-1].shown.append(line)
            else:
                continue
            continued = line.endswith("\\")
        return commands


def blocks(document: str) -> list[Block]:
    """Every fenced block of `document` with the doc-check marker right before it, if any."""
    lines = (REPO / document).read_text().splitlines()
    found: list[Block] = []
    action: str | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        marker = MARKER.fullmatch(line.strip())
        if line.startswith("```"):
            end = next(k for k in range(index + 1, len(lines)) if lines[k].startswith("```"))
            found.append(Block(f"{document}:{index + 1}", line[3:].strip(), action, lines[index + 1 : end]))
            index = end
        action = marker.group("action") if marker else None
        index += 1
    return found


def normalized(line: str, checkouts: tuple[Path, ...]) -> str:
    """What may differ between the docs and a run: ports, times, dates and ids (any run of two
    or more digits), the checkout's path, and column widths."""
    for checkout in checkouts:
        line = line.replace(str(checkout), CHECKOUT_PLACEHOLDER)
    return " ".join(re.sub(r"\d{2,}", "0", line).split())


def excerpt(shown: list[str], output: str, checkouts: tuple[Path, ...]) -> list[str]:
    """The shown lines missing from `output`: each must be found, in order, within a line of it
    (lines in between, and `...` lines in the docs, stand for what the docs leave out)."""
    actual = [normalized(line, checkouts) for line in output.splitlines()]
    missing, position = [], 0
    for line in shown:
        wanted = normalized(line, checkouts)
        if not wanted or wanted == "...":
            continue
        found = next((k for k in range(position, len(actual)) if wanted in actual[k]), None)
        if found is None:
            missing.append(line)
        else:
            position = found + 1
    return missing


class Terminal:
    """A bash process in its own session, its output (stdout and stderr) read line by line."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str], stdin: int) -> None:
        self.process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.output: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def next_line(self) -> str | None:
        """The next line of output; None once the process closed its output."""
        try:
            line = self._lines.get(timeout=COMMAND_DEADLINE_SECONDS)
        except queue.Empty:
            pytest.fail(f"no output for {COMMAND_DEADLINE_SECONDS:.0f} s from {self.process.args}")
        if line is not None:
            self.output.append(line)
        return line

    def stop(self, signum: int) -> None:
        """`signum` to the whole session (the shell and what it started in the background)."""
        try:
            os.killpg(self.process.pid, signum)
            self.process.wait(timeout=COMMAND_DEADLINE_SECONDS)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            pytest.fail(f"{self.process.args} did not stop on signal {signum}")


class Shell(Terminal):
    """Terminal 2: one bash session; each command is sourced from a file of its own, exactly
    as written, with stdin from /dev/null so nothing it runs can read the next command."""

    def __init__(self, cwd: Path, env: dict[str, str], scripts: Path) -> None:
        super().__init__(["bash"], cwd, env, subprocess.PIPE)
        self._scripts = scripts
        self._count = 0

    def run(self, command: str) -> tuple[int, str]:
        self._count += 1
        script = self._scripts / f"{self._count}.sh"
        script.write_text(command + "\n")
        assert self.process.stdin is not None
        self.process.stdin.write(f". {script} </dev/null; __rc=$?; echo; echo {SENTINEL} $__rc\n")
        self.process.stdin.flush()
        lines = []
        while (line := self.next_line()) is not None:
            if line.startswith(SENTINEL):
                return int(line.split()[1]), "\n".join(lines)
            lines.append(line)
        pytest.fail(f"terminal 2 ended while running {command!r}:\n" + "\n".join(lines[-30:]))


@pytest.mark.fast
def test_every_shell_block_says_how_the_check_treats_it() -> None:
    unmarked = [
        block.where
        for document in DOCUMENTS
        for block in blocks(document)
        if block.language in SHELL_LANGUAGES and block.action is None
    ]
    assert not unmarked, f"shell blocks without a <!-- doc-check: ... --> line before them: {unmarked}"
    for document in DOCUMENTS:
        for block in blocks(document):
            if block.action is not None:
                assert block.marker  # a marker that does not parse names its block


def fresh_copy(destination: Path) -> Path:
    """This checkout's working tree (tracked and new files, as `git clone` of it committed
    would give), with its installed virtualenvs linked in and committed to a git of its own."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    for relative in filter(None, listing.split("\0")):
        source = REPO / relative
        if source.is_file() or source.is_symlink():
            (destination / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / relative, follow_symlinks=False)  # mtimes kept: make's view
    for venv in (".venv", ".venv-uv"):
        (destination / venv).symlink_to(REPO / venv)
    git = ["git", "-c", "user.name=doc-check", "-c", "user.email=doc-check@localhost"]
    subprocess.run([*git, "init", "-q"], cwd=destination, check=True)
    (destination / ".git" / "info" / "exclude").write_text(".venv\n.venv-uv\n")
    subprocess.run([*git, "add", "-A"], cwd=destination, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "the checkout as the docs' reader has it"], cwd=destination, check=True)
    stale = subprocess.run(["make", "-q", ".venv/.synced-stamp"], cwd=destination, env=_without_make(os.environ))
    if stale.returncode != 0:
        pytest.fail("the checkout's .venv is older than uv.lock: run `make install` first")
    return destination


def _without_make(environ: Mapping[str, str]) -> dict[str, str]:
    return {name: value for name, value in environ.items() if name not in _MAKE_VARIABLES}


def reader_environment() -> dict[str, str]:
    """The environment of someone who just cloned the repository: none of the developer's
    vertex-cron settings, the checkout's .venv not on PATH, and the Python the recipe calls
    `python3.12` first on it."""
    interpreter, version = runtime_interpreter()
    if not version.startswith(RUNTIME_VERSION + "."):
        pytest.skip(f"docs/local.md's functions-framework recipe needs python{RUNTIME_VERSION}; none found")
    venv = (REPO / ".venv").resolve()
    path = [p for p in os.environ["PATH"].split(os.pathsep) if not Path(p).resolve().is_relative_to(venv)]
    env = {name: value for name, value in _without_make(os.environ).items() if not name.startswith(_SETTINGS_PREFIXES)}
    env["PATH"] = os.pathsep.join([str(Path(interpreter).parent), *path])
    return env


@pytest.fixture
def one_at_a_time() -> Iterator[None]:
    """docs/local.md's recipe uses /tmp/vertex-cron-fn and port 8089: one run of this check at
    a time on a machine (several checkouts' suites may run at once)."""
    with SHARED_RECIPE_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.mark.slow
def test_the_documented_commands_run_as_written_from_a_fresh_copy(tmp_path: Path, one_at_a_time: None) -> None:
    env = reader_environment()
    copy = fresh_copy(tmp_path / "checkout")
    (tmp_path / "scripts").mkdir()
    checkouts = (copy, REPO)
    plan = [block for document in DOCUMENTS for block in blocks(document) if block.action is not None]
    outputs: dict[str, str] = {}  # each command's output, for `output of` blocks

    starts = [block for block in plan if block.marker.group(0) == "start"]
    terminal_1: list[Terminal] = []
    with ExitStack() as running:  # stops every terminal, in reverse, whatever fails
        for block in starts:
            terminal = Terminal(
                ["bash", "-c", "\n".join(c.text for c in block.commands())], copy, env, subprocess.DEVNULL
            )
            running.callback(terminal.stop, signal.SIGINT)  # Ctrl-C, which the docs say stops it
            terminal_1.append(terminal)
        terminal_2 = Shell(copy, env, tmp_path / "scripts")
        running.callback(terminal_2.stop, signal.SIGTERM)

        for block, terminal in zip(starts, terminal_1, strict=True):
            [command] = block.commands()[-1:]
            printed = _wait_until_started(block, command, terminal, checkouts)
            pasted = "\n".join(line.strip() for line in printed if line.strip().startswith(("source ", "export ")))
            code, output = terminal_2.run(pasted)
            assert code == 0, f"{block.where}: pasting the printed lines failed:\n{pasted}\n{output}"

        for block in plan:
            match = block.marker
            if match.group(0).startswith("run"):
                for command in block.commands():
                    if match.group("left_out") and command.text.startswith(match.group("left_out")):
                        continue
                    code, output = terminal_2.run(command.text)
                    outputs[_without_comment(command.text)] = output
                    assert code == 0, f"{block.where}: `{command.text}` exited {code}:\n{_tail(output)}"
                    missing = excerpt(command.shown, output, checkouts)
                    assert not missing, f"{block.where}: `{command.text}` did not print {missing}:\n{_tail(output)}"
            elif match.group("command"):
                source = match.group("command")
                assert source in outputs, f"{block.where}: no run block before it runs `{source}`"
                shown = [line for line in block.lines if _without_comment(line.removeprefix("$ ")) != source]
                missing = excerpt(shown, outputs[source], checkouts)
                assert not missing, f"{block.where}: `{source}` did not print {missing}:\n{_tail(outputs[source])}"

    for block, terminal in zip(starts, terminal_1, strict=True):
        while terminal.next_line() is not None:
            pass
        [command] = block.commands()[-1:]
        missing = excerpt(command.shown, "\n".join(terminal.output), checkouts)
        assert not missing, (
            f"{block.where}: `{command.text}` did not print {missing}:\n{_tail(chr(10).join(terminal.output))}"
        )

    litter = subprocess.run(["git", "status", "--porcelain"], cwd=copy, capture_output=True, text=True, check=True)
    assert litter.stdout == "", f"the documented commands left files in the checkout:\n{litter.stdout}"


def _wait_until_started(block: Block, command: Command, terminal: Terminal, checkouts: tuple[Path, ...]) -> list[str]:
    """Terminal 1's output once it shows the block's lines before the first `...`."""
    ready = command.shown[: command.shown.index("...")] if "..." in command.shown else command.shown
    while excerpt(ready, "\n".join(terminal.output), checkouts):
        if terminal.next_line() is None:
            pytest.fail(
                f"{block.where}: `{command.text}` ended before printing {ready}:\n{_tail(chr(10).join(terminal.output))}"
            )
    return list(terminal.output)


def _without_comment(command: str) -> str:
    return command.split(" #")[0].strip()


def _tail(output: str) -> str:
    return "\n".join(output.splitlines()[-40:])
