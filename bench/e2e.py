"""End to end under load: the demo's ``/v1/ping`` under gunicorn against the anchor and the floor.

Each contender is served by gunicorn (3 workers × 8 gthread threads, no access log) with Django's
standard middleware, persistent database connections and one shared redis-server, and driven by
wrk over 64 API keys in turn (many clients, each well within its 6000/min, so every contender
does its admitting work). Rounds are interleaved so a noisy neighbour hurts every contender
alike, and each round starts one contender later than the one before. With
``--same-middleware`` a line also pairs the goals' contenders round by round: the median of
each round's ratio, which a slow spell lasting a round moves less than the ratio of medians.

The figure that counts is **server + store CPU per request**: user + system time of the
gunicorn master and its workers, read from ``/proc`` before and after each round and divided
by the requests wrk completed, plus redis-server's (below). It is steadier than requests/s on
a shared machine, where wrk and Redis compete with the server for the same cores.

* ``ours``: the demo itself (``project.settings``, DEBUG off): ``APIKeyAuthentication``,
  ``HasScopes``, ``IsAuthenticated``, ``TokenBucketThrottle``, the enterprise plan (a bucket and
  a daily quota), the demo's own middleware too.
* ``anchor``: DRF + djangorestframework-api-key ``HasAPIKey`` + ``ScopedRateThrottle`` keyed by
  the API key on django-redis, 6000/min (``bench/sites/anchor.py``).
* ``DRF floor``: the least any DRF API-key stack must do, an ``APIView`` whose
  ``BaseAuthentication`` makes one indexed lookup of the key's digest and whose
  ``BaseThrottle`` runs one EVALSHA token bucket (``bench/sites/drf_floor.py``).
* ``floor``: a plain Django view doing the same (``bench/sites/floor.py``), for reference.

The redis-server's own CPU (from ``/proc``, read around each round and charged to the round's
contender) is added to the server's: work moved into a Lua script still costs the machine.
The ratios are of server + store CPU per request. On a PostgreSQL server running on this
machine, its CPU (the postmaster and its backends, from ``/proc``) is read the same way and
printed in a column of its own, with the ratios counting it too: the others query it on every
request, we do not, and its work costs the machine as redis-server's does.

With ``--same-middleware`` the anchor and the floor run a second time with the demo's whole
middleware list (``BENCH_MIDDLEWARE=demo``: request ids and security headers, rate-limit
headers, CORS, WhiteNoise), so the ratios also compare like with like. The DRF floor's goal
is judged there (the least a DRF API-key stack must do, with the same middleware as ours); the
anchor's on its own middleware, the stack teams run today. A seventh site serves the
**no-query floor** there too (``bench/sites/no_query_floor.py``): the DRF floor with the key
found in its worker's memory after one lookup and its ``EVALSHA`` on apiauth's connection,
checking nothing. Nothing that makes the floor's round trip can cost less, so the DRF floor
and the anchor over it are the most each goal's ratio could be, and ours over it is what all
of apiauth's checks cost.

SQLite by default (one file per contender); with ``DATABASE_URL`` set (PostgreSQL), every
contender uses that database.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import print_table

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
KEYS = 64
ANCHOR = "bench.sites.anchor"
FLOOR = "bench.sites.floor"
DRF_FLOOR = "bench.sites.drf_floor"
NO_QUERY_FLOOR = "bench.sites.no_query_floor"
DEMO_ENV = {
    "DJANGO_DEBUG": "0",
    "SECRET_KEY": "bench-e2e-" + "s" * 40,
    "PUBLIC_URL": "http://127.0.0.1:8000",
    "APIAUTH_ENCRYPTION_KEYS": "YmVuY2gtZTJlLWVuY3J5cHRpb24ta2V5LTMyLWJ5dGU=",
    "SECURE_COOKIES": "0",
}
"""What the demo's settings read from the environment, for a benchmark run (``breakdown`` too)."""
WRK_SCRIPT = """
local keys = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "/v1/ping", {["%s"] = "%s" .. keys[i %% #keys + 1]})
end
"""


