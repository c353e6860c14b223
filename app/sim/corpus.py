"""The recording corpus: real recordings from Debian packages, fetched into a cache on first use.

Development and benchmark tooling: the simulated PBX plays these recordings as its companies,
the tests and ``bench/`` measure on them, ``scripts/fetch_corpus.py`` and the demo fetch them.
The app itself never reads them (an import-linter contract in pyproject.toml keeps it so).

The audio is never committed (its licences travel with derived mixes); ``ensure_corpus``
downloads the packages listed in ``PACKAGES`` with ``apt-get download`` and unpacks them
with ``dpkg-deb -x`` into ``$HOLDSLAYER_CORPUS_DIR`` (default ``~/.cache/holdslayer/corpus``).
No root is needed unless the machine has never run ``apt-get update``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGES = (
    "asterisk-core-sounds-en-wav",  # IVR prompts and announcements, 8 kHz WAV
    "asterisk-core-sounds-en",  # transcripts of those prompts (core-sounds-en.txt.gz)
    "asterisk-moh-opsound-wav",  # hold music, 8 kHz WAV
    "codec2-examples",  # real human speech
    "baresip-core",  # call-progress tones and DTMF
)
_MARKER = "corpus.json"


class CorpusError(RuntimeError):
    """The corpus is missing and could not be fetched."""


def default_corpus_dir() -> Path:
    env = os.environ.get("HOLDSLAYER_CORPUS_DIR")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "holdslayer" / "corpus"


@dataclass(frozen=True)
class Corpus:
    root: Path

    @property
    def prompts_dir(self) -> Path:
        return self.root / "usr/share/asterisk/sounds/en_US_f_Allison"

    @property
    def moh_dir(self) -> Path:
        return self.root / "usr/share/asterisk/moh"

    @property
    def speech_dir(self) -> Path:
        return self.root / "usr/share/codec2"

    @property
    def tones_dir(self) -> Path:
        return self.root / "usr/share/baresip"

    @property
    def transcripts_file(self) -> Path:
        return self.root / "usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"

    def prompt(self, name: str) -> Path:
        """An IVR prompt by its Asterisk sound name, e.g. ``queue-periodic-announce`` or ``digits/1``."""
        return self._existing(self.prompts_dir / f"{name}.wav")

    def moh_tracks(self) -> list[Path]:
        return sorted(self.moh_dir.glob("*.wav"))

    def speech(self, name: str) -> Path:
        """A human speech file from codec2-examples: ``kristoff.raw``, ``vk5qi.wav`` ..."""
        sub = "raw" if name.endswith(".raw") else "wav"
        return self._existing(self.speech_dir / sub / name)

    def resolve(self, ref: str) -> Path:
        """Resolve a corpus reference used in scenario files.

        ``prompt:NAME`` | ``moh:TRACK`` (file stem) | ``speech:FILE`` | ``tone:FILE`` | a path.
        """
        kind, _, name = ref.partition(":")
        if kind == "prompt":
            return self.prompt(name)
        if kind == "moh":
            return self._existing(self.moh_dir / f"{name}.wav")
        if kind == "speech":
            return self.speech(name)
        if kind == "tone":
            return self._existing(self.tones_dir / name)
        return self._existing(Path(ref))

    def is_complete(self) -> bool:
        return (self.root / _MARKER).exists() and self.prompts_dir.is_dir() and self.moh_dir.is_dir()

    @staticmethod
    def _existing(path: Path) -> Path:
        if not path.exists():
            raise CorpusError(f"corpus file not found: {path}")
        return path


def ensure_corpus(root: Path | None = None, *, quiet: bool = True) -> Corpus:
    """Return the corpus, fetching and unpacking the Debian packages first if needed."""
    corpus = Corpus(Path(root) if root else default_corpus_dir())
    if corpus.is_complete():
        return corpus
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise CorpusError(f"{tool} is needed to fetch the recording corpus (Debian packages {PACKAGES})")
    corpus.root.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(corpus.root / ".lock"):
        if corpus.is_complete():  # another process fetched it while we waited
            return corpus
        with tempfile.TemporaryDirectory(prefix="holdslayer-corpus-") as tmp:
            debs = _download(Path(tmp), quiet=quiet)
            for deb in debs:
                subprocess.run(["dpkg-deb", "-x", str(deb), str(corpus.root)], check=True)
            versions = {deb.name.split("_")[0]: deb.name.split("_")[1] for deb in debs}
        (corpus.root / _MARKER).write_text(json.dumps({"packages": versions}, indent=1))
    return corpus


@contextlib.contextmanager
def exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path``, so that processes fetching the same cache at once
    (a benchmark beside the test run, two test workers) take turns. flock: the kernel releases it
    if the holder dies."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _download(into: Path, *, quiet: bool) -> list[Path]:
    def attempt() -> subprocess.CompletedProcess:
        return subprocess.run(
            ["apt-get", "download", *PACKAGES], cwd=into, capture_output=True, text=True
        )

    result = attempt()
    if result.returncode != 0 and os.geteuid() == 0:
        # A fresh machine has no package lists yet.
        subprocess.run(["apt-get", "update"], capture_output=quiet, check=False)
        result = attempt()
    if result.returncode != 0:
        raise CorpusError(
            "could not download the corpus packages with apt-get "
            f"(run 'apt-get update' as root first?):\n{result.stderr.strip()}"
        )
    debs = sorted(into.glob("*.deb"))
    if len(debs) != len(PACKAGES):
        raise CorpusError(f"expected {len(PACKAGES)} packages, got {[d.name for d in debs]}")
    return debs
