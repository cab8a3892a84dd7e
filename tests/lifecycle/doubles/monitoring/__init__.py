"""TEST DOUBLE of the monitoring package (issue 16 builds the real one): only what the
lifecycle's drift jobs call. Placed on sys.path by tests/lifecycle only."""
