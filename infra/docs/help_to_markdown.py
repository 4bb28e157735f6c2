"""One section of docs/configuration.md from a binary's `--help` (clap's long help) on stdin.

Used by infra/docs/configuration.sh (which writes the file) and, through it, by the tests
that check the file is current: one renderer, so the check and the file cannot disagree.
Deterministic: the output depends on the help text only. A value clap shows from the
environment (`[env: NAME=value]`) is dropped, so a variable set in the shell running the
script or the tests changes nothing.

    python3 infra/docs/help_to_markdown.py TITLE < help.txt
"""

import re
import sys

ENV = re.compile(r"^\[env: ([A-Za-z0-9_]+)(=.*)?\]$")
DEFAULT = re.compile(r"^\[default: (.*)\]$")
POSSIBLE = re.compile(r"^\[possible values: (.*)\]$")
HEADER = re.compile(r"^([A-Z][A-Za-z ]*):$")
OPTION = re.compile(r"^ {2,6}(-[A-Za-z], )?(--[A-Za-z0-9-]+)( <[^>]+>)?$")
POSITIONAL = re.compile(r"^ {2}(<[^>]+>|\[[^\]]+\])$")
COMMAND = re.compile(r"^ {2}([a-z][a-z0-9-]*)\s{2,}(.*)$")
# Clap's short layout (no option has a long help): the flag, then its text on one line.
OPTION_INLINE = re.compile(r"^ {2,6}((-[A-Za-z], )?--[A-Za-z0-9-]+( <[^>]+>)?)\s{2,}(.*)$")
TRAILER = re.compile(r"\s*(\[(?:env|default|possible values): [^\]]*\]|\[env: [A-Za-z0-9_]+\])$")


def cell(text):
    """Text for a table cell: one line, `|` escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def parse(lines):
    about, usage, sections, current = [], None, {}, None
    for line in lines:
        if line.startswith("Usage: "):
            usage = line[len("Usage: "):].strip()
            current = None
            continue
        m = HEADER.match(line)
        if m and usage is not None:
            current = m.group(1)
            sections[current] = []
            continue
        if usage is None:
            about.append(line)
        elif current is not None:
            sections[current].append(line)
    return about, usage, sections


def entries(lines, start):
    """Groups the lines of an Options/Arguments section into (header, body lines)."""
    out = []
    for line in lines:
        if start.match(line):
            out.append([line.strip(), []])
        elif start is OPTION and (m := OPTION_INLINE.match(line)):
            out.append([m.group(1), [m.group(4)]])
        elif out and line.strip():
            out[-1][1].append(line.strip())
    return out


def describe(body):
    text, env, default, possible = [], None, None, None
    for line in body:
        # `[env: ...]` and friends: lines of their own in the long layout, or at the end of
        # the help text when clap puts the text on the next line but keeps them inline.
        trailers = []
        while t := TRAILER.search(line):
            trailers.insert(0, t.group(1))
            line = line[: t.start()]
        if line.strip():
            text.append(line.strip())
        for trailer in trailers:
            if m := ENV.match(trailer):
                env = m.group(1)
            elif m := DEFAULT.match(trailer):
                default = m.group(1)
            elif m := POSSIBLE.match(trailer):
                possible = m.group(1)
    help_text = cell(" ".join(text))
    if possible:
        help_text += f" (one of: {cell(possible)})"
    return env, default, help_text


def render(title, lines):
    about, usage, sections = parse(lines)
    out = [f"## {title}", ""]
    paragraphs = [p for p in "\n".join(about).strip().split("\n\n") if p.strip()]
    for p in paragraphs:
        out += [" ".join(p.split()), ""]
    if usage:
        out += ["```text", f"Usage: {usage}", "```", ""]

    commands = [COMMAND.match(l) for l in sections.get("Commands", [])]
    commands = [m for m in commands if m and m.group(1) != "help"]
    if commands:
        out += ["| command | what it does |", "| --- | --- |"]
        out += [f"| `{m.group(1)}` | {cell(m.group(2))} |" for m in commands]
        out.append("")

    variables, flags = [], []
    for header, body in entries(sections.get("Options", []), OPTION):
        m = OPTION.match("  " + header)
        long_flag = m.group(2)
        if long_flag in ("--help", "--version"):
            continue
        env, default, help_text = describe(body)
        value = (m.group(3) or "").strip()
        flag = f"`{long_flag}{' ' + value if value else ''}`"
        if env:
            variables.append((env, flag, default, help_text))
        else:
            flags.append((flag, default, help_text))
    for header, body in entries(sections.get("Arguments", []), POSITIONAL):
        _, default, help_text = describe(body)
        flags.append((f"`{header}`", default, help_text))

    if variables:
        out += ["| variable | flag | default | meaning |", "| --- | --- | --- | --- |"]
        for env, flag, default, help_text in variables:
            shown = f"`{cell(default)}`" if default is not None else ""
            out.append(f"| `{env}` | {flag} | {shown} | {help_text} |")
        out.append("")
    if flags:
        out += ["Without a variable:", "", "| flag or argument | default | meaning |", "| --- | --- | --- |"]
        for flag, default, help_text in flags:
            shown = f"`{cell(default)}`" if default is not None else ""
            out.append(f"| {flag} | {shown} | {help_text} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: help_to_markdown.py TITLE < help.txt")
    sys.stdout.write(render(sys.argv[1], sys.stdin.read().splitlines()))
