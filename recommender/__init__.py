"""Users: feedback, the SUMO optimizer and peer policies, the HTTP service and feed page,
gap reports and generation. May import ``indexer``; never the other way round."""
