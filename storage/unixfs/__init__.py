"""UnixFS: files and directories as IPFS DAGs, with the same CIDs as Kubo and Helia."""

from zion.storage.unixfs.errors import UnixFsError
from zion.storage.unixfs.importer import (
    BlockSink,
    ImportedNode,
    import_bytes,
    import_file,
    import_path,
)
from zion.storage.unixfs.profiles import DEFAULT_PROFILE, PROFILES, ImportProfile

__all__ = [
    "DEFAULT_PROFILE",
    "PROFILES",
    "BlockSink",
    "ImportProfile",
    "ImportedNode",
    "UnixFsError",
    "import_bytes",
    "import_file",
    "import_path",
]
