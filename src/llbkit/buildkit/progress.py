"""Build progress: the daemon's Status stream as the library's events, and three renderers.

- :class:`PlainPrinter` writes what ``buildctl --progress=plain`` writes: ``#N name`` when a step
  starts, its log lines as ``#N 0.123 text``, then ``#N CACHED``, ``#N DONE 0.3s`` or
  ``#N ERROR: ...``;
- :class:`TtyPrinter` keeps a compact live view of the running steps on a terminal;
- :class:`JsonPrinter` writes one JSON object per event, for machines.

Every solve also feeds a :class:`ProgressTracker`, which remembers each step's name, error and
last log lines so that a failed build can say which step failed and what it printed.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple

from llbkit.buildkit.types import timestamp_to_datetime

__all__ = [
    "Vertex",
    "VertexStatus",
    "VertexLog",
    "VertexWarning",
    "SolveStatus",
    "ProgressHandler",
    "ProgressTracker",
    "PlainPrinter",
    "TtyPrinter",
    "JsonPrinter",
    "make_printer",
]


@dataclass(frozen=True)
class Vertex:
    digest: str
    name: str
    inputs: Tuple[str, ...] = ()
    cached: bool = False
    started: Optional[datetime] = None
    completed: Optional[datetime] = None
    error: str = ""


@dataclass(frozen=True)
class VertexStatus:
    id: str
    vertex: str
    name: str = ""
    current: int = 0
    total: int = 0
    timestamp: Optional[datetime] = None
    started: Optional[datetime] = None
    completed: Optional[datetime] = None


@dataclass(frozen=True)
class VertexLog:
    vertex: str
    stream: int
    data: bytes
    timestamp: Optional[datetime] = None


@dataclass(frozen=True)
class VertexWarning:
    vertex: str
    level: int
    short: str
    detail: Tuple[str, ...] = ()
    url: str = ""


@dataclass(frozen=True)
class SolveStatus:
    """One message of the Status stream."""

    vertexes: Tuple[Vertex, ...] = ()
    statuses: Tuple[VertexStatus, ...] = ()
    logs: Tuple[VertexLog, ...] = ()
    warnings: Tuple[VertexWarning, ...] = ()


ProgressHandler = Callable[[SolveStatus], None]


def status_from_pb(resp: Any) -> SolveStatus:
    ts = timestamp_to_datetime
    return SolveStatus(
        vertexes=tuple(
            Vertex(
                digest=v.digest, name=v.name, inputs=tuple(v.inputs), cached=v.cached,
                started=ts(v.started) if v.HasField("started") else None,
                completed=ts(v.completed) if v.HasField("completed") else None,
                error=v.error,
            )
            for v in resp.vertexes
        ),
        statuses=tuple(
            VertexStatus(
                id=s.ID, vertex=s.vertex, name=s.name, current=s.current, total=s.total,
                timestamp=ts(s.timestamp) if s.HasField("timestamp") else None,
                started=ts(s.started) if s.HasField("started") else None,
                completed=ts(s.completed) if s.HasField("completed") else None,
            )
            for s in resp.statuses
        ),
        logs=tuple(
            VertexLog(vertex=l.vertex, stream=l.stream, data=bytes(l.msg),
                      timestamp=ts(l.timestamp) if l.HasField("timestamp") else None)
            for l in resp.logs
        ),
        warnings=tuple(
            VertexWarning(vertex=w.vertex, level=w.level, short=w.short.decode(errors="replace"),
                          detail=tuple(d.decode(errors="replace") for d in w.detail), url=w.url)
            for w in resp.warnings
        ),
    )


class _LineBuffer:
    """Splits a vertex's log chunks into lines, keeping the unfinished tail."""

    def __init__(self) -> None:
        self.partial = b""

    def feed(self, data: bytes) -> List[str]:
        data = self.partial + data
        *lines, self.partial = data.split(b"\n")
        return [l.decode(errors="replace").rstrip("\r") for l in lines]

    def flush(self) -> List[str]:
        rest, self.partial = self.partial, b""
        return [rest.decode(errors="replace")] if rest else []


