"""Background work: the RQ queue and the register-snapshot job."""
