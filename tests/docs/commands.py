"""The shell commands README.md and docs/*.md show, as a new user would copy them.

Where commands are found:
- fenced ``bash`` / ``sh`` / ``shell`` blocks: every line that is not a comment
  (backslash continuations and multi-line ``( ... )`` joined, heredoc bodies skipped);
- fenced ``console`` and plain blocks: lines starting with ``$ `` (transcripts);
- inline code spans that start like a command (``make ...``, ``python -m ...``, ``npx ...``).

Each logical line is split into simple commands (at ``|``, ``&&``, ``;``, ``$( )``) with
``shlex``; leading ``VAR=value`` assignments and ``time`` / ``exec`` are dropped.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = ["README.md", *sorted(str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "docs").glob("*.md"))]
SCRIPT_BLOCKS = {"bash", "sh", "shell"}
TRANSCRIPT_BLOCKS = {"console", ""}
# An inline code span is a command when it starts like one (prose also names `cdk diff`, `AWS_REGION`...).
INLINE_COMMAND = re.compile(r"^(time |CI=\S+ )*(make |\.venv/bin/python |python3? -m |python3? -c |npx |curl )")
_SEPARATORS = {"|", "||", "&&", ";", "&", "(", ")", "{", "}", ";;"}
_PREFIXES = {"time", "exec"}
PLACEHOLDER = re.compile(r"<[A-Za-z][A-Za-z0-9_-]*>")
# Shell functions the documents define (called later as commands).
FUNCTIONS: set[str] = set()


@dataclass(frozen=True)
class Command:
    """One simple command: argv without assignments, and where it was written."""

    argv: tuple[str, ...]
    source: str  # "docs/local.md:73"
    line: str  # the logical line it came from
    inline: bool  # from an inline code span (prose), not a block

    def __str__(self) -> str:
        return f"{self.source}: {shlex.join(self.argv)}"


def logical_lines(path: str) -> list[tuple[str, str, bool]]:
    """(source, logical command line, inline?) for every command in one document."""
    found: list[tuple[str, str, bool]] = []
    lines = (REPO_ROOT / path).read_text().splitlines()
    block: str | None = None
    pending, pending_at = "", 0
    heredoc: str | None = None
    for number, line in enumerate(lines, 1):
        fence = re.match(r"^\s*```\s*(\w*)", line)
        if fence:
            block = None if block is not None else fence.group(1).lower()
            pending, heredoc = "", None
            continue
        if block is None:
            for span in re.findall(r"`([^`\n]+)`", line):
                if INLINE_COMMAND.match(span):
                    found.append((f"{path}:{number}", span, True))
            continue
        if heredoc is not None:
            heredoc = None if line.strip() == heredoc else heredoc
            continue
        if block in TRANSCRIPT_BLOCKS:
            if not line.startswith("$ ") and not pending:
                continue
            text = line[2:] if line.startswith("$ ") and not pending else line
        elif block in SCRIPT_BLOCKS:
            text = line
        else:
            continue
        stripped = text.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if not pending:
            pending_at = number
        pending = f"{pending} {stripped}" if pending else stripped
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        if _open_parentheses(pending) > 0:
            continue
        marker = re.search(r"<<-?\s*'?(\w+)'?", pending)
        if marker:
            heredoc = marker.group(1)
        found.append((f"{path}:{pending_at}", pending, False))
        pending = ""
    return found


def _open_parentheses(text: str) -> int:
    """Unclosed ``(`` outside quotes and comments (a multi-line array or $( ... ))."""
    try:
        tokens = list(_lexer(text))
    except ValueError:  # an unterminated quote: the command goes on on the next line
        return 1
    return tokens.count("(") - tokens.count(")")


def _lexer(text: str) -> shlex.shlex:
    lexer = shlex.shlex(text, posix=True, punctuation_chars="();<>|&")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    return lexer


def simple_commands(source: str, line: str, inline: bool) -> list[Command]:
    """Split a logical line into simple commands, dropping assignments, redirections and prefixes."""
    commands: list[Command] = []
    current: list[str] = []
    # `<account>`-style placeholders are values to fill in, not redirections.
    tokens = list(_lexer(PLACEHOLDER.sub("PLACEHOLDER", line)))
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token == "()" and len(current) == 1:  # `name() { ...; }` defines a shell function
            FUNCTIONS.add(current[0])
            current = []
        elif token in _SEPARATORS or set(token) <= set("();|&"):
            if current:
                commands.append(Command(tuple(current), source, line, inline))
            current = []
        elif token in ("<", ">", ">>", "<<", "2>", "&>", "<<-", "<<<"):
            index += 1  # the redirection's target is not an argument
        elif token == "$":
            pass  # the `$` of `$( ... )`: the command inside is split out as its own
        elif not current and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", token):
            if token.endswith("=") and index + 1 < len(tokens) and tokens[index + 1] == "(":
                index = tokens.index(")", index)  # `NAME=( ... )` is an array, not a command
        elif not current and token in _PREFIXES:
            pass
        else:
            current.append(token)
        index += 1
    if current:
        commands.append(Command(tuple(current), source, line, inline))
    return commands


def all_commands() -> list[Command]:
    return [
        command
        for path in DOCUMENTS
        for source, line, inline in logical_lines(path)
        for command in simple_commands(source, line, inline)
    ]
