"""One training run per work dir: a lock file that holds the owner's pid and host."""
import atexit
import json
import os
import os.path as osp
import socket

LOCK_NAME = '.train.lock'


class WorkDirLockedError(RuntimeError):
    """Another live training run holds the work dir."""


def pid_alive(pid):
    """Whether a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _read(path):
    """The ``{'pid', 'host'}`` a lock file holds, or None (gone, unreadable, half-written)."""
    try:
        with open(path) as f:
            owner = json.load(f)
    except (OSError, ValueError):
        return None
    ok = isinstance(owner, dict) and isinstance(owner.get('pid'), int)
    return owner if ok else None


def _create(path, me):
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, 'w') as f:
        json.dump(me, f)
    return True


def acquire_work_dir_lock(work_dir, log=print):
    """Create ``work_dir/.train.lock`` holding this process's pid and host, and remove it when
    the process exits (normally or by an exception). Raises :class:`WorkDirLockedError`, naming
    the lock file and the other run, if a live process holds it; a lock left by a dead process
    on this host is taken over (``log`` says so). Holding it already is fine. Returns the path.
    """
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, LOCK_NAME)
    me = dict(pid=os.getpid(), host=socket.gethostname())
    while not _create(path, me):
        owner = _read(path)
        if owner == me:
            return path
        if not (owner and owner.get('host') == me['host'] and not pid_alive(owner['pid'])):
            who = (f'process {owner["pid"]} on {owner.get("host")}' if owner else
                   'another process')
            raise WorkDirLockedError(
                f'work dir {work_dir} is in use by another training run ({who}; lock file '
                f'{path}). Two runs in one work dir overwrite each other\'s checkpoints and '
                'config. Train with another --work-dir, or wait for that run to end; if it is '
                'gone (e.g. it ran on another machine), delete the lock file.')
        log(f'{path}: taking over the lock of process {owner["pid"]}, which is gone (a killed '
            'run)')
        os.remove(path)
    atexit.register(release_work_dir_lock, path)
    return path


def release_work_dir_lock(path):
    """Remove the lock file if this process holds it."""
    owner = _read(path)
    if owner and owner.get('pid') == os.getpid() and owner.get('host') == socket.gethostname():
        os.remove(path)
