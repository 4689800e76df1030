"""Prefect's temporary API server dies with the process that started it.

In Prefect's local mode the first flow run of a process starts a temporary API server: a
child process (`SubprocessASGIServer`, `python -m uvicorn ...`), stopped at the parent's
exit. A parent killed outright (SIGKILL, the out-of-memory killer) never reaches its exit
handlers, and the server stays behind, holding its port and Prefect's database.

Here the server's command is started through a small watchdog: a daemon thread in the
server process checks every half second that its parent is still the process that started
it, and when it is not (the parent died, the server was handed to init), sends the server
SIGTERM (uvicorn's graceful stop), then exits it outright after 10 seconds. Polling the
parent's id, rather than Linux's `PR_SET_PDEATHSIG`, because that signal follows the
*thread* that started the child, and Prefect may start its server from a worker thread that
ends long before the process does.

`bind_on_import()` (called when the `flows` package is imported) applies this to every
server the process starts, Prefect's own included, without importing Prefect's server
module before it is needed (it takes seconds): the binding is made when Prefect imports it.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
from typing import Any

SERVER_MODULE = "prefect.server.api.server"
#: SHA-256 (first 16 hex digits) of the source of Prefect's `_run_uvicorn_command` that
#: `bind` re-implements (Prefect 3.9.1). Another source (a Prefect upgrade) is not bound:
#: a warning says so, and the server runs as Prefect starts it (the slow test then fails).
KNOWN_SERVER_COMMANDS = frozenset({"ade91366329f9f14"})

#: Run by the server's interpreter (`python -c WATCHDOG <parent pid> <uvicorn arguments>`).
WATCHDOG = """\
import os, runpy, signal, sys, threading, time

parent = int(sys.argv.pop(1))


def watch():
    while os.getppid() == parent:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(10)
    os._exit(1)


threading.Thread(target=watch, name="parent-watch", daemon=True).start()
sys.argv[0] = "uvicorn"
runpy.run_module("uvicorn", run_name="__main__", alter_sys=True)
"""


def watched(args: list[str], parent: int) -> list[str]:
    """`[python, -m, uvicorn, ...]` as the same command under the watchdog of `parent`."""
    if args[1:3] != ["-m", "uvicorn"]:
        raise ValueError(f"not a uvicorn command: {args[:3]}")
    return [args[0], "-c", WATCHDOG, str(parent), *args[3:]]


def bind(server_class: Any) -> None:
    """Start every server of Prefect's `SubprocessASGIServer` under the watchdog.

    The same command and environment as Prefect's `_run_uvicorn_command` (checked against
    `KNOWN_SERVER_COMMANDS`), started through `watched`; a test starts a real server and
    kills its parent.
    """
    if getattr(server_class, "_bound_to_parent", False):
        return
    import hashlib
    import inspect
    import logging
    import subprocess

    source = inspect.getsource(server_class._run_uvicorn_command)
    if hashlib.sha256(source.encode()).hexdigest()[:16] not in KNOWN_SERVER_COMMANDS:
        logging.getLogger(__name__).warning(
            "Prefect's server start command changed (Prefect upgrade?): its temporary server "
            "is not bound to this process and may outlive a killed command"
        )
        server_class._bound_to_parent = True  # warn once
        return

    import prefect
    from prefect.settings import get_current_settings

    def _run_uvicorn_command(self) -> subprocess.Popen:
        args = [
            sys.executable, "-m", "uvicorn",
            "--app-dir", str(prefect.__module_path__.parent),
            "--factory", "prefect.server.api.server:create_app",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--log-level", "error", "--lifespan", "on",
        ]  # fmt: skip
        server_env = {
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
        }
        return subprocess.Popen(
            args=watched(args, os.getpid()),
            env={
                **os.environ,
                **server_env,
                **get_current_settings().to_environment_variables(exclude_unset=True),
            },
        )

    server_class._run_uvicorn_command = _run_uvicorn_command
    server_class._bound_to_parent = True


class _BindOnImport(importlib.abc.MetaPathFinder):
    """Binds Prefect's server class right after Prefect imports its module."""

    def find_spec(self, fullname: str, path: Any, target: Any = None):
        if fullname != SERVER_MODULE:
            return None
        sys.meta_path.remove(self)  # once; the other finders locate the module
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def exec_module(module) -> None:
            run(module)
            bind(module.SubprocessASGIServer)

        spec.loader.exec_module = exec_module  # this module's own loader instance
        return spec


def bind_on_import() -> None:
    """Bind Prefect's server class now if its module is loaded, else when it is."""
    module = sys.modules.get(SERVER_MODULE)
    if module is not None:
        bind(module.SubprocessASGIServer)
    elif not any(isinstance(f, _BindOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _BindOnImport())