@dataclass
class _VertexState:
    vertex: Vertex
    logs: Deque[str] = field(default_factory=lambda: deque(maxlen=40))
    buf: _LineBuffer = field(default_factory=_LineBuffer)


class ProgressTracker:
    """Remembers every step (name, error, last log lines) of one solve. Thread-safe."""

    def __init__(self, tail: int = 20) -> None:
        self._tail = tail
        self._lock = threading.Lock()
        self._vertices: Dict[str, _VertexState] = {}

    def __call__(self, status: SolveStatus) -> None:
        with self._lock:
            for v in status.vertexes:
                st = self._vertices.get(v.digest)
                if st is None:
                    self._vertices[v.digest] = _VertexState(v, deque(maxlen=self._tail))
                else:
                    st.vertex = v
            for log in status.logs:
                st = self._vertices.get(log.vertex)
                if st is None:
                    st = self._vertices[log.vertex] = _VertexState(Vertex(log.vertex, ""), deque(maxlen=self._tail))
                st.logs.extend(st.buf.feed(log.data))

    def failed(self) -> List[Tuple[Vertex, List[str]]]:
        """Steps that ended with an error (not cancellations), with their last log lines."""
        with self._lock:
            out = []
            for st in self._vertices.values():
                if st.vertex.error and "context canceled" not in st.vertex.error:
                    out.append((st.vertex, list(st.logs) + st.buf.flush()))
            return out

    def get(self, digest: str) -> Optional[Tuple[Vertex, List[str]]]:
        """The step of that digest and its last log lines, if it was seen."""
        with self._lock:
            st = self._vertices.get(digest)
            if st is None:
                return None
            pending = [st.buf.partial.decode(errors="replace")] if st.buf.partial else []
            return st.vertex, (list(st.logs) + pending)[-self._tail:]

    def vertices(self) -> List[Vertex]:
        """The latest state of every step seen, in first-seen order."""
        with self._lock:
            return [st.vertex for st in self._vertices.values()]


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.2f}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1000.0
    return f"{n}"  # pragma: no cover


def _seconds(a: Optional[datetime], b: Optional[datetime]) -> Optional[float]:
    if a is None or b is None:
        return None
    return max(0.0, (b - a).total_seconds())


