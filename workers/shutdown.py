"""A clean stop on SIGTERM sent to the whole worker (issue 21).

Supervisors stop a worker by signalling its process group (``docker stop`` of a container whose
processes all get it, systemd's default KillMode=control-group, ``os.killpg``), so SIGTERM
reaches the pool processes as well as the main process. Celery resets SIGTERM to its default in
pool processes, so each of them died at once, wherever it was:

- in the middle of writing to a queue the pool shares with the main process (with the embedded
  filesystem broker billiard's queues are pipes under a process-shared lock): the lock stayed
  taken, the main process's warm shutdown waited for it for ever, the pool process it had
  restarted meanwhile stayed a zombie, and only SIGKILL ended the worker;
- in the middle of a job: the job was lost to this worker and run again elsewhere, although a
  warm shutdown promises that the job in hand finishes;
- while loading the model: the main process started a new one, during its shutdown.

So a pool process ignores SIGTERM. The main process gets the same signal and does the warm
shutdown: the job in hand finishes, then it stops its pool processes itself (a sentinel on their
queue; billiard's SIGTERM on their way out is ignored and they exit a second later). SIGTERM is
blocked from the fork until it is ignored, so none arrives in between. Ignored means SIG_IGN:
billiard replaces any handler of ours with its own exit once the pool process has started, but
leaves an ignored signal ignored. A process a pool process forks gets the default back here; a
program it executes keeps SIGTERM ignored (exec keeps SIG_IGN): none of the product's relies on
it (the X-ray decode server ignores it too and is stopped with SIGKILL).

A cold shutdown (SIGQUIT) would cancel the job in hand with a SIGTERM that the pool process now
ignores, and wait for the job: so SIGQUIT first SIGKILLs the pool processes (the same abrupt end
as before; the job goes back to the queue, as with any lost worker), then Celery's cold shutdown
runs as it did."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from celery.signals import celeryd_after_setup, worker_process_init, worker_ready

_TERM = {signal.SIGTERM}


def _block_term_before_fork() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, _TERM)


def _unblock_term_after_fork() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _TERM)


_main_pid = None


def _term_as_default_unless_pool_process() -> None:
    # The hooks are inherited: a pool process forking (multiprocessing's fork context) runs them
    # too. Its children are not pool processes; they get SIGTERM's default back.
    if os.getppid() != _main_pid:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _TERM)


@celeryd_after_setup.connect
def block_term_across_forks(**kwargs):
    """In the worker's main process, before the pool forks: every pool process starts with
    SIGTERM blocked (the forking thread blocks it for the fork only)."""
    global _main_pid
    _main_pid = os.getpid()
    os.register_at_fork(before=_block_term_before_fork, after_in_parent=_unblock_term_after_fork,
                        after_in_child=_term_as_default_unless_pool_process)


@worker_process_init.connect
def ignore_term_in_pool_process(**kwargs):
    # Connected before the model loads (workers.startup imports this module first), so that a
    # SIGTERM during the load is ignored too. Ignoring it discards one already pending.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _TERM)


@worker_ready.connect
def kill_pool_first_on_cold_shutdown(**kwargs):
    # Celery's SIGQUIT handler is in place by now (the main process, pool started); Celery
    # replaces it with its own "hard" handler once it has run, so a second SIGQUIT is Celery's.
    celery_handler = signal.getsignal(signal.SIGQUIT)
    if not callable(celery_handler):
        return

    def cold_shutdown(signum, frame):
        for pid in _child_pids():  # the pool processes
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        celery_handler(signum, frame)

    signal.signal(signal.SIGQUIT, cold_shutdown)


def _child_pids() -> list[int]:
    """This process's children, from Linux's /proc (elsewhere none: the cold shutdown then waits
    for the job in hand)."""
    pids = []
    for children in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
        try:
            pids += [int(pid) for pid in children.read_text().split()]
        except OSError:  # the thread ended meanwhile
            pass
    return pids
