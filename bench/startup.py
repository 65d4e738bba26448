"""Start-up (issue 11, item 7): `tggate demo` from its start to its "Ready in" line, 3 runs.

Each run starts `python -m tggate.cli demo` in a fresh data folder, reads its output until the
line "Ready in …" (the demo prints it once the Telegram Client polls, so a message sent then is
answered), and records the time from the start to that line, the CPU seconds each process of
the demo had spent by then, and then stops it. A fourth run, not timed, sets
PYTHONPROFILEIMPORTTIME: the demo writes `python -X importtime` lines for the imports its
components share (it imports them once and forks each component from itself,
tggate_sandbox/forked.py), every component those for what it still imports to its log, and the
import time of each (the sum of its top-level imports) is read back from there. Forked
components share the demo's command line; each is named by its /proc/<pid>/comm.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import Result, percentiles
from tggate_sandbox.topology import free_port

__all__ = ["run_startup"]

RUNS = 3
_READY = re.compile(r"Ready in ([0-9.]+) s")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_IMPORT_LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|( *)(\S+)")


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            found += children
            todo += children
    return found


def _name(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "gone"
    words = [a.decode(errors="replace") for a in argv if a]
    if "tggate.cli" in words:
        after = words[words.index("tggate.cli") + 1 :]
        name = after[0] if after else "tggate"
        if name == "demo":  # forked from the demo: its component name is its comm
            try:
                return Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                return "gone"
        # Two Bot Logic replicas: tell them apart by port.
        if "--port" in after:
            return f"{name}:{after[after.index('--port') + 1]}"
        return name
    return Path(words[0]).name if words else "unknown"


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _start_demo(data_dir: Path, *, import_times: bool) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGGATE_")}
    env.update({"TGGATE_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"})
    if import_times:
        env["PYTHONPROFILEIMPORTTIME"] = "1"
    return subprocess.Popen(
        [sys.executable, "-m", "tggate.cli", "demo", "--port", str(free_port())],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=data_dir,
        start_new_session=True,
    )


def _stop(demo: subprocess.Popen[str]) -> None:
    if demo.poll() is None:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait(10)


def _one_run(*, import_times: bool = False) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="tggate-bench-startup-"))
    started = time.monotonic()
    demo = _start_demo(data_dir, import_times=import_times)
    found: dict[str, Any] = {"ready": False}
    output: list[str] = []
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            output.append(line)
            match = _READY.search(line)
            if match:
                found["wall_s"] = round(time.monotonic() - started, 2)
                found["demo_says_s"] = float(match.group(1))
                found["ready"] = True
                break
            if time.monotonic() - started > 120:
                break
        processes = [demo.pid, *_descendants(demo.pid)]
        cpu: dict[str, float] = {}
        for pid in processes:
            name = "demo" if pid == demo.pid else _name(pid)
            cpu[name] = round(cpu.get(name, 0.0) + _cpu_seconds(pid), 2)
        found["cpu_s_at_ready"] = cpu
        found["cpu_s_at_ready_total"] = round(sum(cpu.values()), 2)
        if not found["ready"]:
            found["output"] = "".join(output)[-2000:]
    finally:
        _stop(demo)
    if import_times:
        found["import_s"] = _import_times(data_dir / "demo")
        shared = _import_total(output)
        if shared:
            found["import_s"]["demo (imports shared by the components)"] = shared
    shutil.rmtree(data_dir, ignore_errors=True)
    return found


def _import_times(workdir: Path) -> dict[str, Any]:
    """Per component log: total import time (s) and the slowest top-level imports."""
    found: dict[str, Any] = {}
    for log in sorted(workdir.glob("*.log")):
        lines = log.read_text("utf-8", errors="replace").splitlines()
        total = _import_total(lines)
        if total:
            found[log.stem] = total
    return found


def _import_total(lines: list[str]) -> dict[str, Any] | None:
    total = 0
    top: list[tuple[int, str]] = []
    for line in lines:
        match = _IMPORT_LINE.search(line)
        if match and len(match.group(3)) == 1:  # a top-level import (one space of indent)
            cumulative = int(match.group(2))
            total += cumulative
            top.append((cumulative, match.group(4)))
    if not total:
        return None
    slowest = sorted(top, reverse=True)[:5]
    return {
        "total_s": round(total / 1e6, 2),
        "slowest": {name: round(us / 1e6, 3) for us, name in slowest},
    }


def run_startup(result: Result) -> None:
    runs = [_one_run() for _ in range(RUNS)]
    ready = [r["wall_s"] for r in runs if r["ready"]]
    profiled = _one_run(import_times=True)
    result.details = {
        "runs": runs,
        "wall_s": percentiles(ready, (50,)) if ready else {},
        "import_times": profiled.get("import_s", {}),
        "import_times_run_wall_s": profiled.get("wall_s"),
    }
    for index, run in enumerate(runs, 1):
        result.add(f"run {index}: start to Ready", run.get("wall_s", "not ready"), "s")
    if ready:
        result.add(f"start to Ready, median of {RUNS}", _median(ready), "s")
        cpu = [r["cpu_s_at_ready_total"] for r in runs if r["ready"]]
        result.add("CPU seconds of all processes until Ready (median)", _median(cpu), "s")
        client = [r["cpu_s_at_ready"].get("client", 0.0) for r in runs if r["ready"]]
        result.add("Telegram Client CPU seconds until Ready (median)", _median(client), "s")


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]
