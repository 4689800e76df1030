"""Benchmark: the underwriter workbench (`solvency ui`) served over HTTP, on a 100,000-buyer book.

An underwriter works through the review queue and opens buyers one after the other; a
policyholder's system posts limit requests to the JSON API and waits for the answer. Each
page must come back at once, whatever the size of the book. Measured here:

Set-up (not timed; the lake and the champion cached under --workdir and shared with
bench_daily and bench_requests): a generated 100,000-buyer, 24-month portfolio (the real
generator and ingestion), the LightGBM champion of bench_daily, one daily run of the day
(scores published, proposals and automatic decisions in a fresh SQLite decision store,
exactly as bench_requests prepares it), and an underwriter with a password and an API token
added to that store. The day runs on a copy of the cached lake in a temporary folder (the
daily run and the app's granted requests write into the book), so every run of this
benchmark starts from the same book.

Then the app is started as a real server (`python -m flows.cli ui` on a free local port, in
its own process) and, once `GET /healthz` answers 200 (its start-up time is reported), one
client signs in as a browser does (the login form with its CSRF token, the session cookie)
and sends, one after the other, after a few warm-up requests of each kind (not counted):
1. `GET /queue` with varied filters, sorts and pages;
2. `GET /buyers/{buyer_id}` on distinct buyers, half of them in the queue, half at random;
3. `POST /api/limit-requests` (JSON, a bearer token) on distinct pairs as bench_requests
   builds them: four in five on a pair already insured (1.1x to 3x its limit), one in five
   on a buyer the policyholder has no limit on yet.
For each request: the server's own time (its `Server-Timing: app;dur=<ms>` header) and the
client's round trip; per endpoint p50/p95/p99/max (the queue also per kind of query), the
warm-up requests' times, the status codes and, for the limit requests, the answers; the
server's peak resident memory (VmHWM) and the machine's load average (other work on the two
cores shows in the tails).

Targets (2 cores, 100,000 buyers, 200 requests each): the queue page and the buyer page
<= 300 ms at the 95th percentile of server time; a JSON limit request <= 200 ms.

    uv run python -m benchmarks.bench_workbench
    uv run python -m benchmarks.bench_workbench --buyers 20000 --requests 100   # quicker
"""

from __future__ import annotations

import argparse
import html
import importlib.util
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from benchmarks.bench_requests import _request_mix, _settings
from benchmarks.common import END_DATE, ROOT, champion_and_lake, report_child, run_child

#: Server-time targets at the 95th percentile, in milliseconds.
TARGETS_MS = {"queue": 300.0, "buyer": 300.0, "limit_request": 200.0}
USER, ROLE, AUTHORITY = "bench-uw", "underwriter", 5_000_000
_SERVER_TIMING = re.compile(r"(?:^|,)\s*app\s*;\s*dur\s*=\s*([0-9.]+)")
_CSRF_INPUT = re.compile(r"<input\b[^>]*\bname=[\"']csrf_token[\"'][^>]*>", re.IGNORECASE)
_VALUE = re.compile(r"\bvalue=[\"']([^\"']*)[\"']", re.IGNORECASE)


# -- set-up (in a child process: the book, the queue, the request mix) --------------------------


