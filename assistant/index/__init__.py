"""The index: the only package that knows the on-disk layout and the database schema.

* ``layout``   the folder (generations, CURRENT, staging, models, lock) and atomic files
* ``manifest`` reading and writing a generation's manifest
* ``meta``     what readers ask of a generation, whatever holds it: the read protocols by
  caller (``RetrievalSource`` for the answer stages, ``DocumentSource`` for the viewer)
* ``sqlite``   the local database: its schema, ``MetaReader`` and ``MetaWriter`` (nothing
  outside ``assistant.index`` imports ``sqlite3``: tests/unit/test_storage_contract.py)
* ``integrity`` each file checked against the size and SHA-256 its manifest records
* ``store``    opening a published generation, checked against its manifest (``open_index``)
* ``vectors``  the vector store protocol and the registry of adapters (``faiss``)

The build (``assistant.build``) writes generations through ``MetaWriter``; everything else
reads them through ``open_index`` (benchmarks and tools through ``OpenIndex.local``, the
``MetaReader``). Nothing here imports the answer stages or the settings.
"""
