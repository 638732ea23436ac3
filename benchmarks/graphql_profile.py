"""Customer profile over real HTTP: the GraphQL endpoint against a plain Starlette endpoint.

One run measures both sides against the same server process, database and data, and prints
JSON (stdout) plus a one-line summary (stderr). The figure that matters is the ratio
`ratio_rps = graphql_rps / baseline_rps` (target: >= 0.5); absolute numbers depend on the
machine. Nothing here asserts on timing.

    .venv/bin/python benchmarks/graphql_profile.py
    .venv/bin/python benchmarks/graphql_profile.py --database-url postgresql://postgres@127.0.0.1/postgres

Data (benchmarks/profile_data.py)
    A fresh database: SQLite in a temp dir (LOYALGRAPH_HOME is that dir, so the keyring is
    fresh too), or with `--database-url postgresql://...` a database `lg_bench_<hex>` created
    on that server through asyncpg and dropped afterwards. Migrated with
    `migrations.runner.upgrade`, then seeded with the real services in `core.db` transactions
    and a `FieldCipher` over a `LocalKeyring`: `--customers` customers
    (`graph.customers.register_customer`: phone, e-mail and loyalty card, so 3 identities, and
    an encrypted profile), about `--events` events each (`graph.events.record_purchase` with 1-3
    lines, `record_event` visits, contacts, campaign responses), 0-3 reviews each
    (`graph.influence.submit_review`, encrypted text) with 0-4 votes by other customers
    (`vote_review`). Same `--seed`, same data.

Serving
    A child process (this script with `--serve-port`) runs uvicorn on 127.0.0.1, a free port,
    with `api.app.create_app(settings)` plus the baseline route appended to `app.router.routes`:
    both sides share the app and its middleware, the engine and pool, the keyring. Its own
    process, so the load generator does not share the server's GIL. Logging is set up as
    `loyalgraph serve` does (INFO: one `loyalgraph.access` line per request, to a temp file).
    `--env` sets LOYALGRAPH_ENV (default prod: no IDE, no introspection, masked errors).

GraphQL side: POST /graphql, {"query": PROFILE_QUERY, "variables": {"id": <global id>}},
    `Authorization: Bearer <operator JWT>` (`api.auth.issue_token`, the keyring's "jwt" secret,
    `Role.OPERATOR`, so identity values are decrypted), Accept application/json. The server
    does what it does in production: parse (ParserCache), validate (ValidationCache, limiter
    and cost extensions), build the context (session, FieldCipher, JWT check, DataLoaders),
    execute the resolvers and loaders of `api/schema` (customers_by_ids, identities_for,
    events_for(first=10), reviews_for(limit=20), votes_for, FieldCipher.preload + AES-GCM
    decryption of identity values and review texts), serialise with Strawberry's encoder.

Baseline side: GET /baseline/customers/{uuid}/profile, same token. A Starlette function that
    checks the same JWT (`api.auth.principal_from_token`, a PROFILE_READERS role needed), opens
    a session from `app.state.sessions`, awaits the same `graph.queries` functions with the same
    arguments one after the other (customers_by_ids, identities_for, events_for(first=10),
    reviews_for(limit=20), votes_for when there are reviews), preloads data keys once
    (`FieldCipher.preload`) and decrypts identity values and review texts
    (`FieldCipher.decrypt`), and returns a `JSONResponse` equal to the GraphQL response's
    `data` (global ids, enums, ISO datetimes, money). Same queries, rows and crypto, so the
    difference is the GraphQL layer: parsing, validation, extensions, context and DataLoaders,
    execution, serialisation. (When identity values and review texts are opened in two
    plaintext-loader batches, the GraphQL side can issue one more DataKey SELECT: that is part
    of what is measured.)

Before timing, both sides are called for several customers (with and without reviews and
votes) and must answer 200 with equal data, the seeded number of identities and
min(10, seeded events) events. Then a warm-up (`--warmup` per side), then `--requests` per side
in `--rounds` rounds, alternating which side goes first (ABBA) so drift hits both equally. Each
side runs with `--concurrency` in-flight requests (httpx.AsyncClient, keep-alive, one
connection per worker), cycling through all seeded customers in the same order. Every timed
response is checked (status 200, no "errors" for GraphQL); failures are reported and make the
exit status 1. Server CPU per request is read from /proc (Linux) for each side:
`ratio_server_cpu = baseline_cpu_ms / graphql_cpu_ms` is the throughput ratio the server
would reach if CPU-bound, and moves less than `ratio_rps` when other processes share the box.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This folder's scripts are named after what they measure (scoring.py): the repository root
# goes first, so `import scoring` is the package; `import profile_data` still finds this folder.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import contextlib
import json
import logging
import os
import platform
import random
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import metadata
from typing import Any

import httpx
from profile_data import CURRENCY, IDENTITIES_PER_CUSTOMER, Seeded, scratch_database, seed

from api.auth import PROFILE_READERS, AuthError, Role, issue_token, principal_from_token
from api.schema.common import DEFAULT_PAGE, to_global_id
from core.settings import Settings
from graph import queries
from graph.enums import EventType
from migrations.runner import upgrade
from privacy.fields import FieldCipher
from privacy.keys import LocalKeyring

ROOT = Path(__file__).resolve().parent.parent
EVENTS_SHOWN = 10

PROFILE_QUERY = """
query CustomerProfile($id: ID!) {
  customer(id: $id) {
    id
    identities { kind verified value }
    events(first: 10) {
      edges {
        node {
          id
          type
          occurredAt
          ... on Purchase { total { amountMinor currency } }
        }
      }
    }
    reviews { rating text helpfulVotes }
  }
}
"""

# GraphQL type of each event kind (api/schema/events/types.py), for the baseline's global ids.
EVENT_TYPE_NAMES = {
    EventType.PURCHASE: "Purchase",
    EventType.RETURN: "Return",
    EventType.VISIT: "Visit",
    EventType.CONTACT: "ContactInteraction",
    EventType.CAMPAIGN_RESPONSE: "CampaignResponse",
}


# --- the baseline endpoint (runs in the server process) ------------------------------------


def baseline_endpoint(app: Any) -> Any:
    """A plain Starlette endpoint doing the profile query's SQL and crypto, nothing else."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    settings: Settings = app.state.settings
    sessions = app.state.sessions
    provider = app.state.provider
    jwt_secret = provider.secret("jwt")

    async def profile(request: Request) -> JSONResponse:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        try:
            if scheme.lower() != "bearer" or not token:
                raise AuthError("use `Authorization: Bearer <token>`")
            principal = principal_from_token(jwt_secret, token.strip(), issuer=settings.jwt_issuer)
        except AuthError as error:
            return JSONResponse({"error": str(error)}, status_code=401)
        if not principal.has(*PROFILE_READERS):
            return JSONResponse({"error": "forbidden"}, status_code=403)
        try:
            wanted = uuid.UUID(request.path_params["id"])
        except ValueError:
            return JSONResponse({"error": "malformed id"}, status_code=400)
        session = sessions()
        try:
            cipher = FieldCipher(session, provider)
            customer = (await queries.customers_by_ids(session, [wanted])).get(wanted)
            if customer is None:
                return JSONResponse({"customer": None})
            owner = customer.id
            identities = (await queries.identities_for(session, [owner])).get(owner, [])
            events = (
                await queries.events_for(
                    session,
                    [owner],
                    first=EVENTS_SHOWN,
                    after=None,
                    filter=queries.EventFilter(),
                )
            ).get(owner, [])[:EVENTS_SHOWN]
            reviews = (await queries.reviews_for(session, [owner], limit=DEFAULT_PAGE)).get(
                owner, []
            )
            votes = await queries.votes_for(session, [r.id for r in reviews]) if reviews else {}
            await cipher.preload([i.value_ct for i in identities] + [r.text_ct for r in reviews])
            identity_rows = [
                {
                    "kind": str(row.kind),
                    "verified": row.verified,
                    "value": await cipher.decrypt(
                        table="identity", column="value_ct", row_id=row.id, blob=row.value_ct
                    ),
                }
                for row in identities
            ]
            review_rows = [
                {
                    "rating": row.rating,
                    "text": await cipher.decrypt(
                        table="review", column="text_ct", row_id=row.id, blob=row.text_ct
                    ),
                    "helpfulVotes": votes.get(row.id, queries.VoteCount()).helpful,
                }
                for row in reviews
            ]
        finally:
            await session.close()
        edges = []
        for event in events:
            node: dict[str, Any] = {
                "id": to_global_id(EVENT_TYPE_NAMES[EventType(event.type)], event.id),
                "type": str(event.type),
                "occurredAt": event.occurred_at.isoformat(),
            }
            if event.type == EventType.PURCHASE:
                node["total"] = {
                    "amountMinor": int(event.amount_minor or 0),
                    "currency": event.currency or "",
                }
            edges.append({"node": node})
        return JSONResponse(
            {
                "customer": {
                    "id": to_global_id("Customer", customer.id),
                    "identities": identity_rows,
                    "events": {"edges": edges},
                    "reviews": review_rows,
                }
            }
        )

    return profile