def _plan(lake: Path, uri: str, artifacts: Path, database: Path, out: Path, n: int) -> dict:
    """What the client will ask for: queue filters' values, buyers, limit requests (untimed)."""
    from data.decisions import DecisionStore
    from data.lake import Lake
    from flows.context import RunContext
    from flows.underwriting import RequestDesk

    settings = _settings(lake, uri, artifacts, database)
    ctx = RunContext.build(settings, END_DATE)
    store = DecisionStore(settings.decision_db_url)
    desk = RequestDesk(ctx, store)
    pairs = desk.pairs.loc[desk.pairs["limit_amount"] > 0].reset_index(drop=True)
    buyers = np.array(sorted(desk.buyers))
    mix = _request_mix(pairs, buyers, np.array(sorted(desk.policyholders)), n, seed=11)
    queue = store.open_proposals()
    store.close()
    countries = Lake(lake).read("buyers", ["buyer_id", "country"]).set_index("buyer_id")["country"]
    queued = queue["buyer_id"].drop_duplicates()
    plan = {
        "buyers": buyers.tolist(),
        "queued_buyers": queued.tolist(),
        "policyholders": queue["policyholder_id"].value_counts().index[:50].tolist(),
        "countries": countries.reindex(queued).dropna().value_counts().index[:20].tolist(),
        "grades": sorted(int(g) for g in queue["grade"].dropna().unique()),
        "actions": sorted(queue["action"].unique()),
        "requests": [[p, b, float(a)] for p, b, a in mix],
    }
    out.write_text(json.dumps(plan))
    return {
        "buyers": len(buyers),
        "pairs": len(desk.pairs),
        "queue": len(queue),
        "queued_buyers": len(queued),
        "human": int(queue["human_required"].sum()) if len(queue) else 0,
    }


def _add_user(url: str, password: str) -> str:
    """The benchmark's underwriter (password and API token) in the decision store; the token."""
    from data.decisions import DecisionStore
    from flows.web.auth import hash_password, new_api_token

    store = DecisionStore(url)
    try:
        store.upgrade()
        store.add_user(
            USER, ROLE, authority_amount=AUTHORITY, password_hash=hash_password(password)
        )
        token, token_hash = new_api_token()
        store.set_api_token_hash(USER, token_hash)
    finally:
        store.close()
    return token


# -- the server ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a live process, in KiB (empty if it is gone)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return {
        k: int(v.split()[0])
        for k, v in (line.split(":", 1) for line in lines if line.startswith(("VmRSS", "VmHWM")))
    }


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


def _wait_healthy(base: str, proc: subprocess.Popen, timeout: float) -> float:
    """Seconds until `GET /healthz` answers 200; raises if the server dies or times out."""
    import httpx

    started = last_print = time.perf_counter()
    status = "no answer"
    while True:
        elapsed = time.perf_counter() - started
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode} during start-up")
        if elapsed > timeout:
            raise RuntimeError(f"/healthz not 200 after {timeout:.0f} s (last: {status})")
        try:
            status = str(httpx.get(f"{base}/healthz", timeout=5.0).status_code)
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        if status == "200":
            return time.perf_counter() - started
        if time.perf_counter() - last_print >= 10:
            last_print = time.perf_counter()
            print(f"  … {elapsed:.0f} s, /healthz: {status}", flush=True)
        time.sleep(0.25)


# -- the client ---------------------------------------------------------------------------------


def _sign_in(client, password: str) -> None:
    """As a browser: the login form, its CSRF token, the form posted; a 303 and a cookie."""
    page = client.get("/login")
    if page.status_code != 200:
        raise RuntimeError(f"GET /login answered {page.status_code}: {page.text[:300]}")
    field = _CSRF_INPUT.search(page.text)
    value = _VALUE.search(field.group(0)) if field else None
    if value is None:
        raise RuntimeError("GET /login: no hidden input named csrf_token in the page")
    form = {"username": USER, "password": password, "csrf_token": html.unescape(value.group(1))}
    answer = client.post("/login", data=form)
    if answer.status_code != 303:
        raise RuntimeError(f"POST /login answered {answer.status_code}: {answer.text[:300]}")
    if not client.cookies:
        raise RuntimeError("POST /login answered 303 but set no cookie")


def _queue_queries(plan: dict, n: int, rng: np.random.Generator) -> list[str]:
    """`n` queue URLs: pages, sorts and filters (alone and combined) as an underwriter uses them."""
    pick = lambda values, default: str(rng.choice(values)) if values else default  # noqa: E731
    sorts = ("priority", "el_change", "limit", "deadline")
    kinds = [
        lambda: "",
        lambda: f"?page={rng.integers(1, 11)}",
        lambda: f"?sort={pick(sorts, 'priority')}",
        lambda: f"?sort={pick(sorts, 'priority')}&page={rng.integers(1, 6)}",
        lambda: f"?action={pick(plan['actions'], 'decrease')}",
        lambda: f"?grade={pick(plan['grades'], '7')}",
        lambda: "?human=all",
        lambda: f"?human=all&page={rng.integers(1, 21)}",
        lambda: "?new=1",
        lambda: "?mine=1",
        lambda: f"?policyholder={pick(plan['policyholders'], 'P0')}",
        lambda: f"?country={pick(plan['countries'], 'DE')}",
        lambda: f"?action={pick(plan['actions'], 'decrease')}&sort=el_change",
        lambda: f"?grade={pick(plan['grades'], '7')}&human=all&sort=limit",
    ]
    return ["/queue" + kinds[i % len(kinds)]() for i in rng.permutation(n)]


