"""The corpus: CLIP embedder, vector stores, scanning and ingest.

Imports point one way: ``recommender`` may import ``indexer``; ``indexer`` never imports
``recommender``.
"""
