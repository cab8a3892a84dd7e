"""Where things are kept: the database, the image store, retention."""
