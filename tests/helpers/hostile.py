"""Tools for the hostile-input, damage and fault tests: run the CLI as a user would, make
odd files, generate corpora, and check the one invariant that matters most — every quote
is the stored document text at its offsets.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
BRIEFING = ROOT / "corpus" / "nvidia-h200-china.txt"
BRIEFING_QUESTION = "What revenue share does the US get from H200 sales?"


def cli_env(**extra: str) -> dict[str, str]:
    """The user's environment without our own settings, offline, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ASSISTANT_") or k == "ASSISTANT_MODEL_CACHE"}
    env["HF_HUB_OFFLINE"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    env.update(extra)
    return env


def cli(*args: str | Path, cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 300, boot: str | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m assistant ARGS`` in ``cwd`` (so no stray ./index or assistant.toml is
    used). ``boot`` is Python run first in the same process (to simulate a fault)."""
    cmd = [sys.executable, "-m", "assistant", *map(str, args)]
    if boot is not None:
        cmd = [sys.executable, "-c", f"{boot}\nfrom assistant.cli import main\nmain()",
               *map(str, args)]
    return subprocess.run(cmd, cwd=cwd, env=env or cli_env(), capture_output=True, text=True,
                          encoding="utf-8", errors="backslashreplace", timeout=timeout)


def assert_no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stdout, proc.stdout


def assert_user_error(proc: subprocess.CompletedProcess[str], exit_code: int,
                      *needles: str) -> str:
    """A user error: the documented exit code, one ``error:`` line on stderr, no traceback,
    and each needle in that line. Returns the line."""
    assert_no_traceback(proc)
    assert proc.returncode == exit_code, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def assert_ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert_no_traceback(proc)
    assert proc.returncode == 0, (proc.returncode, proc.stderr)


def quote_problems(answer: Any, text_of: Callable[[str], str]) -> list[str]:
    """Where an Answer's quotes differ from the document text at their offsets (empty: none)."""
    problems = []
    spans = [("answer", answer.answer)] if answer.answer is not None else []
    spans += [(f"citation {c.rank}", c) for c in answer.citations]
    for name, s in spans:
        quote = s.text if name == "answer" else s.quote
        text = text_of(s.doc_id)
        if not (0 <= s.start <= s.end <= len(text)) or text[s.start:s.end] != quote:
            problems.append(f"{name} {s.doc_id}[{s.start}:{s.end}] != {quote[:60]!r}")
    if answer.abstained != (answer.answer is None):
        problems.append("abstained disagrees with the answer being empty")
    return problems


def assert_quotes_match(answer: Any, text_of: Callable[[str], str]) -> None:
    problems = quote_problems(answer, text_of)
    assert not problems, problems


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF with ``text`` (ASCII) in Helvetica, written by hand: no PDF writer
    library is needed, and pypdf extracts the text back exactly."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


def pdf_of_one_shared_stream(pages: int, content_bytes: int) -> bytes:
    """A PDF whose ``pages`` pages all draw one Flate-compressed content stream of
    ``content_bytes`` of text operators: a few hundred KB on disk, ``pages × content_bytes``
    of content to extract (a decompression bomb for text extraction), written by hand."""
    import zlib

    line = b"BT /F1 12 Tf 72 720 Td (The same line of text again.) Tj ET\n"
    stream = zlib.compress(line * (content_bytes // len(line)), 9)
    kids = " ".join(f"{5 + i} 0 R" for i in range(pages)).encode()
    page = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R "
            b"/Resources << /Font << /F1 4 0 R >> >> >>")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages,
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream
        + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        *[page] * pages,
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


def encrypted_pdf(text: str, password: str = "s3cret") -> bytes:
    """``minimal_pdf`` encrypted with a user password (RC4, needs no extra library)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(minimal_pdf(text))))
    writer.encrypt(password, algorithm="RC4-128")
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


_WORDS = [
    "harbour", "river", "council", "budget", "report", "vessel", "cargo", "policy", "grant",
    "school", "clinic", "bridge", "tunnel", "rail", "station", "ferry", "tariff", "export",
    "import", "quota", "licence", "audit", "committee", "minister", "agency", "review", "survey",
    "census", "wage", "pension", "levy", "subsidy", "farm", "crop", "harvest", "drought", "flood",
    "storm", "energy", "grid", "solar", "wind", "turbine", "battery", "factory", "plant", "mine",
    "steel", "copper", "lithium", "wafer", "sensor", "robot", "network", "cable", "satellite",
]


def generated_document(rng: random.Random, sentences: int, tag: str = "") -> str:
    """A plain-text report: a title, headed sections, sentences with figures."""
    lines = [f"Report on the {rng.choice(_WORDS)} {rng.choice(_WORDS)} {tag}".rstrip(), ""]
    for s in range(sentences):
        if s % 12 == 0:
            lines += ["", f"Section {s // 12 + 1} {rng.choice(_WORDS).title()}", ""]
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(8, 22)))
        lines.append(f"The {words} rose by {rng.randint(1, 99)}% in {rng.randint(1990, 2030)}.")
    return "\n".join(lines) + "\n"


def generated_text(size: int, seed: int = 1) -> str:
    """At least ``size`` characters of generated reports, deterministic."""
    rng = random.Random(seed)
    parts: list[str] = []
    n = 0
    while n < size:
        part = generated_document(rng, 60)
        parts.append(part)
        n += len(part)
    return "".join(parts)


def write_generated_corpus(corpus: Path, documents: int, sentences: int, seed: int) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for i in range(documents):
        (corpus / f"report{i:03d}.txt").write_text(generated_document(rng, sentences),
                                                  encoding="utf-8")


def briefing_corpus(corpus: Path, extra: Sequence[tuple[str, str]] = ()) -> Path:
    corpus.mkdir(parents=True, exist_ok=True)
    shutil.copy(BRIEFING, corpus / BRIEFING.name)
    for name, text in extra:
        (corpus / name).write_text(text, encoding="utf-8")
    return corpus


def replace_file(path: Path, data: bytes) -> None:
    """Give ``path`` new contents through a new inode. Index model files are hard links to a
    shared cache: writing into them in place would damage every index on the machine."""
    path.unlink()
    path.write_bytes(data)


def build(corpus: Path, index: Path, full: bool = False, **settings: Any) -> Any:
    """Build in this process (faster than the CLI where the outcome is not user-visible)."""
    from assistant.build import build_index
    from assistant.settings import Settings

    return build_index(Settings(corpus_dir=corpus, index_dir=index, **settings), full=full)


def ask(index: Path, question: str) -> Any:
    """Open the index, ask once, close; also checks every quote against the stored text."""
    from assistant.index.store import open_index
    from assistant.qa.pipeline import Answerer
    from assistant.settings import Settings

    idx = open_index(index)
    try:
        answer = Answerer(idx, Settings(index_dir=index)).ask(question).answer
        assert_quotes_match(answer, idx.document_text)
        return answer
    finally:
        idx.close()


def can_mount() -> bool:
    """Whether this process may mount file systems (root with CAP_SYS_ADMIN, not in CI)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    probe = Path(f"/tmp/.assistant-mount-probe-{os.getpid()}")
    probe.mkdir(exist_ok=True)
    try:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(probe)],
                            capture_output=True).returncode == 0
        if ok:
            subprocess.run(["umount", str(probe)], check=True)
        return ok
    finally:
        probe.rmdir()
