"""Shipped small open_clip model configs (``sumo-tiny`` for tests), registered by name."""
