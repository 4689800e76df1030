"""`solvency ui`, the underwriters' workbench, and the accounts that sign in to it:
passwords and API tokens (shown once, stored as hashes)."""

from __future__ import annotations

import dataclasses
import sys
from typing import Annotated

import typer

from flows.cli.app import LakeOption, app, fail, run_context
from flows.cli.output import OUT
from flows.cli.underwriting_commands import users_app


@app.command()
def ui(
    host: Annotated[
        str | None, typer.Option("--host", help="Interface to listen on (SOLVENCY_WEB_HOST).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="TCP port (SOLVENCY_WEB_PORT, default 8000).")
    ] = None,
    lake: LakeOption = None,
) -> None:
    """Start the underwriters' workbench (web app and JSON API) on the configured decision
    store, lake and MLflow; sign in with an account from `solvency users add`."""
    import uvicorn

    from flows.web.app import create_app

    ctx = run_context(lake_dir=lake)
    settings = ctx.settings
    settings = dataclasses.replace(
        settings, **{k: v for k, v in (("web_host", host), ("web_port", port)) if v is not None}
    )
    users = [u for u in ctx.decisions.users() if u.password_hash and u.active]
    OUT.line(f"workbench on http://{settings.web_host}:{settings.web_port}/ (API docs at /docs)")
    if not users:
        OUT.warning("no user can sign in yet: `solvency users add NAME --role underwriter "
                    "--authority 500000` prints a password")  # fmt: skip
    uvicorn.run(
        create_app(settings), host=settings.web_host, port=settings.web_port,
        log_level="info", proxy_headers=True,
    )  # fmt: skip


def _read_password(stdin: bool) -> str | None:
    """The password piped on stdin (first line), or None to generate one."""
    if not stdin:
        return None
    password = sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        raise typer.BadParameter("a password needs at least 8 characters", param_hint="stdin")
    return password


@users_app.command("password")
def users_password(
    name: Annotated[str, typer.Argument(help="The user.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the new password from stdin.")
    ] = False,
) -> None:
    """Set a new workbench password (a random one is printed once unless given on stdin)."""
    from data.decisions import DecisionStoreError
    from flows.web.auth import hash_password, new_password

    given = _read_password(password_stdin)
    password = given or new_password()
    try:
        run_context().decisions.set_password_hash(name, hash_password(password))
    except DecisionStoreError as exc:
        fail(str(exc))
    OUT.success(f"password of {name} set")
    if given is None:
        OUT.line(f"password (shown once): {password}")


@users_app.command("token")
def users_token(
    name: Annotated[str, typer.Argument(help="The user the API token acts as.")],
    revoke: Annotated[bool, typer.Option("--revoke", help="Revoke the user's token.")] = False,
) -> None:
    """Issue an API token for the JSON API (printed once; a new one replaces the old)."""
    from data.decisions import DecisionStoreError
    from flows.web.auth import new_api_token

    token, token_hash = new_api_token()
    try:
        run_context().decisions.set_api_token_hash(name, None if revoke else token_hash)
    except DecisionStoreError as exc:
        fail(str(exc))
    if revoke:
        OUT.success(f"API token of {name} revoked")
        return
    OUT.success(f"API token of {name} issued (send it as `Authorization: Bearer <token>`)")
    OUT.line(f"token (shown once): {token}")
