"""Security tests: SASL_SSL with SCRAM, secrets kept out of logs, metrics bound where told."""
