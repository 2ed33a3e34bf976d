"""Simulator: CLIP-like synthetic corpora and simulated users with a hidden taste."""
