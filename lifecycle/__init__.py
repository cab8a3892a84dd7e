"""Radio's model lifecycle: aliases and tags, the promotion gate, the switch, retraining,
scheduled jobs and e-mail, without hand edits to the registry.

Command line: ``python -m lifecycle --help``. Needs MLflow (the ``serve`` extra); only
:mod:`lifecycle.retrain` needs TensorFlow (``ml``), and only when a training is launched.
The web app never imports this package: it runs its command line (``app/admin/lifecycle_cli.py``).
"""