@dataclass
class Site:
    name: str
    slug: str
    wsgi: str
    env: dict[str, str]
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    header: tuple[str, str] = ("X-API-Key", "")
    keys: list[str] = field(default_factory=list)
    rps: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)
    store_us: list[float] = field(default_factory=list)
    database_us: list[float] = field(default_factory=list)
    errors: int = 0

    def start(self) -> None:
        self.port = _free_port()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers=3",
                "--worker-class=gthread",
                "--threads=8",
                f"--bind=127.0.0.1:{self.port}",
                "--log-level=warning",
                *_without_control_socket(),
                self.wsgi,
            ],
            cwd=ROOT,
            env=self.env,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise SystemExit(f"{self.name}: gunicorn did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)

    def cpu_seconds(self) -> float:
        """User + system CPU of the gunicorn master and its workers so far."""
        assert self.process is not None
        ticks = 0
        for pid in [self.process.pid, *_children(self.process.pid)]:
            try:
                ticks += sum(_stat_ticks(pid)[:2])  # utime, stime
            except FileNotFoundError:
                continue
        return ticks / CLOCK_TICKS


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        found += [int(child) for child in children]
    return found


def _without_control_socket() -> list[str]:
    """gunicorn 25 and later open a control socket at one path per user: seven sites would
    contend for it (an error logged per site) and serve it in a thread of each master."""
    from gunicorn.config import KNOWN_SETTINGS  # type: ignore[import-untyped]

    known = any(setting.name == "control_socket_disable" for setting in KNOWN_SETTINGS)
    return ["--no-control-socket"] if known else []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_sites(workdir: Path, redis_url: str, same_middleware: bool = False) -> list[Site]:
    database_url = os.environ.get("DATABASE_URL")
    base = {
        key: value for key, value in os.environ.items() if key not in {"DJANGO_SETTINGS_MODULE"}
    }
    base["REDIS_URL"] = redis_url
    sites = []
    contenders = [
        ("ours (apiauth demo)", "project.settings", "project.wsgi:application", ""),
        ("anchor (DRF + api-key + throttle)", ANCHOR, "bench.sites.wsgi:application", ""),
        ("DRF floor (APIView, 1 SQL + 1 EVALSHA)", DRF_FLOOR, "bench.sites.wsgi:application", ""),
        ("floor (plain view, 1 SQL + 1 EVALSHA)", FLOOR, "bench.sites.wsgi:application", ""),
    ]
    if same_middleware:
        contenders += [
            ("anchor, the demo's middleware", ANCHOR, "bench.sites.wsgi:application", "demo"),
            ("DRF floor, the demo's middleware", DRF_FLOOR, "bench.sites.wsgi:application", "demo"),
            (
                "no-query floor, the demo's middleware",
                NO_QUERY_FLOOR,
                "bench.sites.wsgi:application",
                "demo",
            ),
        ]
    for name, settings, wsgi, middleware in contenders:
        slug = settings.rsplit(".", 1)[-1] + (f"-{middleware}" if middleware else "")
        env = {
            **base,
            "DJANGO_SETTINGS_MODULE": settings,
            "BENCH_MIDDLEWARE": middleware or "standard",
            "DATABASE_URL": database_url or f"sqlite:///{workdir / slug}.sqlite3",
            **DEMO_ENV,
            "STATIC_ROOT": str(workdir / "static"),
        }
        header = ("Authorization", "Api-Key ") if settings == ANCHOR else ("X-API-Key", "")
        sites.append(Site(name, slug, wsgi, env, header=header))
    return sites


def wrk(
    site: Site, seconds: float, script: Path, connections: int, *, warmup: bool = False
) -> tuple[float, int, int]:
    """Run wrk; returns (requests/s, requests, non-2xx responses)."""
    result = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "-s",
            str(script),
            f"http://127.0.0.1:{site.port}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    out = result.stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*", out)
    if errors:
        when = " (warm-up round: workers still starting)" if warmup else ""
        print(f"  {site.name}: {errors.group(0)}{when}", file=sys.stderr)
    return rps, requests, int(bad.group(1)) if bad else 0


