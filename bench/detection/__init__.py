"""The detection benchmark: labelled sessions from the corpus, metrics, and the runner.

``python -m bench.detection`` runs it; see bench/README.md.
"""
