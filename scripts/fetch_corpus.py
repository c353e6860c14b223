#!/usr/bin/env python3
"""Fetch the recording corpus (Debian packages, see ../shared/CORPUS.md) into the cache."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.corpus import CorpusError, ensure_corpus  # noqa: E402

if __name__ == "__main__":
    try:
        corpus = ensure_corpus(Path(sys.argv[1]) if len(sys.argv) > 1 else None, quiet=False)
    except CorpusError as exc:
        sys.exit(f"fetch_corpus: {exc}")
    print(f"corpus ready in {corpus.root}")