def _buyer_ids(plan: dict, n: int, rng: np.random.Generator) -> list[str]:
    """`n` distinct buyers: half in the queue, the rest drawn from the whole book."""
    queued = list(plan["queued_buyers"])
    chosen = [str(b) for b in rng.permutation(queued)[: n // 2]] if queued else []
    taken, book = set(chosen), plan["buyers"]
    for i in rng.permutation(len(book)):
        if len(chosen) >= n:
            break
        if book[i] not in taken:
            taken.add(book[i])
            chosen.append(str(book[i]))
    return [chosen[i] for i in rng.permutation(len(chosen))]


def _timed(client, method: str, url: str, **kwargs) -> tuple[int, float, float | None, object]:
    """Status, client round trip (ms), server time (ms, from Server-Timing) and the response."""
    started = time.perf_counter()
    response = client.request(method, url, **kwargs)
    client_ms = (time.perf_counter() - started) * 1e3
    found = _SERVER_TIMING.search(response.headers.get("server-timing", ""))
    return response.status_code, client_ms, float(found.group(1)) if found else None, response


def _kind(url: str) -> str:
    """A query's kind: its parameter names (`/queue?sort=limit&page=2` -> `sort&page`)."""
    query = url.partition("?")[2]
    return "&".join(p.partition("=")[0] for p in query.split("&"))


def _run_endpoint(client, calls: list[tuple[str, str, dict]], warmup: int) -> dict:
    """Warm-up calls (not counted), then the measured calls one after the other."""
    warm = [_timed(client, method, url, **kwargs) for method, url, kwargs in calls[:warmup]]
    server, client_times, codes, answers, failures = [], [], Counter(), Counter(), []
    by_kind: dict[str, list[float]] = {}
    for method, url, kwargs in calls[warmup:]:
        code, client_ms, server_ms, response = _timed(client, method, url, **kwargs)
        codes[code] += 1
        client_times.append(client_ms)
        if server_ms is not None:
            server.append(server_ms)
            by_kind.setdefault(_kind(url), []).append(server_ms)
        if code != 200 and len(failures) < 5:
            failures.append(f"{method} {url} -> {code}: {response.text[:300]!r}")
        if method == "POST" and code == 200:
            try:
                answers[str(response.json().get("status"))] += 1
            except (ValueError, AttributeError):
                answers["(not JSON)"] += 1
    return {
        "server": server,
        "client": client_times,
        "codes": dict(codes),
        "answers": dict(answers),
        "failures": failures,
        "by_kind": by_kind,
        "warmup": [(code, server_ms) for code, _, server_ms, _ in warm],
    }


def _percentiles(values: list[float]) -> str:
    if not values:
        return "no values"
    ms = np.array(values)
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return f"p50 {p50:6.1f}  p95 {p95:6.1f}  p99 {p99:6.1f}  max {ms.max():6.1f} ms"


def _report(name: str, label: str, result: dict) -> bool:
    """Print one endpoint's figures; whether its server-time p95 meets the target."""
    target, server = TARGETS_MS[name], result["server"]
    p95 = float(np.percentile(server, 95)) if server else float("nan")
    met = bool(server) and p95 <= target
    codes = ", ".join(f"{k}: {v}" for k, v in sorted(result["codes"].items()))
    print(f"\n{label} ({len(result['client'])} requests; status {codes})")
    missing = len(result["client"]) - len(server)
    print(
        f"  server time   {_percentiles(server)}"
        + (f"  ({missing} answers without Server-Timing)" if missing else "")
    )
    print(f"  client time   {_percentiles(result['client'])}")
    if result["warmup"]:
        warm = ", ".join(
            f"{'?' if ms is None else f'{ms:.0f}'} ms ({code})" for code, ms in result["warmup"]
        )
        print(f"  warm-up       server time (status), not counted: {warm}")
    if len(result["by_kind"]) > 1 and name == "queue":
        kinds = sorted(result["by_kind"].items(), key=lambda kv: -np.percentile(kv[1], 95))
        print("  by query     server p50/p95 ms (requests), slowest first:")
        for kind, values in kinds:
            p50, p95 = np.percentile(values, [50, 95])
            shown = f"/queue?{kind}" if kind else "/queue"
            print(f"                {shown}: {p50:.0f}/{p95:.0f} ({len(values)})")
    if result["answers"]:
        print(
            "  answers       " + ", ".join(f"{k} {v}" for k, v in sorted(result["answers"].items()))
        )
    for failure in result["failures"]:
        print(f"  NOT 200       {failure}")
    print(f"  target        server p95 <= {target:.0f} ms: {'PASS' if met else 'MISS'}")
    return met


def _measure(args, lake: Path, uri: str, artifacts: Path, url: str, plan: dict, tmp: Path) -> None:
    """Start the server, sign in, send the three kinds of requests, print the figures."""
    import httpx

    password = secrets.token_urlsafe(16)
    token = _add_user(url, password)
    port = args.port or _free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env.update(
        SOLVENCY_LAKE=str(lake),
        MLFLOW_TRACKING_URI=uri,
        SOLVENCY_MLFLOW_ARTIFACTS=str(artifacts),
        SOLVENCY_DECISION_DB=url,
        SOLVENCY_WEB_SECRET_KEY=secrets.token_hex(32),
    )
    stdout, stderr = tmp / "server.out", tmp / "server.err"
    command = [sys.executable, "-m", "flows.cli", "ui", "--host", "127.0.0.1", "--port", str(port)]
    print(f"starting the app: {' '.join(command[1:])} …", flush=True)
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=err)
    try:
        try:
            startup_s = _wait_healthy(base, proc, args.startup_timeout)
        except RuntimeError as exc:
            print(f"the app did not start: {exc}\n--- server stderr (tail) ---\n{_tail(stderr)}")
            print(f"--- server stdout (tail) ---\n{_tail(stdout)}")
            raise SystemExit(1) from None
        started_rss = _memory_kb(proc.pid).get("VmRSS", 0)
        load_before = os.getloadavg()[0]
        print(f"  /healthz 200 after {startup_s:.1f} s; signing in…", flush=True)
        rng = np.random.default_rng(7)
        n, warmup = args.requests, args.warmup
        with httpx.Client(base_url=base, timeout=args.request_timeout) as client:
            _sign_in(client, password)
            queue = [("GET", q, {}) for q in _queue_queries(plan, n + warmup, rng)]
            buyers = [("GET", f"/buyers/{b}", {}) for b in _buyer_ids(plan, n + warmup, rng)]
            print(f"{n} × GET /queue (after {warmup} warm-up)…", flush=True)
            results = {"queue": _run_endpoint(client, queue, warmup)}
            print(f"{n} × GET /buyers/{{id}}…", flush=True)
            results["buyer"] = _run_endpoint(client, buyers, warmup)
        mix = plan["requests"]
        order = rng.permutation(len(mix))
        headers = {"Authorization": f"Bearer {token}"}
        fields = ("policyholder_id", "buyer_id", "amount")
        requests = [
            ("POST", "/api/limit-requests", {"json": dict(zip(fields, mix[i], strict=True))})
            for i in order
        ]
        print(f"{n} × POST /api/limit-requests…", flush=True)
        with httpx.Client(base_url=base, timeout=args.request_timeout, headers=headers) as api:
            results["limit_request"] = _run_endpoint(api, requests, warmup)
        load_after = os.getloadavg()[0]
        pids = [proc.pid, *_children(proc.pid)]
        memory = {pid: _memory_kb(pid) for pid in pids}
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    print(
        f"\n{plan['summary']['buyers']:,} buyers, {plan['summary']['pairs']:,} pairs in the book; "
        f"{plan['summary']['queue']:,} open proposals ({plan['summary']['human']:,} needing a "
        f"person) on {plan['summary']['queued_buyers']:,} buyers\n"
        f"  app start-up until /healthz 200: {startup_s:.1f} s "
        f"(RSS then {started_rss / 1024**2:.2f} GB)\n"
        f"  machine load (1-min average) {load_before:.1f} before the requests, "
        f"{load_after:.1f} after, on {os.cpu_count()} cores"
    )
    for pid, mem in memory.items():
        which = "server" if pid == proc.pid else f"server child {pid}"
        print(
            f"  {which} peak RSS (VmHWM) {mem.get('VmHWM', 0) / 1024**2:.2f} GB, "
            f"RSS at the end {mem.get('VmRSS', 0) / 1024**2:.2f} GB"
        )
    met = [
        _report("queue", "GET /queue", results["queue"]),
        _report("buyer", "GET /buyers/{buyer_id}", results["buyer"]),
        _report("limit_request", "POST /api/limit-requests", results["limit_request"]),
    ]
    print(f"\nall targets {'met' if all(met) else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--buyers", type=int, default=100_000, help="buyers in the book")
    parser.add_argument("--months", type=int, default=24, help="months of history")
    parser.add_argument("--requests", type=int, default=200, help="requests per endpoint")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up requests per endpoint")
    parser.add_argument("--port", type=int, default=0, help="server port (0: a free one)")
    parser.add_argument("--startup-timeout", type=float, default=900.0, help="seconds")
    parser.add_argument("--request-timeout", type=float, default=60.0, help="seconds")
    parser.add_argument(
        "--setup-only", action="store_true", help="prepare the book and the day, start nothing"
    )
    parser.add_argument("--workdir", type=Path, default=ROOT / "data" / "bench")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, lake, uri, artifacts, database, out, n = args.child.split(",")
        assert mode == "plan"
        paths = (Path(lake), uri, Path(artifacts), Path(database), Path(out))
        report_child(lambda: _plan(*paths, int(n)))
        return

    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    uri, artifacts, lake = champion_and_lake(args.workdir, args.buyers, args.months)
    with tempfile.TemporaryDirectory(prefix="bench-workbench-") as name:
        tmp = Path(name)
        os.environ["PREFECT_HOME"] = str(tmp / "prefect")
        lake = Path(shutil.copytree(lake, tmp / "lake"))  # the cached book stays as built
        database = tmp / "decisions.db"
        child = f"{lake},{uri},{artifacts},{database}"
        print(f"the daily run of {END_DATE} (scores, proposals; not timed)…", flush=True)
        day = run_child("benchmarks.bench_requests", [f"--child=publish,{child}"])
        print(
            f"  {day['limits']:,} limits rescored, {day['proposals']:,} proposals; "
            "the queue, buyers and limit requests to send (not timed)…",
            flush=True,
        )
        n = args.requests + args.warmup
        summary = run_child(
            "benchmarks.bench_workbench", [f"--child=plan,{child},{tmp / 'plan.json'},{n}"]
        )
        plan = json.loads((tmp / "plan.json").read_text()) | {"summary": summary}
        print(
            f"  {summary['queue']:,} open proposals on {summary['queued_buyers']:,} buyers "
            f"({summary['seconds']:.0f} s)",
            flush=True,
        )
        if args.setup_only:
            print("set-up done (--setup-only): the app is not started")
            return
        missing = [m for m in ("flows.web.app", "flows.web.auth") if not _has_module(m)]
        if missing:
            print(f"set-up done, but {', '.join(missing)} cannot be imported: nothing measured")
            raise SystemExit(1)
        _measure(args, lake, uri, artifacts, f"sqlite:///{database}", plan, tmp)


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


if __name__ == "__main__":
    main()
