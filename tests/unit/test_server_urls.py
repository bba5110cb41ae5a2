"""Server URLs: what is written never holds a password, and which local staging folder a
server build uses depends on which database it is, not on how the URL is spelled."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from assistant.build.server import staging_dir
from assistant.index.postgres.connection import public_url


def test_public_url_drops_every_password() -> None:
    url = ("postgresql://analyst:pa55@db.internal:5433/briefings"
           "?sslmode=verify-full&password=q&sslpassword=keypass&sslrootcert=/ca.pem")
    shown = public_url(url)
    assert "pa55" not in shown and "password=q" not in shown and "keypass" not in shown
    assert shown == ("postgresql://analyst@db.internal:5433/briefings"
                     "?sslmode=verify-full&sslrootcert=/ca.pem")


def test_staging_folder_is_the_database_not_the_spelling(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_MODEL_CACHE", str(tmp_path))
    base = "postgresql://analyst@db.internal/briefings"
    same = [base, base.replace("internal/", "internal:5432/"),
            "postgresql://analyst:secret@db.internal/briefings?sslmode=require&connect_timeout=5"]
    assert len({staging_dir(u) for u in same}) == 1
    assert staging_dir(base) != staging_dir(base.replace("briefings", "other"))
    assert staging_dir(base) != staging_dir(base.replace("analyst", "builder"))


def test_a_staging_folder_under_the_earlier_key_is_taken_over(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_MODEL_CACHE", str(tmp_path))
    url = "postgresql://analyst@db.internal:5432/briefings?sslmode=require"
    earlier = tmp_path / "servers" / hashlib.sha256(public_url(url).encode()).hexdigest()[:16]
    (earlier / "generations").mkdir(parents=True)
    (earlier / "generations" / "kept").write_text("embedded before the upgrade")
    folder = staging_dir(url)
    assert folder != earlier and not earlier.exists()
    assert (folder / "generations" / "kept").read_text() == "embedded before the upgrade"
