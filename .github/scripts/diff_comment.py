#!/usr/bin/env python3
"""Render the `cdk diff` outputs of a pull request as ONE comment body.

The pull-request workflow runs `make diff ENV=<env>` per environment (each writes
.build/diff-<env>.txt), then this script turns the files into a Markdown body
that starts with a hidden marker; the comment job finds the earlier comment by
that marker and updates it, so a pull request carries one diff comment however
often it is pushed to.

    python .github/scripts/diff_comment.py --sha abc123 dev=.build/diff-dev.txt:success prod=...:failure
    ... --github-output "$GITHUB_OUTPUT"   # also write it as the step output `comment`

Standard library only: it runs before (or without) `make install`.
"""

from __future__ import annotations

import argparse
import re
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

MARKER = "<!-- cdk-diff-comment: AsyncInference -->"
# GitHub rejects comment bodies over 65,536 characters; leave room for the frame.
MAX_BODY = 65_000
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_STACKS_WITH_DIFFERENCES = re.compile(r"Number of stacks with differences:\s*(\d+)")
OUTCOMES = ("success", "failure", "cancelled", "skipped")


@dataclass(frozen=True)
class EnvironmentDiff:
    environment: str
    outcome: str  # the diff step's outcome: success, failure, cancelled or skipped
    text: str | None  # the captured CLI output; None when the step wrote nothing

    @property
    def changed(self) -> bool | None:
        """True/False from the CLI's summary line; None when it printed none (failed run)."""
        if self.text is None:
            return None
        match = _STACKS_WITH_DIFFERENCES.search(self.text)
        if match:
            return int(match.group(1)) > 0
        if "There were no differences" in self.text:
            return False
        return None

    @property
    def summary(self) -> str:
        if self.outcome != "success":
            return f"**{self.environment}**: :x: diff {self.outcome}"
        changed = self.changed
        if changed is None:
            return f"**{self.environment}**: :grey_question: no summary line in the output"
        return f"**{self.environment}**: " + ("changes" if changed else "no changes")


def clean(text: str) -> str:
    """Drop colour codes and carriage-return progress lines the CLI may print."""
    lines = []
    for line in _ANSI.sub("", text).splitlines():
        lines.append(line.rsplit("\r", 1)[-1])
    return "\n".join(lines).strip("\n")


def _fence(text: str) -> str:
    # A longer fence than any backtick run inside, so the diff cannot close it early.
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}diff\n{text}\n{fence}"


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    note = f"\n... truncated: {len(text) - limit} more characters; run `make diff` locally or see the job log"
    return text[: max(0, limit - len(note))] + note


def render(diffs: list[EnvironmentDiff], *, sha: str = "", run_url: str = "", max_body: int = MAX_BODY) -> str:
    """The whole comment body; always <= max_body characters and always starting with MARKER."""
    header = [MARKER, "### `cdk diff` of this pull request", ""]
    if sha:
        header.append(f"Commit `{sha[:12]}`" + (f" · [workflow run]({run_url})" if run_url else ""))
        header.append("")
    header.extend(f"- {diff.summary}" for diff in diffs)
    header.append("")
    frame = "\n".join(header) + "\n"  # a blank line, so <details> starts its own block

    sections = []
    budget = max(0, max_body - len(frame) - 200 * max(1, len(diffs)))
    share = budget // max(1, len(diffs))
    for diff in diffs:
        if diff.text is None:
            body = "_No output: the diff step did not run (see the workflow run)._"
        else:
            body = _fence(_truncate(clean(diff.text), max(0, share - 20)))
        sections.append(f"<details><summary>{diff.environment}</summary>\n\n{body}\n\n</details>\n")
    result = (frame + "\n".join(sections)).rstrip("\n")
    if len(result) > max_body:  # only with absurdly many environments
        result = result[: max_body - 20] + "\n... truncated"
    return result


def parse_spec(spec: str) -> tuple[str, Path, str]:
    """`env=path[:outcome]` -> (env, path, outcome)."""
    if "=" not in spec:
        raise argparse.ArgumentTypeError(f"{spec!r}: expected ENV=FILE[:OUTCOME]")
    environment, rest = spec.split("=", 1)
    path, outcome = rest, "success"
    head, sep, tail = rest.rpartition(":")
    if sep and (tail in OUTCOMES or not tail):
        # An empty outcome: the step never ran (its `outcome` expression was empty).
        path, outcome = head, tail or "skipped"
    if not re.fullmatch(r"[A-Za-z0-9._-]+", environment) or not path:
        raise argparse.ArgumentTypeError(f"{spec!r}: expected ENV=FILE[:OUTCOME]")
    return environment, Path(path), outcome


def load(specs: list[tuple[str, Path, str]]) -> list[EnvironmentDiff]:
    diffs = []
    for environment, path, outcome in specs:
        text = path.read_text(errors="replace") if path.is_file() else None
        diffs.append(EnvironmentDiff(environment=environment, outcome=outcome, text=text))
    return diffs


def write_github_output(path: Path, name: str, value: str) -> None:
    """Append a multi-line step output with a delimiter that cannot occur in the value."""
    delimiter = f"EOF_{secrets.token_hex(16)}"
    while delimiter in value:  # pragma: no cover - 128 random bits
        delimiter = f"EOF_{secrets.token_hex(16)}"
    with path.open("a", encoding="utf-8") as output:
        output.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("diffs", nargs="+", type=parse_spec, metavar="ENV=FILE[:OUTCOME]")
    parser.add_argument("--sha", default="")
    parser.add_argument("--run-url", default="")
    parser.add_argument("--github-output", type=Path, help="append the body as output `comment` to this file")
    args = parser.parse_args(argv)
    body = render(load(args.diffs), sha=args.sha, run_url=args.run_url)
    if args.github_output:
        write_github_output(args.github_output, "comment", body)
    sys.stdout.write(body + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
