"""Use cases (train, validate, promote, rollback, score). They talk to ports, not frameworks."""