def run(
    rounds: int = 5, seconds: float = 5.0, connections: int = 16, same_middleware: bool = False
) -> dict[str, float]:
    redis_url = _need_wrk_and_redis()
    store_pid = _redis_pid(redis_url)
    database_pid = _postgres_pid(os.environ.get("DATABASE_URL", ""))
    with tempfile.TemporaryDirectory(prefix="apiauth-e2e-") as tmp:
        workdir = Path(tmp)
        sites = make_sites(workdir, redis_url, same_middleware)
        with serving(sites, workdir):
            for round_ in range(rounds + 1):
                # Each round starts one site later: none is always first or last of a round.
                turn = round_ % len(sites)
                for site in sites[turn:] + sites[:turn]:
                    measure(
                        site,
                        workdir,
                        seconds,
                        connections,
                        store_pid,
                        database_pid,
                        warmup=round_ == 0,
                    )
    return report(sites, rounds, seconds, connections, database=database_pid is not None)


def noise(rounds: int = 20, seconds: float = 5.0, connections: int = 16) -> float:
    """An A/A run: the demo served as two sites at once (two gunicorn masters, a database
    each unless ``DATABASE_URL`` names one, one redis-server), in rounds that alternate which
    goes first, measured as :func:`run` measures. Prints how far the same code's ratio moves
    round by round and between the medians: the noise a ratio from :func:`run` carries."""
    redis_url = _need_wrk_and_redis()
    store_pid = _redis_pid(redis_url)
    with tempfile.TemporaryDirectory(prefix="apiauth-noise-") as tmp:
        workdir = Path(tmp)
        first, second = make_sites(workdir, redis_url)[0], make_sites(workdir, redis_url)[0]
        second.name, second.slug = "ours, again", "settings-again"
        if not os.environ.get("DATABASE_URL"):
            second.env = {**second.env, "DATABASE_URL": f"sqlite:///{workdir}/again.sqlite3"}
        sites = [first, second]
        with serving(sites, workdir):
            for round_ in range(rounds + 1):
                for site in sites if round_ % 2 else sites[::-1]:
                    measure(
                        site, workdir, seconds, connections, store_pid, None, warmup=round_ == 0
                    )
    medians = [statistics.median(map(sum, zip(s.cpu_us, s.store_us, strict=True))) for s in sites]
    paired = _paired(first, second)
    print(
        f"\nA/A: the demo served twice, {rounds} rounds × {seconds:g}s, {_machine()}: server + "
        f"store CPU per request (medians) {medians[0]:.0f} and {medians[1]:.0f} µs, ratio of "
        f"the medians {medians[1] / medians[0]:.2f}; paired by round: median "
        f"{statistics.median(paired):.2f}, from {min(paired):.2f} to {max(paired):.2f}; by "
        f"round: {' '.join(f'{ratio:.2f}' for ratio in paired)}"
    )
    return medians[1] / medians[0]


def _need_wrk_and_redis() -> str:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: `make bench-e2e` installs it (apt-get install wrk).")
    return os.environ["REDIS_URL"]


@contextmanager
def serving(sites: list[Site], workdir: Path) -> Iterator[None]:
    """Static files, each site's keys and wrk script, and its gunicorn, stopped afterwards."""
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=sites[0].env,
        check=True,
    )
    for site in sites:
        setup = subprocess.run(
            [sys.executable, "-m", "bench.sites.setup", str(KEYS)],
            cwd=ROOT,
            env=site.env,
            capture_output=True,
            text=True,
            check=True,
        )
        site.keys = setup.stdout.split()
    try:
        for site in sites:
            site.start()
        for site in sites:
            keys = ", ".join(f'"{key}"' for key in site.keys)
            (workdir / f"{site.slug}.lua").write_text(WRK_SCRIPT % (keys, *site.header))
        yield
    finally:
        for site in sites:
            site.stop()


def measure(
    site: Site,
    workdir: Path,
    seconds: float,
    connections: int,
    store_pid: int | None,
    database_pid: int | None,
    *,
    warmup: bool = False,
) -> None:
    """One round of ``site`` under wrk: its CPU per request, redis-server's and the database
    server's, kept on the site (a warm-up round is run and dropped)."""
    before, store_before = site.cpu_seconds(), _cpu_of(store_pid)
    database_before = _tree_cpu(database_pid)
    script = workdir / f"{site.slug}.lua"
    rps, requests, bad = wrk(site, seconds, script, connections, warmup=warmup)
    spent = site.cpu_seconds() - before
    store = _cpu_of(store_pid) - store_before
    database = _tree_cpu(database_pid) - database_before
    if warmup:
        return  # imports, connections, compiled lookups
    site.rps.append(rps)
    site.cpu_us.append(spent / max(requests, 1) * 1e6)
    site.store_us.append(store / max(requests, 1) * 1e6)
    site.database_us.append(database / max(requests, 1) * 1e6)
    site.errors += bad


