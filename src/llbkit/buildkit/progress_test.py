from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

from llbkit.buildkit.progress import (
    JsonPrinter,
    PlainPrinter,
    ProgressTracker,
    SolveStatus,
    TtyPrinter,
    Vertex,
    VertexLog,
    VertexStatus,
    make_printer,
)

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def t(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def events():
    a = Vertex("sha256:a", "docker-image://busybox")
    b = Vertex("sha256:b", "/bin/sh -c make")
    return [
        SolveStatus(vertexes=(Vertex(a.digest, a.name, started=t(0)),)),
        SolveStatus(statuses=(VertexStatus("resolve busybox", a.digest, started=t(0), completed=t(0.1)),)),
        SolveStatus(vertexes=(Vertex(a.digest, a.name, started=t(0), completed=t(0.1), cached=True),
                              Vertex(b.digest, b.name, started=t(0.2)))),
        SolveStatus(logs=(VertexLog(b.digest, 1, b"compiling\npart", t(0.3)),)),
        SolveStatus(logs=(VertexLog(b.digest, 2, b"ial\n", t(0.5)),)),
        SolveStatus(vertexes=(Vertex(b.digest, b.name, started=t(0.2), completed=t(1.5),
                                     error='process "/bin/sh -c make" did not complete successfully: exit code: 2'),)),
    ]


def test_plain_output_like_buildctl():
    out = io.StringIO()
    p = PlainPrinter(out)
    for e in events():
        p(e)
    p.close()
    assert out.getvalue() == (
        "#1 docker-image://busybox\n"
        "#1 resolve busybox 0.1s done\n"
        "#1 CACHED\n"
        "\n"
        "#2 /bin/sh -c make\n"
        "#2 0.100 compiling\n"
        "#2 0.300 partial\n"
        '#2 ERROR: process "/bin/sh -c make" did not complete successfully: exit code: 2\n'
        "\n"
    )


def test_tracker_remembers_failures_and_tails():
    tr = ProgressTracker(tail=1)
    for e in events():
        tr(e)
    [(v, tail)] = tr.failed()
    assert v.name == "/bin/sh -c make" and tail == ["partial"]


def test_json_and_tty():
    out = io.StringIO()
    j = JsonPrinter(out)
    for e in events():
        j(e)
    lines = [json.loads(l) for l in out.getvalue().splitlines()]
    assert lines[0] == {"type": "vertex", "digest": "sha256:a", "name": "docker-image://busybox", "inputs": [],
                        "cached": False, "started": "2024-01-01T00:00:00Z", "completed": None, "error": None}
    assert any(l["type"] == "log" and l["data"] == "compiling\npart" for l in lines)
    tty = io.StringIO()
    p = TtyPrinter(tty)
    for e in events():
        p(e)
    p.close()
    assert " => docker-image://busybox" in tty.getvalue() and "ERROR" in tty.getvalue()
    assert make_printer("quiet") is None and isinstance(make_printer("auto", io.StringIO()), PlainPrinter)
