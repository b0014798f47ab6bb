"""The workers' seccomp filter, built once in the parent and loaded in a forked child as
the template and its workers do: no files opened for writing, no sockets, no processes;
reading and threads still work."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from chainlens.sandbox.seccomp import apply_filter, prepare_filter

pytestmark = pytest.mark.skipif(
    prepare_filter() is None, reason="libseccomp is not available on this machine"
)


def _in_filtered_child(tmp_path, probe) -> str:
    """Fork, load the filter, run ``probe`` there; what it reported."""
    read_end, write_end = os.pipe()  # made before the filter: the child only writes to it
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            ok = apply_filter()
            report = probe(tmp_path) if ok else "filter not loaded"
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            report = f"probe raised {type(e).__name__}: {e}"
        os.write(write_end, report.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        report = f.read().decode()
    os.waitpid(pid, 0)
    return report


def _refused(action) -> str:
    try:
        action()
    except PermissionError:
        return "refused"
    except OSError as e:
        return f"refused ({e.errno})"
    return "allowed"


def test_writes_sockets_and_processes_are_refused(tmp_path) -> None:
    def probe(path) -> str:
        return ",".join(
            [
                _refused(lambda: open(path / "new.txt", "w")),
                _refused(lambda: socket.socket()),
                _refused(lambda: os.execv("/bin/true", ["true"])),
            ]
        )

    assert _in_filtered_child(tmp_path, probe) == "refused,refused,refused"
    assert list(tmp_path.iterdir()) == []


def test_reading_and_threads_still_work(tmp_path) -> None:
    (tmp_path / "data.txt").write_text("hello")

    def probe(path) -> str:
        out: list[str] = []
        t = threading.Thread(target=lambda: out.append((path / "data.txt").read_text()))
        t.start()
        t.join()
        return out[0]

    assert _in_filtered_child(tmp_path, probe) == "hello"
