"""Sub-commands contributed by the recommender (``serve``, ``bench``, ``gaps``)."""
