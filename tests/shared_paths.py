"""Where the project's shared reference material lives: ``../shared`` beside the checkout.

CI clones the repo with shared/ beside it; ``HOLDSLAYER_SHARED_DIR`` overrides the location.
The material is required: tests that compare against real Asterisk fail loudly without it
rather than skipping.
"""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HOLDSLAYER_SHARED_DIR") or REPO.parent / "shared")
CAPTURES_DIR = SHARED / "asterisk" / "captures"
ARI_DOCS_DIR = SHARED / "asterisk" / "ari-api-docs"


def require(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: the tests need the shared reference material beside the repo "
            "(or set HOLDSLAYER_SHARED_DIR)"
        )
    return path
