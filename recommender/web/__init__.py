"""The reference web client: static files served by ``recommender.api.routes.web``.

A package only so that installing SUMO (``pip install .``) ships the files with it.
"""
