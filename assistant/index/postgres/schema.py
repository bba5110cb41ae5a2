"""The server's schema: every table lives in one PostgreSQL schema, ``briefing_assistant``.

Each row of a document (its text, chunks, sentences, term postings) carries the generation
that added it (``born``) and the one that removed it (``dies``, null while it lives): a reader
of generation g sees ``born <= g < dies``. A build adds rows for a new generation and marks
the rows that leave, then moves ``current`` to it, all in one transaction; rows no reader can
still see are deleted by the next build. ``info`` names the schema's owner and version, so a
stale or foreign schema is told apart from ours.

``term_df`` holds each term's sentence count per generation (a row per term whose count
changed), so that a reader's IDF is an index look-up rather than a count of the term's
postings (a common word has hundreds of thousands at 100,000 chunks). Version 2 added it.
"""

from __future__ import annotations

SCHEMA = "briefing_assistant"
OWNER = "briefing-assistant"
SERVER_SCHEMA_VERSION = 3
"""Raised when a table changes shape: readers of another version refuse the server."""

LOCK_KEY = 0x62726965  # "brie": the advisory lock that serialises builds
READER_KEY = 0x72656164  # "read": (READER_KEY, generation) is held shared by each reader

NEVER = 2_147_483_647


def visible(alias: str) -> str:
    """The rows of ``alias`` a reader of generation ``%(g)s`` sees."""
    return f"{alias}.born <= %(g)s AND coalesce({alias}.dies, {NEVER}) > %(g)s"


def create_sql(dimension: int) -> list[str]:
    s = SCHEMA
    return [
        f"CREATE SCHEMA IF NOT EXISTS {s}",
        f"CREATE TABLE {s}.info (key text PRIMARY KEY, value text NOT NULL)",
        f"CREATE TABLE {s}.generations (generation integer PRIMARY KEY, manifest text NOT NULL,"
        " sentence_rows bigint NOT NULL, token_total bigint NOT NULL,"
        " published_at timestamptz NOT NULL DEFAULT now())",
        f"CREATE TABLE {s}.current (one boolean PRIMARY KEY DEFAULT true CHECK (one),"
        f" generation integer NOT NULL REFERENCES {s}.generations)",
        f"CREATE TABLE {s}.documents (doc_id text NOT NULL, born integer NOT NULL,"
        " dies integer, title text NOT NULL, format text NOT NULL, content_hash text NOT NULL,"
        " size bigint NOT NULL, mtime_ns bigint NOT NULL, text text NOT NULL,"
        " sections text NOT NULL, units text NOT NULL, locations text NOT NULL,"
        " signature text NOT NULL, PRIMARY KEY (doc_id, born))",
        f"CREATE TABLE {s}.chunks (id bigint NOT NULL, born integer NOT NULL, dies integer,"
        " doc_id text NOT NULL, ordinal integer NOT NULL, section text NOT NULL,"
        " start integer NOT NULL, \"end\" integer NOT NULL, first_owned integer NOT NULL,"
        f" vector bytea NOT NULL, embedding vector({dimension}) NOT NULL,"
        " PRIMARY KEY (id, born))",
        f"CREATE INDEX chunks_doc ON {s}.chunks (doc_id)",
        f"CREATE TABLE {s}.sentences (id bigint NOT NULL, born integer NOT NULL, dies integer,"
        " chunk_id bigint NOT NULL, doc_id text NOT NULL, start integer NOT NULL,"
        " \"end\" integer NOT NULL, vector bytea NOT NULL, body text NOT NULL,"
        " PRIMARY KEY (id, born))",
        f"CREATE INDEX sentences_chunk ON {s}.sentences (chunk_id)",
        f"CREATE INDEX sentences_doc ON {s}.sentences (doc_id, start)",
        f"CREATE TABLE {s}.postings (term text NOT NULL, sentence_id bigint NOT NULL,"
        " born integer NOT NULL, dies integer, doc_id text NOT NULL, body_tf integer NOT NULL,"
        " context_tf integer NOT NULL, tokens integer NOT NULL,"
        # covering: the lexical search reads only this index (an index-only scan, once the
        # build's VACUUM has set the visibility map), never the postings' scattered heap rows
        " PRIMARY KEY (term, sentence_id, born) INCLUDE (dies, body_tf, context_tf, tokens))",
        f"CREATE INDEX postings_doc ON {s}.postings (doc_id)",
        f"CREATE TABLE {s}.term_vectors (term text NOT NULL, born integer NOT NULL,"
        " dies integer, vector bytea NOT NULL, PRIMARY KEY (term, born))",
        f"CREATE TABLE {s}.term_df (term text NOT NULL, born integer NOT NULL, dies integer,"
        " sentences integer NOT NULL, PRIMARY KEY (term, born))",
        f"INSERT INTO {s}.info VALUES ('owner', '{OWNER}'),"
        f" ('version', '{SERVER_SCHEMA_VERSION}'), ('dimension', '{dimension}')",
    ]


DOCUMENT_TABLES = ("documents", "chunks", "sentences", "postings")
ALL_TABLES = (*DOCUMENT_TABLES, "term_vectors", "term_df")