def report(
    sites: list[Site], rounds: int, seconds: float, connections: int, *, database: bool = False
) -> dict[str, float]:
    total = [
        statistics.median(c + r for c, r in zip(site.cpu_us, site.store_us, strict=True))
        for site in sites
    ]
    ours, anchor, drf_floor, floor, *same = total
    rows = []
    for site, both in zip(sites, total, strict=True):
        rows.append(
            [
                site.name,
                f"{statistics.median(site.rps):.0f}",
                f"{statistics.median(site.cpu_us):.0f}",
                f"{statistics.median(site.store_us):.0f}",
                f"{both:.0f}",
                f"{min(site.cpu_us):.0f}–{max(site.cpu_us):.0f}",
                *([f"{statistics.median(site.database_us):.0f}"] if database else []),
                str(site.errors),
            ]
        )
    engine = "PostgreSQL" if "postgres" in os.environ.get("DATABASE_URL", "") else "SQLite"
    print(
        f"\nEnd to end: GET /v1/ping, gunicorn 3×8 gthread, wrk -c{connections}, {KEYS} keys, "
        f"{rounds} interleaved rounds × {seconds:g}s, {engine}, {_machine()}"
    )
    print_table(
        [
            "contender",
            "req/s",
            "server CPU µs/req",
            "redis-server µs/req",
            "server + store",
            "server range",
            *(["postgres µs/req"] if database else []),
            "non-2xx",
        ],
        rows,
    )
    ratios = {
        "anchor/ours": anchor / ours,
        "DRF floor/ours": drf_floor / ours,
        "floor/ours": floor / ours,
    }
    rps = [statistics.median(site.rps) for site in sites]
    print(
        "server + store CPU per request (medians), the others on Django's standard middleware: "
        f"anchor/ours {ratios['anchor/ours']:.2f} (goal ≥ 2.0: the stack teams run today, "
        f"on its own middleware), DRF floor/ours {ratios['DRF floor/ours']:.2f}, "
        f"plain floor/ours {ratios['floor/ours']:.2f}; "
        f"throughput: ours/DRF floor {rps[0] / rps[2]:.2f}, ours/anchor {rps[0] / rps[1]:.2f}"
    )
    if same:
        ratios["anchor/ours, same middleware"] = same[0] / ours
        ratios["DRF floor/ours, same middleware"] = same[1] / ours
        print(
            "with the demo's middleware on every contender: "
            f"DRF floor/ours {same[1] / ours:.2f} (goal ≥ 1.2: the floor has our middleware), "
            f"anchor/ours {same[0] / ours:.2f}; "
            f"throughput: ours/DRF floor {rps[0] / rps[5]:.2f}, ours/anchor {rps[0] / rps[4]:.2f}"
        )
        paired = _paired(sites[0], sites[5])
        print(
            "paired by round (each round's ratio, then their median; a slow spell moves both "
            f"sides of a round alike): DRF floor/ours {statistics.median(paired):.2f}, "
            f"anchor/ours {statistics.median(_paired(sites[0], sites[1])):.2f}; DRF floor/ours "
            f"by round: {' '.join(f'{ratio:.2f}' for ratio in paired)}"
        )
        ratios.update(_ceiling(ours, anchor, same[1], same[2], _paired(sites[6], sites[5])))
    else:
        print("the goal's DRF floor runs with the demo's middleware: add --same-middleware")
    if database:
        # The floors and the anchor query the database on every request, we do not: its
        # server's CPU is the machine's as much as redis-server's is.
        everything = [
            statistics.median(
                c + r + d
                for c, r, d in zip(site.cpu_us, site.store_us, site.database_us, strict=True)
            )
            for site in sites
        ]
        mine, anchor_all, drf_floor_all, floor_all, *same_all = everything
        line = (
            "counting PostgreSQL's own CPU too (server + store + database): "
            f"DRF floor/ours {drf_floor_all / mine:.2f}, anchor/ours {anchor_all / mine:.2f}, "
            f"plain floor/ours {floor_all / mine:.2f}"
        )
        if same_all:
            line += (
                f"; with the demo's middleware: DRF floor/ours {same_all[1] / mine:.2f}, "
                f"anchor/ours {same_all[0] / mine:.2f}"
            )
        print(line)
    if any(site.errors for site in sites):
        print("warning: some responses were not 2xx; the figures include them", file=sys.stderr)
    return ratios