def serve(home: str, database_url: str, env: str, port: int) -> None:
    """The server process: the real app plus the baseline route, on 127.0.0.1."""
    import uvicorn
    from starlette.routing import Route

    from api.app import create_app

    settings = Settings.from_env(
        {
            "LOYALGRAPH_HOME": home,
            "LOYALGRAPH_DATABASE_URL": database_url,
            "LOYALGRAPH_ENV": env,
            "LOYALGRAPH_CURRENCY": CURRENCY,
        }
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    app = create_app(settings)
    app.router.routes.append(
        Route("/baseline/customers/{id}/profile", baseline_endpoint(app), methods=["GET"])
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --- load -----------------------------------------------------------------------------------


@dataclass
class Side:
    name: str
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    failures: int = 0
    first_failure: str | None = None
    server_cpu: float = 0.0
    client_cpu: float = 0.0

    def report(self) -> dict[str, Any]:
        count = len(self.latencies)
        cuts = statistics.quantiles(self.latencies, n=100, method="inclusive")
        return {
            "requests": count,
            "seconds": round(self.seconds, 3),
            "requests_per_second": round(count / self.seconds, 1),
            "p50_ms": round(cuts[49] * 1000, 2),
            "p99_ms": round(cuts[98] * 1000, 2),
            "mean_ms": round(statistics.fmean(self.latencies) * 1000, 2),
            "server_cpu_ms_per_request": (
                round(self.server_cpu * 1000 / count, 3) if self.server_cpu else None
            ),
            "client_cpu_ms_per_request": round(self.client_cpu * 1000 / count, 3),
            "failures": self.failures,
            **({"first_failure": self.first_failure} if self.first_failure else {}),
        }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process from /proc (0.0 where there is no /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Load:
    def __init__(self, client: httpx.AsyncClient, token: str, customer_ids: list[uuid.UUID]):
        self.client = client
        self.auth = {"Authorization": f"Bearer {token}"}
        self.customer_ids = customer_ids
        self.graphql_bodies = [
            json.dumps(
                {"query": PROFILE_QUERY, "variables": {"id": to_global_id("Customer", cid)}}
            ).encode()
            for cid in customer_ids
        ]
        self.graphql_headers = self.auth | {
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        self.baseline_headers = self.auth | {"Accept": "application/json"}

    async def graphql(self, index: int) -> httpx.Response:
        return await self.client.post(
            "/graphql",
            content=self.graphql_bodies[index % len(self.graphql_bodies)],
            headers=self.graphql_headers,
        )

    async def baseline(self, index: int) -> httpx.Response:
        cid = self.customer_ids[index % len(self.customer_ids)]
        return await self.client.get(
            f"/baseline/customers/{cid}/profile", headers=self.baseline_headers
        )

    async def run(
        self, side: Side, *, start: int, count: int, concurrency: int, server_pid: int, timed: bool
    ) -> None:
        call = self.graphql if side.name == "graphql" else self.baseline
        indexes = iter(range(start, start + count))
        latencies: list[float] = []

        async def worker() -> None:
            for index in indexes:  # shared, bounded: each index is taken by one worker
                began = time.perf_counter()
                response = await call(index)
                latencies.append(time.perf_counter() - began)
                failed = response.status_code != 200 or (
                    side.name == "graphql" and b'"errors"' in response.content
                )
                if failed and timed:
                    side.failures += 1
                    side.first_failure = side.first_failure or (
                        f"{response.status_code} {response.text[:300]}"
                    )

        cpu_server, cpu_client = _cpu_seconds(server_pid), time.process_time()
        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
        if timed:
            side.seconds += elapsed
            side.latencies += latencies
            side.server_cpu += _cpu_seconds(server_pid) - cpu_server
            side.client_cpu += time.process_time() - cpu_client


async def verify(load: Load, seeded: Seeded) -> int:
    """Both sides answer the same, correct data for customers with and without reviews."""
    ids = seeded.customer_ids
    sample = ids[:3] + [c for c in ids if seeded.helpful_votes.get(c)][:3]
    sample += [c for c in ids if not seeded.reviews.get(c)][:2]
    for cid in dict.fromkeys(sample):
        index = ids.index(cid)
        gql, plain = await load.graphql(index), await load.baseline(index)
        if gql.status_code != 200 or plain.status_code != 200:
            raise SystemExit(f"verify: HTTP {gql.status_code}/{plain.status_code}: {gql.text}")
        body = gql.json()
        if body.get("errors"):
            raise SystemExit(f"verify: GraphQL errors: {body['errors']}")
        data, expected = body["data"], plain.json()
        customer = data["customer"]
        checks = {
            "identities": (len(customer["identities"]), IDENTITIES_PER_CUSTOMER),
            "identity values": (
                sum(1 for i in customer["identities"] if i["value"]),
                IDENTITIES_PER_CUSTOMER,
            ),
            "events": (len(customer["events"]["edges"]), min(EVENTS_SHOWN, seeded.events[cid])),
            "reviews": (len(customer["reviews"]), seeded.reviews.get(cid, 0)),
            "helpful votes": (
                sum(r["helpfulVotes"] for r in customer["reviews"]),
                seeded.helpful_votes.get(cid, 0),
            ),
        }
        for what, (got, want) in checks.items():
            if got != want:
                raise SystemExit(f"verify: customer {cid}: {got} {what}, expected {want}")
        if data != expected:
            raise SystemExit(
                f"verify: GraphQL and baseline differ for {cid}:\n"
                f"{json.dumps(data, sort_keys=True)}\n{json.dumps(expected, sort_keys=True)}"
            )
    return len(dict.fromkeys(sample))


async def wait_ready(client: httpx.AsyncClient, server: subprocess.Popen[bytes]) -> None:
    for _ in range(300):  # up to ~30 s
        if server.poll() is not None:
            raise SystemExit(f"the server exited with status {server.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if (await client.get("/readyz")).status_code == 200:
                return
        await asyncio.sleep(0.1)
    raise SystemExit("the server did not become ready")


async def measure(
    args: argparse.Namespace,
    *,
    port: int,
    server: subprocess.Popen[bytes],
    token: str,
    seeded: Seeded,
) -> tuple[dict[str, Side], int]:
    limits = httpx.Limits(
        max_connections=args.concurrency, max_keepalive_connections=args.concurrency
    )
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30.0
    ) as client:
        await wait_ready(client, server)
        load = Load(client, token, seeded.customer_ids)
        verified = await verify(load, seeded)
        sides = {"baseline": Side("baseline"), "graphql": Side("graphql")}
        for side in sides.values():
            await load.run(
                side,
                start=0,
                count=args.warmup,
                concurrency=args.concurrency,
                server_pid=server.pid,
                timed=False,
            )
        per_round = [args.requests // args.rounds] * args.rounds
        per_round[-1] += args.requests - sum(per_round)
        start = 0
        for number, count in enumerate(per_round):
            order = ["baseline", "graphql"] if number % 2 == 0 else ["graphql", "baseline"]
            for name in order:
                await load.run(
                    sides[name],
                    start=start,
                    count=count,
                    concurrency=args.concurrency,
                    server_pid=server.pid,
                    timed=True,
                )
            start += count
        return sides, verified


# --- orchestration --------------------------------------------------------------------------


@contextlib.contextmanager
def running_server(
    home: Path, database_url: str, env: str, log_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """This script in serve mode, on 127.0.0.1 and a free port; terminated on exit."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    command = [sys.executable, str(Path(__file__).resolve()), "--serve-port", str(port)]
    command += ["--serve-home", str(home), "--database-url", database_url, "--env", env]
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield server, port
    except BaseException:
        print(log_path.read_text(errors="replace")[-4000:], file=sys.stderr)
        raise
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


PACKAGES = "strawberry-graphql graphql-core starlette uvicorn sqlalchemy aiosqlite asyncpg httpx"


def report(
    args: argparse.Namespace,
    sides: dict[str, Side],
    seeded: Seeded,
    verified: int,
    database: tuple[str, str],
) -> dict[str, Any]:
    baseline, graphql = sides["baseline"].report(), sides["graphql"].report()
    cpu = (baseline["server_cpu_ms_per_request"], graphql["server_cpu_ms_per_request"])
    return {
        "benchmark": "graphql_profile",
        "query": " ".join(PROFILE_QUERY.split()),
        "baseline": baseline,
        "graphql": graphql,
        "ratio_rps": round(graphql["requests_per_second"] / baseline["requests_per_second"], 3),
        "ratio_p50": round(graphql["p50_ms"] / baseline["p50_ms"], 3),
        "ratio_server_cpu": round(cpu[0] / cpu[1], 3) if all(cpu) else None,
        "target": {"ratio_rps_at_least": 0.5},
        "data": {
            "customers": len(seeded.customer_ids),
            "events": sum(seeded.events.values()),
            "reviews": sum(seeded.reviews.values()),
            "seed": args.seed,
            "seed_seconds": round(seeded.seconds, 1),
            "verified_customers": verified,
        },
        "environment": {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "database_backend": database[0],
            "database_version": database[1],
            "app_env": args.env,
            "concurrency": args.concurrency,
            "requests_per_side": args.requests,
            "warmup_per_side": args.warmup,
            "rounds": args.rounds,
            "server": "uvicorn, separate process",
            "client": "httpx.AsyncClient",
            "versions": {name: _version(name) for name in PACKAGES.split()},
        },
    }


def run(args: argparse.Namespace) -> int:
    with (
        tempfile.TemporaryDirectory(prefix="lg-bench-") as tmp,
        scratch_database(args.database_url, Path(tmp) / "home") as (url, backend, version),
    ):
        home = Path(tmp) / "home"
        settings = Settings.from_env(
            {"LOYALGRAPH_HOME": str(home), "LOYALGRAPH_DATABASE_URL": url}
            | {"LOYALGRAPH_CURRENCY": CURRENCY}
        )
        settings.ensure_dirs()
        provider = LocalKeyring(settings.keyring_path)
        upgrade(url)
        print(f"seeding {args.customers} customers ({backend})...", file=sys.stderr)
        seeded = asyncio.run(
            seed(
                settings,
                provider,
                customers=args.customers,
                events_per_customer=args.events,
                rng=random.Random(args.seed),
            )
        )
        token = issue_token(
            provider.secret("jwt"),
            role=Role.OPERATOR,
            subject="bench-operator",
            ttl=timedelta(hours=2),
            issuer=settings.jwt_issuer,
        )
        with running_server(home, url, args.env, Path(tmp) / "server.log") as (server, port):
            print(
                f"seeded in {seeded.seconds:.1f} s; server pid {server.pid} on port {port}; "
                f"{args.requests} requests per side...",
                file=sys.stderr,
            )
            sides, verified = asyncio.run(
                measure(args, port=port, server=server, token=token, seeded=seeded)
            )
    result = report(args, sides, seeded, verified, (backend, version))
    print(json.dumps(result, indent=2))
    gql, base = result["graphql"], result["baseline"]
    print(
        f"graphql_profile [{backend}, c={args.concurrency}]: "
        f"graphql {gql['requests_per_second']} req/s p50 {gql['p50_ms']} ms "
        f"p99 {gql['p99_ms']} ms | baseline {base['requests_per_second']} req/s "
        f"p50 {base['p50_ms']} ms p99 {base['p99_ms']} ms | ratio_rps {result['ratio_rps']} "
        f"(target >= 0.5), ratio_p50 {result['ratio_p50']}, "
        f"ratio_server_cpu {result['ratio_server_cpu']}",
        file=sys.stderr,
    )
    return 1 if base["failures"] or gql["failures"] else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Customer profile: GraphQL vs a plain Starlette endpoint, over real HTTP.",
    )
    parser.add_argument("--customers", type=int, default=200, help="customers to seed")
    parser.add_argument("--events", type=int, default=20, help="events per customer (about)")
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per side")
    parser.add_argument("--warmup", type=int, default=100, help="untimed requests per side")
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds (ABBA)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    parser.add_argument("--seed", type=int, default=42, help="random seed of the data")
    parser.add_argument(
        "--env", choices=["prod", "dev"], default="prod", help="the app's LOYALGRAPH_ENV"
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="postgresql://user@host/db: create a scratch database there (default: SQLite)",
    )
    parser.add_argument("--serve-port", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--serve-home", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("customers", "events", "requests", "rounds", "concurrency"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    if args.requests < 2 * args.rounds:
        parser.error("--requests must be at least twice --rounds")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_port is not None:
        serve(args.serve_home, args.database_url, args.env, args.serve_port)
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
