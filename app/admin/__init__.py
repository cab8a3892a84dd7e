"""Admin pages over the model lifecycle and the monitoring reports."""
