"""Tools that drive the running system from outside: traffic simulation, retraining pull requests."""