class PlainPrinter:
    """``buildctl --progress=plain`` output: one block per step, numbered in start order."""

    def __init__(self, out: Optional[IO[str]] = None) -> None:
        self.out = out if out is not None else sys.stderr
        self._index: Dict[str, int] = {}
        self._vertices: Dict[str, Vertex] = {}
        self._done: set = set()
        self._bufs: Dict[str, _LineBuffer] = {}
        self._open: Dict[str, set] = {}
        self._pending: Dict[str, None] = {}  # ended steps whose DONE/CACHED line is not out yet
        self._last: Optional[str] = None
        self._lock = threading.Lock()

    def _num(self, digest: str) -> int:
        if digest not in self._index:
            self._index[digest] = len(self._index) + 1
        return self._index[digest]

    def _switch(self, digest: str) -> None:
        if self._last is not None and self._last != digest:
            self._flush_pending()
            self.out.write("\n")
        self._last = digest

    def _flush_pending(self) -> None:
        """Write the end lines of steps that ended and stayed ended (BuildKit restarts some
        steps, e.g. an image source that resolves, then pulls), in the order they ended."""
        w = self.out.write
        for d in list(self._pending):
            del self._pending[d]
            v = self._vertices[d]
            if not (v.completed or v.cached or v.error) or (self._open.get(d) and not v.error):
                continue
            self._done.add(d)
            num = self._num(d)
            for line in self._bufs.get(d, _LineBuffer()).flush():
                w(f"#{num} {line}\n")
            if v.error:
                if "context canceled" in v.error:
                    w(f"#{num} CANCELED\n")
                else:
                    w(f"#{num} ERROR: {v.error}\n")
            elif v.cached:
                w(f"#{num} CACHED\n")
            else:
                dt = _seconds(v.started, v.completed)
                w(f"#{num} DONE{f' {dt:.1f}s' if dt is not None else ''}\n")

    def __call__(self, status: SolveStatus) -> None:
        with self._lock:
            self._render(status)
            self.out.flush()

    def _render(self, status: SolveStatus) -> None:
        w = self.out.write
        busy = {s.vertex for s in status.statuses} | {l.vertex for l in status.logs}
        # steps started earlier that end now come first, so a new step's header follows them
        for v in status.vertexes:
            prev = self._vertices.get(v.digest)
            if prev is not None and (prev.started is not None or prev.cached) and v.digest not in busy:
                self._vertices[v.digest] = v
                self._complete(v)
        for v in status.vertexes:
            prev = self._vertices.get(v.digest)
            self._vertices[v.digest] = v
            if v.completed is None and v.started is not None and not v.error:
                self._pending.pop(v.digest, None)  # restarted (e.g. an image source pulling layers)
                self._done.discard(v.digest)
            if v.started is None and not v.cached:
                continue
            if prev is None or (prev.started is None and not prev.cached):
                self._switch(v.digest)
                w(f"#{self._num(v.digest)} {v.name}\n")
        for s in status.statuses:
            if s.vertex not in self._index:
                continue
            self._switch(s.vertex)
            size = ""
            if s.total:
                size = f" {_fmt_bytes(s.current)} / {_fmt_bytes(s.total)}"
            elif s.current:
                size = f" {_fmt_bytes(s.current)}"
            tm = ""
            dt = _seconds(s.started, s.completed or s.timestamp)
            if dt is not None and dt > 0.01:
                tm = f" {dt:.1f}s"
            opened = self._open.setdefault(s.vertex, set())
            if s.completed:
                tm += " done"
                opened.discard(s.id)
            else:
                opened.add(s.id)
            w(f"#{self._index[s.vertex]} {s.id}{size}{tm}\n")
        for log in status.logs:
            v = self._vertices.get(log.vertex)
            num = self._num(log.vertex)
            lines = self._bufs.setdefault(log.vertex, _LineBuffer()).feed(log.data)
            if not lines:
                continue
            self._switch(log.vertex)
            for line in lines:
                rel = _seconds(v.started if v else None, log.timestamp)
                prefix = f"{rel:.3f} " if rel is not None else ""
                w(f"#{num} {prefix}{line}\n")
        for warn in status.warnings:
            self._switch(warn.vertex)
            w(f"#{self._num(warn.vertex)} WARN: {warn.short}\n")
        for v in status.vertexes:
            self._complete(v)
        for d in busy:  # steps that ended earlier, waiting for their statuses to close
            if d in self._vertices:
                self._complete(self._vertices[d])

    def _complete(self, v: Vertex) -> None:
        if v.digest in self._done or not (v.completed or v.cached or v.error):
            return
        if v.started is None and not v.cached:
            return
        if self._open.get(v.digest) and not v.error:
            return
        self._pending[v.digest] = None

    def close(self) -> None:
        with self._lock:
            self._flush_pending()
            if self._last is not None:
                self.out.write("\n")
                self._last = None
            self.out.flush()


class JsonPrinter:
    """One JSON object per line: ``{"type": "vertex"|"status"|"log"|"warning", ...}``."""

    def __init__(self, out: Optional[IO[str]] = None) -> None:
        self.out = out if out is not None else sys.stdout
        self._lock = threading.Lock()

    @staticmethod
    def _t(d: Optional[datetime]) -> Optional[str]:
        return d.isoformat().replace("+00:00", "Z") if d else None

    def __call__(self, status: SolveStatus) -> None:
        t = self._t
        events: List[Dict[str, Any]] = []
        for v in status.vertexes:
            events.append({"type": "vertex", "digest": v.digest, "name": v.name, "inputs": list(v.inputs),
                           "cached": v.cached, "started": t(v.started), "completed": t(v.completed),
                           "error": v.error or None})
        for s in status.statuses:
            events.append({"type": "status", "vertex": s.vertex, "id": s.id, "name": s.name,
                           "current": s.current, "total": s.total, "started": t(s.started),
                           "completed": t(s.completed)})
        for log in status.logs:
            events.append({"type": "log", "vertex": log.vertex, "stream": log.stream,
                           "data": log.data.decode(errors="replace"), "timestamp": t(log.timestamp)})
        for warn in status.warnings:
            events.append({"type": "warning", "vertex": warn.vertex, "level": warn.level,
                           "short": warn.short, "detail": list(warn.detail), "url": warn.url or None})
        with self._lock:
            for e in events:
                self.out.write(json.dumps(e, sort_keys=True) + "\n")
            self.out.flush()

    def close(self) -> None:
        pass


