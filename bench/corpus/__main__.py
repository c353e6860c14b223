"""``python -m bench.corpus [full|sample]``: fetch a tier of the wide corpus (see ``fetch``)."""

import sys

from bench.corpus.fetch import WideCorpusError, ensure_wide_corpus

if __name__ == "__main__":
    tier = sys.argv[1] if len(sys.argv) > 1 else "full"
    try:
        path = ensure_wide_corpus(tier, quiet=False)
    except WideCorpusError as exc:
        sys.exit(f"wide corpus: {exc}")
    print(f"wide corpus ({tier}) ready in {path}")