def _ceiling(
    ours: float, anchor: float, drf_floor: float, no_query: float, paired: list[float]
) -> dict[str, float]:
    """Print how far the goals could go: each goal's contender over the no-query floor (the
    DRF floor without its query, checking nothing), and what the first goal leaves our work."""
    allowed = drf_floor / 1.2 - no_query
    print(
        "the ceiling, over the no-query floor on the demo's middleware: DRF floor/no-query "
        f"floor {drf_floor / no_query:.2f} (paired by round {statistics.median(paired):.2f}) "
        f"and anchor/no-query floor {anchor / no_query:.2f}, the most DRF floor/ours and "
        "anchor/ours could be if apiauth cost no more than a stack that queries nothing and "
        f"checks nothing; ours costs {ours - no_query:.0f} µs over that floor "
        f"({(ours - no_query) / no_query:.0%}), and DRF floor/ours ≥ 1.2 leaves "
        f"{allowed:.0f} µs ({allowed / no_query:.0%})"
    )
    return {
        "DRF floor/no-query floor": drf_floor / no_query,
        "anchor/no-query floor": anchor / no_query,
        "ours over the no-query floor": ours - no_query,
    }


def _paired(ours: Site, other: Site) -> list[float]:
    """other/ours, server + store CPU per request, round by round."""
    return [
        (c + r) / (mine + store)
        for c, r, mine, store in zip(
            other.cpu_us, other.store_us, ours.cpu_us, ours.store_us, strict=True
        )
    ]


def _redis_pid(url: str) -> int | None:
    """redis-server's pid, when it runs on this machine (else its CPU cannot be read)."""
    import redis

    pid = int(redis.Redis.from_url(url).info("server")["process_id"])
    return pid if _is_process(pid, "redis-server") else None


def _is_process(pid: int, name: str) -> bool:
    """Whether ``pid`` is ``name`` here: a server elsewhere, or in another PID namespace,
    reports a pid that is someone else's (or no one's) on this machine."""
    comm = Path(f"/proc/{pid}/comm")
    return comm.exists() and comm.read_text().strip() == name


def _postgres_pid(url: str) -> int | None:
    """The PostgreSQL server's postmaster, when ``url`` names one running on this machine (the
    data directory's ``postmaster.pid`` says which process it is); ``None`` otherwise."""
    if not url.startswith(("postgres://", "postgresql://")):
        return None
    try:
        import psycopg

        with psycopg.connect(url) as connection:
            row = connection.execute("SHOW data_directory").fetchone()
        directory = Path(str(row[0] if row else ""))
        pid = int((directory / "postmaster.pid").read_text().split()[0])
    except Exception as exc:  # another machine, a role without the setting: not counted
        print(f"  PostgreSQL's CPU is not counted: {exc}", file=sys.stderr)
        return None
    return pid if _is_process(pid, "postgres") else None


def _tree_cpu(pid: int | None) -> float:
    """CPU seconds of ``pid`` and its children (a postmaster's backends), with what its
    children that ended have handed on to it (``cutime``, ``cstime``)."""
    if pid is None:
        return 0.0
    ticks = 0
    for each in [pid, *_children(pid)]:
        try:
            ticks += sum(_stat_ticks(each))  # utime, stime, cutime, cstime
        except FileNotFoundError:  # ended since it was listed: its parent counts it now
            continue
    return ticks / CLOCK_TICKS


def _cpu_of(pid: int | None) -> float:
    """User + system CPU seconds of one process (its threads included); 0 for none."""
    if pid is None:
        return 0.0
    return sum(_stat_ticks(pid)[:2]) / CLOCK_TICKS


def _stat_ticks(pid: int) -> list[int]:
    """``utime``, ``stime``, ``cutime`` and ``cstime`` of ``pid``, in clock ticks (after the
    command name, which may hold spaces and parentheses)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return [int(value) for value in fields[11:15]]


def _machine() -> str:
    import platform

    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} × {cpu}, Python {platform.python_version()}"
