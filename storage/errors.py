"""The one exception type of zion.storage."""


class StorageError(Exception):
    """The database could not be opened, migrated or written."""
