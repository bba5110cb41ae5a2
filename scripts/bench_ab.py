"""What a change costs: warm answer latency and full build time of two or more commits,
measured in one run, alternating, so the load of a shared machine falls on every side.

    .venv/bin/python scripts/bench.py ab                      # 16f33f1 e956451 HEAD
    .venv/bin/python scripts/bench.py ab A B --pairs 6 --rounds 12

Each commit is checked out into its own worktree under ``--workdir`` (kept between runs) and
set up with its own ``scripts/setup`` (its own .venv: the commits may differ in dependencies).
Then, ``--pairs`` times, each commit in turn (the order reversed every other pass):

* answering: a fresh process of that commit opens the bundled briefing's index as
  ``assistant ask`` does (``Session``), answers the dev questions once to warm up, then
  ``--rounds`` rounds over them; the figure is the median of its rounds' medians, in wall
  time and in the process's CPU time (less moved by other work on the machine);
* building: ``assistant index --full`` on a generated corpus (scripts/benchlib.py), wall and
  CPU seconds of the process; then ``assistant index`` on the built index (up to date:
  the check alone), wall seconds.

The ratios against the first commit are taken per pass (neighbours in time share the load)
and reported as their median with the range over passes. Writes ``--out`` as JSON (default
``build/bench/ab.json``: a comparison of commits, not a figure of this one for the page).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl

from assistant import metrics

DEFAULT_COMMITS = ["16f33f1", "e956451", "HEAD"]
"""Before the security merges, right after them, and this checkout."""

PROBE = """
import json, statistics, sys, time
from pathlib import Path
from assistant.session import Session
from assistant.settings import Settings

job = json.loads(sys.argv[1])
session = Session.open(Settings(index_dir=Path(job["index"])))
questions = job["questions"]
for q in questions:
    session.ask(q)
medians = []
for _ in range(job["rounds"]):
    took, spent = [], []
    for q in questions:
        t, c = time.perf_counter(), time.process_time()
        session.ask(q)
        took.append(time.perf_counter() - t)
        spent.append(time.process_time() - c)
    medians.append((statistics.median(took), statistics.median(spent)))
