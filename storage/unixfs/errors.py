"""The one exception type of zion.storage.unixfs."""

from zion.storage.errors import StorageError


class UnixFsError(StorageError):
    """A file or directory could not be imported, or a DAG could not be exported."""