class TtyPrinter:
    """A compact live view: the running steps with elapsed time and their last log line,
    redrawn in place at most 10 times a second; finished steps scroll up as one line each."""

    def __init__(self, out: Optional[IO[str]] = None, max_running: int = 8) -> None:
        self.out = out if out is not None else sys.stderr
        self.max_running = max_running
        self._lock = threading.Lock()
        self._order: List[str] = []
        self._vertices: Dict[str, Vertex] = {}
        self._last_line: Dict[str, str] = {}
        self._bufs: Dict[str, _LineBuffer] = {}
        self._printed: set = set()
        self._drawn = 0
        self._last_draw = 0.0
        self._start = time.monotonic()

    def __call__(self, status: SolveStatus) -> None:
        with self._lock:
            for v in status.vertexes:
                if v.digest not in self._vertices:
                    self._order.append(v.digest)
                self._vertices[v.digest] = v
            for log in status.logs:
                lines = self._bufs.setdefault(log.vertex, _LineBuffer()).feed(log.data)
                if lines:
                    self._last_line[log.vertex] = lines[-1]
            now = time.monotonic()
            finished = any(
                (v.completed or v.cached or v.error) and d not in self._printed
                for d, v in self._vertices.items()
            )
            if finished or now - self._last_draw >= 0.1:
                self._draw(now)

    def _clear(self) -> None:
        if self._drawn:
            self.out.write(f"\x1b[{self._drawn}A\x1b[J")
            self._drawn = 0

    def _draw(self, now: float) -> None:
        self._last_draw = now
        self._clear()
        w = self.out.write
        running = []
        for n, d in enumerate(self._order, 1):
            v = self._vertices[d]
            if d in self._printed:
                continue
            if v.error or v.completed or v.cached:
                self._printed.add(d)
                if v.error:
                    state = "CANCELED" if "context canceled" in v.error else "ERROR"
                elif v.cached:
                    state = "CACHED"
                else:
                    dt = _seconds(v.started, v.completed)
                    state = f"{dt:.1f}s" if dt is not None else "DONE"
                w(f" => {v.name:<60.60} {state}\n")
            elif v.started is not None:
                running.append(v)
        lines = [f"[+] Building {now - self._start:.1f}s"]
        for v in running[: self.max_running]:
            lines.append(f" => {v.name:<60.60}")
            last = self._last_line.get(v.digest)
            if last:
                lines.append(f"    > {last[:100]}")
        for line in lines:
            w(line + "\n")
        self._drawn = len(lines)
        self.out.flush()

    def close(self) -> None:
        with self._lock:
            self._draw(time.monotonic())
            self.out.flush()


def make_printer(mode: str, out: Optional[IO[str]] = None) -> Any:
    """``plain``, ``tty``, ``json``, ``quiet`` or ``auto`` (tty when ``out`` is a terminal)."""
    stream = out if out is not None else sys.stderr
    if mode == "auto":
        mode = "tty" if getattr(stream, "isatty", lambda: False)() else "plain"
    if mode == "plain":
        return PlainPrinter(stream)
    if mode == "tty":
        return TtyPrinter(stream)
    if mode == "json":
        return JsonPrinter(out if out is not None else sys.stdout)
    if mode == "quiet":
        return None
    raise ValueError(f"unknown progress mode {mode!r}: use plain, tty, json, quiet or auto")


def combine(handlers: Sequence[Optional[ProgressHandler]]) -> ProgressHandler:
    hs = [h for h in handlers if h is not None]

    def call(status: SolveStatus) -> None:
        for h in hs:
            h(status)

    return call
