"""The local index's database (a generation's ``meta.sqlite``): every SQLite statement of the
project is in this package.

* ``schema``  the tables, the connections (read-only for a published generation, writable
  for the build's staging copy) and the encodings of the columns
* ``reader``  ``MetaReader``: the answer stages' and the document viewer's reads
  (``assistant.index.meta``'s protocols), and those of benchmarks and tools
* ``writer``  ``MetaWriter``: every write of the build (``assistant.build``), batch by batch
"""

from assistant.index.sqlite.reader import ChunkVectors, MetaReader, staged_chunk_count
from assistant.index.sqlite.schema import connect_read
from assistant.index.sqlite.writer import (
    MetaWriter,
    NewChunk,
    NewDocument,
    NewSentence,
    refused_writes,
)

__all__ = ["ChunkVectors", "MetaReader", "MetaWriter", "NewChunk", "NewDocument", "NewSentence",
           "connect_read", "refused_writes", "staged_chunk_count"]
