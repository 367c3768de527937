#!/usr/bin/env python3
"""Checks that splitting Rust files is a pure move: the multiset of non-blank lines
before and after is the same, ignoring `use` and `mod` lines, module docs (`//!`),
visibility widened to `pub(super)`/`pub(crate)`, and line wrapping (both sides are
formatted with a wide `max_width` first, so a signature rustfmt wrapped after gaining
`pub(super)` compares equal).

Usage: scripts/pure-move-check.py BEFORE_REV:path/a.rs [...] -- after/x.rs after/y.rs ...
Prints the lines only before and only after; exits 1 if there are any.
"""

import collections
import os
import re
import subprocess
import sys
import tempfile

VISIBILITY = re.compile(r"\bpub\((super|crate)\) ")
IGNORED = re.compile(r"^(pub(\(\w+\))? )?(use |mod |//!)")


def normalised_lines(texts):
    lines = collections.Counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i, text in enumerate(texts):
            path = os.path.join(tmp, f"f{i}.rs")
            with open(path, "w") as f:
                # `mod x;` lines would make rustfmt look for the child files.
                f.write(re.sub(r"(?m)^\s*(pub(\(\w+\))? )?mod \w+;\n", "", VISIBILITY.sub("", text)))
            subprocess.run(
                ["rustfmt", "--edition", "2024", "--config", "max_width=200", path],
                check=True,
            )
            with open(path) as f:
                for line in f:
                    line = line.strip()
                    if line and not IGNORED.match(line):
                        lines[line] += 1
    return lines


def main():
    args = sys.argv[1:]
    split = args.index("--")
    before = [
        subprocess.run(["git", "show", spec], check=True, capture_output=True, text=True).stdout
        for spec in args[:split]
    ]
    after = [open(path).read() for path in args[split + 1 :]]
    old, new = normalised_lines(before), normalised_lines(after)
    gone, added = old - new, new - old
    for title, diff in (("only before", gone), ("only after", added)):
        print(f"{title}: {sum(diff.values())} lines")
        for line, n in sorted(diff.items()):
            print(f"  {n} x {line}")
    sys.exit(1 if gone or added else 0)


if __name__ == "__main__":
    main()
