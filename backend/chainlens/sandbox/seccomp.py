"""A seccomp filter for worker processes: no new processes, no sockets, no writes to files.

Applied after the worker has its socket to the server and has warmed up, before a
program runs. Default allow, then refuse (EPERM) what a program never needs:
``execve``; ``clone`` without CLONE_THREAD (threads still work) and ``clone3``
(ENOSYS, so glibc falls back to ``clone``); new sockets; opens for writing or
creating; unlink, rename, mkdir and the like. Measured: forward, backward and
torch's threads keep working under it.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
from typing import Any

log = logging.getLogger("chainlens.sandbox")

CLONE_THREAD = 0x00010000
DENIED = (
    "execve",
    "execveat",
    "fork",
    "vfork",
    "socket",
    "socketpair",
    "connect",
    "bind",
    "listen",
    "accept",
    "accept4",
    "creat",
    "unlink",
    "unlinkat",
    "rename",
    "renameat",
    "renameat2",
    "mkdir",
    "mkdirat",
    "rmdir",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "truncate",
    "chmod",
    "fchmod",
    "fchmodat",
    "chown",
    "fchown",
    "lchown",
    "fchownat",
    "ptrace",
    "process_vm_writev",
    "process_vm_readv",
    "mount",
    "umount2",
    "setuid",
    "setgid",
    "kill",
    "tkill",
    "memfd_create",
    "io_uring_setup",
    "bpf",
    "userfaultfd",
)
WRITE_FLAGS = (os.O_WRONLY, os.O_RDWR, os.O_CREAT, os.O_TRUNC, os.O_APPEND)


@functools.cache
def prepare_filter() -> Any:
    """Build the filter once, in the template before it forks: a worker that imported
    libseccomp's binding and built the filter itself spent 20 ms of each run on it. None
    where seccomp is unavailable (logged once)."""
    try:
        import pyseccomp as sc
    except (ImportError, OSError) as e:  # no binding, or no libseccomp.so
        log.warning("seccomp not applied: %s", e)
        return None
    try:
        f = sc.SyscallFilter(defaction=sc.ALLOW)
        deny = sc.ERRNO(errno.EPERM)
        for name in DENIED:
            try:
                f.add_rule(deny, name)
            except (RuntimeError, ValueError, OSError):
                pass  # a syscall this architecture does not have
        f.add_rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_THREAD, 0))
        f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
        for flag in WRITE_FLAGS:
            f.add_rule(deny, "openat", sc.Arg(2, sc.MASKED_EQ, flag, flag))
            f.add_rule(deny, "open", sc.Arg(1, sc.MASKED_EQ, flag, flag))
        return f
    except Exception as e:  # noqa: BLE001 - a libseccomp that refuses: say so, run with rlimits
        log.warning("seccomp not applied: %s", e)
        return None


def apply_filter() -> bool:
    """Load the filter into this process. False (and a log line) where it is unavailable."""
    f = prepare_filter()
    if f is None:
        return False
    try:
        f.load()
        return True
    except Exception as e:  # noqa: BLE001 - a kernel without seccomp: say so, run with rlimits
        log.warning("seccomp not applied: %s", e)
        return False


def drop_privileges() -> None:
    """A worker started as root becomes nobody: it can then read only world-readable files."""
    if os.getuid() != 0:
        return
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
