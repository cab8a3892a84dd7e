"""Who may do what: login, sessions, API tokens, users, the audit log."""