print(json.dumps(medians))
"""


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(bl.ROOT), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


class Side:
    """One commit's worktree, venv and indexes."""

    def __init__(self, name: str, workdir: Path) -> None:
        self.name = name
        self.commit = git("rev-parse", "--short", f"{name}^{{commit}}")
        self.tree = workdir / self.commit
        self.python = self.tree / ".venv" / "bin" / "python"
        self.briefing_index = workdir / "indexes" / self.commit / "briefing"
        self.bench_index = workdir / "indexes" / self.commit / "bench"

    def prepare(self) -> None:
        if not (self.tree / ".git").exists():
            git("worktree", "add", "--detach", str(self.tree), self.commit)
        subprocess.run([str(self.tree / "scripts" / "setup")], check=True)

    def assistant(self, *args: str) -> tuple[float, float]:
        """``assistant ARGS`` of this commit in a fresh process: wall and CPU seconds."""
        started = time.perf_counter()
        proc = subprocess.Popen([str(self.python), "-m", "assistant", *args], cwd=self.tree,
                                env=bl.bench_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.returncode != 0:
            raise RuntimeError(f"{self.name}: assistant {' '.join(args)} exited "
                               f"{proc.returncode}: {stderr[-2000:]}")
        return wall, usage.ru_utime + usage.ru_stime

    def build(self, corpus: Path, index: Path, full: bool = True) -> tuple[float, float]:
        return self.assistant("index", *(["--full"] if full else []), "--corpus", str(corpus),
                              "--index", str(index))

    def answer_rounds(self, questions: list[str], rounds: int) -> list[tuple[float, float]]:
        """Each round's median answer time, wall and CPU (of all the process's threads)."""
        job = json.dumps({"index": str(self.briefing_index), "questions": questions,
                          "rounds": rounds})
        proc = subprocess.run([str(self.python), "-c", PROBE, job], cwd=self.tree,
                              env=bl.bench_env(), capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{self.name}: answer probe failed: {proc.stderr[-2000:]}")
        medians: list[tuple[float, float]] = json.loads(proc.stdout)
        return medians


def dev_questions() -> list[str]:
    path = bl.ROOT / "tests" / "data" / "dev_questions.jsonl"
    return [json.loads(line)["question"] for line in path.read_text().splitlines() if line]


def summary(ratios: list[float]) -> str:
    return (f"{metrics.median(ratios):.3f} (range {min(ratios):.3f}–{max(ratios):.3f}, "
            f"{len(ratios)} passes)")


@dataclass
class Options:
    commits: list[str]
    """The first is the baseline the others are compared with."""
    pairs: int = 5
    rounds: int = 8
    documents: int = 60
    workdir: Path = Path("/tmp/bench-ab")
    out: Path | None = None


def main(args: Options) -> None:
    sides = [Side(name, args.workdir) for name in args.commits]
    for side in sides:
        side.prepare()
    corpus = args.workdir / "bench-corpus"
    bl.write_corpus(corpus, args.documents)
    questions = dev_questions()
    for side in sides:  # warm: each commit exports its model and builds once, untimed
        side.build(bl.ROOT / "corpus", side.briefing_index)
        side.build(corpus, side.bench_index)

    answer: dict[str, list[float]] = {s.commit: [] for s in sides}
    answer_cpu: dict[str, list[float]] = {s.commit: [] for s in sides}
    wall: dict[str, list[float]] = {s.commit: [] for s in sides}
    cpu: dict[str, list[float]] = {s.commit: [] for s in sides}
    noop: dict[str, list[float]] = {s.commit: [] for s in sides}
    for k in range(args.pairs):
        for side in sides if k % 2 == 0 else sides[::-1]:
            rounds = side.answer_rounds(questions, args.rounds)
            answer[side.commit].append(metrics.median([w for w, _ in rounds]))
            answer_cpu[side.commit].append(metrics.median([c for _, c in rounds]))
            took, spent = side.build(corpus, side.bench_index)
            wall[side.commit].append(took)
            cpu[side.commit].append(spent)
            noop[side.commit].append(side.build(corpus, side.bench_index, full=False)[0])
            print(f"pass {k + 1}: {side.name} ({side.commit}) answer "
                  f"{answer[side.commit][-1] * 1000:.1f} ms wall, "
                  f"{answer_cpu[side.commit][-1] * 1000:.1f} ms CPU; build {took:.1f} s wall, "
                  f"{spent:.1f} s CPU; up to date {noop[side.commit][-1]:.2f} s", flush=True)

    base = sides[0].commit
    result: dict[str, Any] = {"commits": {s.name: s.commit for s in sides},
                              "documents": args.documents, "questions": len(questions),
                              "rounds": args.rounds, "passes": args.pairs,
                              "answer_s": answer, "answer_cpu_s": answer_cpu,
                              "build_wall_s": wall, "build_cpu_s": cpu, "up_to_date_s": noop,
                              "ratios": {}}
    print(f"\n{len(questions)} questions × {args.rounds} rounds per probe; "
          f"index --full of {args.documents} documents; {args.pairs} alternating passes")
    for side in sides:
        c = side.commit
        print(f"{side.name:>10} ({c}): answer {metrics.median(answer[c]) * 1000:.1f} ms "
              f"wall, {metrics.median(answer_cpu[c]) * 1000:.1f} ms CPU; "
              f"build {metrics.median(wall[c]):.1f} s wall, "
              f"{metrics.median(cpu[c]):.1f} s CPU; `index` when up to date "
              f"{metrics.median(noop[c]):.2f} s")
    for side in sides[1:]:
        c = side.commit
        ratios = {what: [x / y for x, y in zip(series[c], series[base], strict=True)]
                  for what, series in (("answer", answer), ("answer_cpu", answer_cpu),
                                       ("build_wall", wall), ("build_cpu", cpu),
                                       ("up_to_date", noop))}
        result["ratios"][side.name] = {w: {"median": metrics.median(r), "min": min(r),
                                           "max": max(r)} for w, r in ratios.items()}
        print(f"{side.name} / {sides[0].name}: " + "; ".join(
            f"{w} {summary(r)}" for w, r in ratios.items()))
    commits = bl.Table("commit", "answer ms (wall)", "answer ms (CPU)", "build s (wall)",
                       "build s (CPU)", "`index` up to date s",
                       title=f"medians of {args.pairs} alternating passes: {len(questions)} "
                             f"questions x {args.rounds} rounds per probe, `index --full` of "
                             f"{args.documents} generated documents")
    for side in sides:
        c = side.commit
        commits.add(f"{side.name} ({c})", metrics.median(answer[c]) * 1000,
                    metrics.median(answer_cpu[c]) * 1000, metrics.median(wall[c]),
                    metrics.median(cpu[c]), metrics.median(noop[c]))
    against = bl.Table("commit", "answer (wall)", "answer (CPU)", "build (wall)", "build (CPU)",
                       "`index` up to date",
                       title=f"each commit over {sides[0].name} ({base}): the median of the "
                             "passes' ratios (range); above 1 costs more")
    for side in sides[1:]:
        against.add(side.name, *(f"{r['median']:.3f} ({r['min']:.3f}–{r['max']:.3f})"
                                 for r in result["ratios"][side.name].values()))
    bl.save_results("ab", result, [commits, against], args.out,
                    note=f"Load average {os.getloadavg()[0]:.1f} at the end.")
