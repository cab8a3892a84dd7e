"""The web platform: configuration, errors, headers, health, metrics, gunicorn, the model client."""
