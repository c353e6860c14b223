"""The wide recording corpus: many voices, music packages and speakers, fetched into a cache.

Development and benchmark tooling only; the live app never imports it. ``sources`` is the
registry (every package, its licence and its cross-validation group), ``fetch`` downloads
the packages and renders/decodes everything to 8 kHz mono int16 WAV plus ``manifest.json``.
"""
