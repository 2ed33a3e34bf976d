"""The ``sumo`` command line: wires the ``indexer`` and ``recommender`` packages together."""
