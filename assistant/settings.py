"""All settings in one place: paths, model, chunking, retrieval and abstention.

Values come, in order of precedence, from keyword arguments (the CLI's flags),
environment variables prefixed ``ASSISTANT_`` (``ASSISTANT_INDEX_DIR=...``), a
TOML file (``assistant.toml`` in the working directory, or the file named by
``ASSISTANT_CONFIG``), then the defaults below.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from assistant.errors import REBUILD_WITHOUT_QDRANT, SettingsError

RETIRED = ("store", "qdrant_url")
"""Settings of the retired Qdrant store: named with how to rebuild, not silently ignored."""


def _retired(where: str) -> SettingsError:
    return SettingsError(f"{where} is a setting of the retired Qdrant vector store; remove it "
                         f"(an index built with Qdrant is rebuilt with {REBUILD_WITHOUT_QDRANT})")


def _config_file() -> Path:
    """``assistant.toml`` in the working folder (read when it exists), or the file named by
    ``ASSISTANT_CONFIG``, which must exist: a mistyped name must not silently fall back to
    the defaults."""
    named = os.environ.get("ASSISTANT_CONFIG")
    if named is None:
        return Path("assistant.toml")
    path = Path(named)
    if not named.strip():
        raise SettingsError("ASSISTANT_CONFIG is set but empty; name a TOML file, or unset it "
                            "to read ./assistant.toml")
    if not path.exists():
        raise SettingsError(f"ASSISTANT_CONFIG names {named}, which does not exist")
    if path.is_dir():
        raise SettingsError(f"ASSISTANT_CONFIG names {named}, which is a folder, not a TOML "
                            "file")
    return path


class _CheckedToml(TomlConfigSettingsSource):
    """assistant.toml, read strictly: a syntax error or an unknown key (``top_kk``) is a
    ``SettingsError`` that names the file, not a setting silently ignored."""

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        try:
            with file_path.open(mode="rb") as fh:
                data: dict[str, Any] = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{file_path} is not valid TOML ({exc})") from exc
        except OSError as exc:
            raise SettingsError(f"cannot read {file_path}: {exc.strerror or exc}") from exc
        known = set(Settings.model_fields)
        for key in data:
            if key in RETIRED:
                raise _retired(f"{file_path}: {key!r}")
            if key not in known:
                near = difflib.get_close_matches(key, sorted(known), n=1)
                hint = f"; did you mean {near[0]}?" if near else ""
                raise SettingsError(f"{file_path}: unknown setting {key!r}{hint} (the settings "
                                    "are listed in assistant/settings.py)")
        return data


class Settings(BaseSettings):
    """Configuration of the assistant; every field can be set by env or TOML."""

    model_config = SettingsConfigDict(env_prefix="ASSISTANT_", extra="ignore")

    corpus_dir: Path = Path("corpus")
    """Folder of documents to index (.txt, .md, .html/.htm, .pdf), searched recursively."""

    index_dir: Path = Path("index")
    """Folder holding the built index (generations, model export, lock)."""

    model_path: Path | None = None
    """Sentence-transformers model folder; default: the assistant's own encoder,
    all-MiniLM-L6-v2 tuned on analysts' questions (``assistant.encoder``)."""

    model_name: str = "MiniLM-L6-tuned"
    """Name recorded in the manifest, and shown in the chat, for the model at ``model_path``
    (the default names the tuned all-MiniLM-L6-v2)."""

    chunk_max_tokens: int = Field(default=200, ge=16, le=250)
    """Longest chunk in word pieces, title prefix included (the model reads 256 at most)."""

    chunk_overlap_sentences: int = Field(default=1, ge=0, le=3)
    """Sentences repeated at the start of the next chunk, so context crosses chunk borders."""

    sentence_vectors: Literal["standalone", "late"] = "standalone"
    """How sentences get their vectors: embedded on their own (best answer selection on the
    dev sets: +17 points of dense top-1), or pooled from their chunk's tokens ("late
    chunking": free, so indexing is about twice as fast)."""

    embed_batch_size: int = Field(default=64, ge=1, le=1024)
    """Most texts per forward pass when building; a budget of 512 padded tokens a pass
    (assistant.embed.Embedder) usually binds first."""

    embed_threads: int = Field(default=0, ge=0, le=64)
    """Threads for the embedding runtime; 0 means one per core. A build runs that many
    batches at once, one thread each; a query runs one batch on that many threads."""

    server: str | None = None
    """A PostgreSQL server (``postgresql://user@host:5432/db``, with pgvector) that holds the
    whole index for a team: built into by `assistant index`, answered from by every command,
    with no local index folder. The password comes from the URL, ``PGPASSWORD`` or
    ``~/.pgpass`` and is never written anywhere."""

    ann_threshold: int = Field(default=50_000, ge=1)
    """Above this many chunks FAISS searches approximately (IVF) instead of exactly."""

    server_ann_threshold: int = Field(default=5_000, ge=1)
    """Above this many chunks the PostgreSQL server searches by HNSW instead of exactly. Lower
    than FAISS's: pgvector's exact scan costs far more a chunk than FAISS's, and HNSW gives
    the exact search's answer to nearly every benchmark question (scripts/bench.py scale --server;
    docs/team-server.md)."""

    server_timeout_s: float = Field(default=10.0, ge=1.0, le=3600.0)
    """The longest an answer waits for one statement (or a new connection) of the PostgreSQL
    server: a frozen or overloaded server gives a clear error after this, not a hang."""

    server_retry_s: float = Field(default=30.0, ge=0.0, le=3600.0)
    """How long a lost connection to the PostgreSQL server is retried (with backoff) before
    the question fails: a server restarting within this time costs no answer. Once it has
    failed, later questions fail at once, but for a new attempt every few seconds."""

    top_k: int = Field(default=5, ge=1, le=50)
    """Citations listed with an answer."""

    candidates: int = Field(default=24, ge=5, le=500)
    """Chunks fetched from each retriever before reranking."""

    abstain_below: float | None = Field(default=None, ge=0.0, le=1.0)
    """Answer only when the calibrated confidence reaches this; below it, abstain. Unset:
    the threshold fitted with the answer model by scripts/fit.py (at most 5% of answerable
    held-out questions abstained)."""

    corpus_name: str | None = Field(default=None, min_length=1, max_length=60)
    """What the corpus is called in an abstention ("The briefing does not cover this."). Unset:
    "The document" for a one-document corpus, "The indexed documents" for more."""

    language: Literal["en"] = "en"
    """Language of the corpus and the questions: which file of assistant/qa/lang/ holds the
    stop words, pronouns, plural rules and answer kinds."""

    lock_timeout_s: float = Field(default=30.0, ge=0.0)
    """How long a build waits for another build's lock before giving up."""

    max_question_chars: int = Field(default=2000, ge=10)
    """Longer questions are refused with a clear message."""

    watch: bool = False
    """While the chat is open, re-index changed corpus files in the background a few
    seconds after they stop changing (off: the chat only says the index is stale; its
    palette turns this on or off for the session)."""

    @field_validator("corpus_dir", "index_dir", "model_path", mode="before")
    @classmethod
    def _no_empty_path(cls, value: Any, info: ValidationInfo) -> Any:
        """An empty path is the current folder: ``ASSISTANT_INDEX_DIR=`` would build the
        index into it. Refused, naming what sets it."""
        if isinstance(value, str) and not value.strip():
            raise PydanticCustomError(
                "empty_path", "is empty (ASSISTANT_{env} or {name} in assistant.toml set to "
                "nothing); name a folder, or unset it for the default",
                {"env": str(info.field_name).upper(), "name": str(info.field_name)})
        return value

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_are_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """``top_k = true`` in TOML is not 1, nor ``top_k = 2.0`` a whole number written on
        purpose: pydantic's lax mode would take both (strict mode would refuse the strings
        of environment variables, so this check is made here)."""
        field = cls.model_fields.get(str(info.field_name))
        annotation = field.annotation if field is not None else None
        if isinstance(value, bool) and annotation is not bool:
            raise PydanticCustomError("not_a_number", "must be a number, not {value}",
                                      {"value": str(value).lower()})
        if annotation is int and isinstance(value, float):
            raise PydanticCustomError("not_a_whole_number", "must be a whole number, not "
                                      "{value}", {"value": value})
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        for key in RETIRED:
            if f"ASSISTANT_{key.upper()}" in os.environ:
                raise _retired(f"ASSISTANT_{key.upper()} (in the environment)")
        return (
            init_settings,
            env_settings,
            _CheckedToml(settings_cls, toml_file=_config_file()),
        )

    def resolved_model_path(self) -> Path:
        """The model folder to load; the assistant's tuned encoder unless configured."""
        if self.model_path is not None:
            return self.model_path
        from assistant.encoder import tuned_model_path

        return tuned_model_path()
