"""Relative links in the repository's markdown resolve: the file exists and, for a
`#fragment`, a heading of that file has that GitHub anchor. Run by `just docs`.

    python3 infra/docs/check_links.py
"""

import pathlib
import re
import sys

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```")


def anchors(path):
    out, fenced = set(), False
    for line in path.read_text().splitlines():
        if FENCE.match(line):
            fenced = not fenced
        if fenced or not line.startswith("#"):
            continue
        text = line.lstrip("#").strip().lower()
        text = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
        out.add(text)
    return out


def main():
    root = pathlib.Path(__file__).resolve().parents[2]
    skip = {"target", "node_modules", ".git", "test-output"}
    files = sorted(
        p for p in root.rglob("*.md") if not skip.intersection(p.relative_to(root).parts)
    )
    broken = []
    for path in files:
        name = path.relative_to(root)
        fenced = False
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if FENCE.match(line):
                fenced = not fenced
            if fenced:
                continue
            for target in LINK.findall(line):
                if re.match(r"^[a-z]+:", target):
                    continue  # https:, mailto:
                file_part, _, fragment = target.partition("#")
                dest = (path.parent / file_part).resolve() if file_part else path
                if not dest.exists():
                    broken.append(f"{name}:{n}: {target} (no such file)")
                elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
                    broken.append(f"{name}:{n}: {target} (no heading #{fragment})")
    for b in broken:
        print(b, file=sys.stderr)
    sys.exit(1 if broken else 0)


if __name__ == "__main__":
    main()
