#!/usr/bin/env python3
"""Fetch the recording corpus (Debian packages, see ../shared/CORPUS.md) into the cache.

No option: the base corpus (``app.sim.corpus``), exactly as always.
``--wide``: the wide corpus's full tier; ``--wide-sample``: its small sample tier (for CI).
See ``bench/corpus/README.md``. The base corpus is fetched first either way.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.sim.corpus import CorpusError, ensure_corpus  # noqa: E402

WIDE_FLAGS = {"--wide": "full", "--wide-sample": "sample"}

if __name__ == "__main__":
    args = sys.argv[1:]
    tiers = [WIDE_FLAGS[a] for a in args if a in WIDE_FLAGS]
    rest = [a for a in args if a not in WIDE_FLAGS]
    if any(a.startswith("--") for a in rest) or len(rest) > 1:
        sys.exit("usage: fetch_corpus.py [BASE_CORPUS_DIR] [--wide] [--wide-sample]")
    try:
        corpus = ensure_corpus(Path(rest[0]) if rest else None, quiet=False)
    except CorpusError as exc:
        sys.exit(f"fetch_corpus: {exc}")
    print(f"corpus ready in {corpus.root}")
    if tiers:
        from bench.corpus.fetch import WideCorpusError, ensure_wide_corpus

        for tier in tiers:
            try:
                path = ensure_wide_corpus(tier, quiet=False)
            except WideCorpusError as exc:
                sys.exit(f"fetch_corpus: {exc}")
            print(f"wide corpus ({tier}) ready in {path}")
