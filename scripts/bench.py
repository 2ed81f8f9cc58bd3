#!/usr/bin/env python3
"""Benchmark cht-dev on the stand-in stack against Docker Compose v1 and v2 and the engine floor
(all at once, and in `depends_on` order).

Prints medians of several alternating runs and their ratios to the targets; with
--write FILE, also writes them as Markdown (BENCHMARKS.md). Needs: a Docker engine,
docker-compose (v1), openssl, /usr/bin/time, the packages scripts/standin-images.sh uses,
and apt-get/dpkg-deb for compose v2 (scripts/compose-v2.sh fetches Debian trixie's, the
version the stand-in upgrade service carries, so the two composes agree on hashes).

  scripts/bench.sh [--runs N] [--write BENCHMARKS.md] [--engine docker28]
                   [--snapshot-gb N] [--snapshots-only]

Snapshots are measured on a generated data set (JSON lines, about 2x compressible; 1 GB by
default, --snapshot-gb for more) in a running stand-in stack: `snapshot create` and
`snapshot restore` against `tar -cf - | zstd -T0 -3` and `zstd -d | tar -x` run in the same
bench, the archive's size against zstd's, the services' downtime idle and with 1% of the
data appended during the first pass, and the peak RSS of `snapshot create`. With
--snapshots-only, only those (and --write fills only their block).

With --real, on the upstream-built images instead (scripts/upstream-images.sh: CouchDB 3.5.0
built from source, cht-core's nginx and HAProxy, an API stand-in that uses CouchDB): `up`
from nothing to HTTPS-ready for one CouchDB node and for three, against compose v2 `up -d`
plus the same readiness poll, and `snapshot create` and `restore` of about 1 GB of real
CouchDB documents (written with `_bulk_docs`; --snapshot-gb sets the JSON written) against
`tar | zstd -T0 -3` and `zstd -d | tar -x`, the services' pause and the peak RSS; --write
fills the real-CouchDB block.

With --engine NAME the whole benchmark runs on a second engine of scripts/engines.sh (started
if needed; needs root), inside its network namespace, and --write fills that engine's own
block of BENCHMARKS.md: `up`, and `up` of an unchanged running stack, each against compose v2
on the same engine.
"""
import argparse
import http.client
import json
import os
import platform
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "cht-dev")
REGISTRY = "cht-dev-test.local"
VERSION = "5.2.0"
NAME = "bench"
POLL = 0.025


def run(cmd, **kw):
    """Runs a command, failing loudly with its output."""
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    return r


def timed(cmd, **kw):
    """Seconds a command takes."""
    start = time.perf_counter()
    run(cmd, **kw)
    return time.perf_counter() - start


def free_port():
    s = socket.socket()
    s.bind(("0.0.0.0", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class UnixHTTP(http.client.HTTPConnection):
    """HTTP over the Docker engine's unix socket."""

    def __init__(self, path):
        super().__init__("localhost", timeout=120)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def engine(method, url, body=None):
    """One raw Engine API call."""
    sock = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock").replace("unix://", "")
    conn = UnixHTTP(sock)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, url, body=json.dumps(body) if body is not None else None, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    if resp.status >= 400 and resp.status != 404:
        sys.exit(f"engine {method} {url}: {resp.status} {data[:300]!r}")
    return json.loads(data) if data else None


def parallel(fns):
    """Runs callables on threads and waits for all."""
    threads = [threading.Thread(target=f) for f in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def wait_ready(http_port, https_port, ca, timeout=120):
    """The same readiness cht-dev waits for: HTTP 301, and HTTPS (verified against the
    home CA) reaching the API with a status other than 502/503/504."""
    ctx = ssl.create_default_context(cafile=ca)
    deadline = time.perf_counter() + timeout
    http_ok = https_ok = False
    while time.perf_counter() < deadline:
        try:
            if not http_ok:
                c = http.client.HTTPConnection("127.0.0.1", http_port, timeout=2)
                c.request("GET", "/", headers={"Host": "localhost"})
                http_ok = c.getresponse().status == 301
                c.close()
            if not https_ok:
                c = http.client.HTTPSConnection("localhost", https_port, timeout=2, context=ctx)
                c.request("GET", "/api/info")
                https_ok = c.getresponse().status not in (502, 503, 504)
                c.close()
        except (OSError, http.client.HTTPException):
            pass
        if http_ok and https_ok:
            return
        time.sleep(POLL)
    sys.exit("not ready in time")


def wait_boot(project, timeout=120):
    """Waits until the stand-in upgrade service has finished its boot-time compose run
    (found by label: compose v1 names it with underscores)."""
    deadline = time.perf_counter() + timeout
    label = f"label=com.docker.compose.project={project}-upgrade"
    while time.perf_counter() < deadline:
        ids = run(["docker", "ps", "-q", "--filter", label]).stdout.split()
        logs = "".join(subprocess.run(["docker", "logs", i], capture_output=True, text=True).stdout for i in ids)
        if "startup: done" in logs:
            return
        time.sleep(0.1)
    sys.exit("the upgrade service did not finish its boot in time")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--write", metavar="FILE")
    ap.add_argument("--engine", metavar="NAME", help="a second engine of scripts/engines.sh, e.g. docker28")
    ap.add_argument("--snapshot-gb", type=float, default=1.0, help="size of the snapshot data set")
    ap.add_argument("--snapshots-only", action="store_true", help="measure snapshots only")
    ap.add_argument("--real", action="store_true",
                    help="measure on the upstream-built images (real CouchDB; scripts/upstream-images.sh, as root)")
    args = ap.parse_args()
    engines = os.path.join(ROOT, "scripts", "engines.sh")
    for tool in ("docker", "docker-compose", "openssl", "/usr/bin/time", "zstd", "tar"):
        if not shutil.which(tool):
            sys.exit(f"missing {tool}")
    inside = os.environ.get("CHT_DEV_BENCH_ENGINE")
    v2 = run(["bash", os.path.join(ROOT, "scripts/compose-v2.sh"), "trixie"], cwd=ROOT).stdout.strip()
    if inside != args.engine or not args.engine:
        print("building the release binary and the stand-in images ...", flush=True)
        run(["cargo", "build", "--release", "-q"], cwd=ROOT)
        run(["bash", os.path.join(ROOT, "scripts/standin-images.sh"), REGISTRY, VERSION], cwd=ROOT,
            env=os.environ | {"CHT_DEV_STANDIN_COMPOSE": v2})
    if args.engine and inside != args.engine:
        # The images go over from the host's engine (Podman's builder cannot set the rlimits
        # of a build step here); then the benchmark runs again inside the engine's network
        # (its ports on localhost), talking to it.
        run(["bash", engines, "up", args.engine])
        images = run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"]).stdout.split()
        images = [i for i in images if i.startswith(REGISTRY + "/") or i.startswith("cht-dev-standin-")]
        save = subprocess.Popen(["docker", "save"] + images, stdout=subprocess.PIPE)
        subprocess.run(["bash", engines, "exec", args.engine, "docker", "load", "-q"], stdin=save.stdout,
                       check=True, stdout=subprocess.DEVNULL)
        save.stdout.close()
        if save.wait() != 0:
            sys.exit("docker save of the stand-in images failed")
        os.execvp("bash", ["bash", engines, "exec", args.engine, "env",
                           f"CHT_DEV_BENCH_ENGINE={args.engine}", sys.executable,
                           os.path.abspath(__file__)] + sys.argv[1:])
    if args.real:
        bench_real(args, v2)
        return
    if args.snapshots_only:
        snap = bench_snapshots(args)
        rows = snapshot_rows(snap)
        width = max(len(r[0]) for r in rows)
        for name, value, target in rows:
            print(f"{name:<{width}}  {value:>9}  {target}")
        if args.write:
            write_snapshot_block(args, snap)
        return
    composes = {"v1": ["docker-compose"], "v2": [v2]}

    home = tempfile.mkdtemp(prefix="cht-dev-bench-")
    http_port, https_port = free_port(), free_port()
    cht = [BIN, "--home", home, "-q"]
    run(cht + ["init", NAME, "--cht-version", VERSION, "--image-registry", REGISTRY,
               "--http-port", str(http_port), "--https-port", str(https_port)])
    pdir = os.path.join(home, NAME)
    ca = os.path.join(home, "ca", "ca.pem")
    def compose_core(cli):
        return composes[cli] + ["--env-file", ".env", "-p", NAME,
                                "-f", "compose/cht-core.yml", "-f", "compose/cht-couchdb.yml"]

    def compose_upgrade(cli):
        return composes[cli] + ["--env-file", ".env", "-p", f"{NAME}-upgrade", "-f", "upgrade-service.yml"]

    # One cht-dev up to place the certificate in the volume and learn the containers'
    # exact configuration for the floor.
    run(cht + ["up", NAME, "--pull", "never"])
    ids = run(["docker", "ps", "-aq", "--filter", f"label=org.cht-dev.project={NAME}"]).stdout.split()
    specs = []
    service_of = {}
    network = f"{NAME}-cht-net"
    for cid in ids:
        info = json.loads(run(["docker", "inspect", cid]).stdout)[0]
        cfg, hc = info["Config"], info["HostConfig"]
        keys = ("Binds", "Mounts", "PortBindings", "RestartPolicy", "LogConfig", "Memory")
        body = {
            "Image": cfg["Image"], "Env": cfg["Env"],
            "ExposedPorts": cfg.get("ExposedPorts"), "Entrypoint": cfg.get("Entrypoint"), "Cmd": cfg.get("Cmd"),
        }
        if (hc.get("NetworkMode") or "").startswith("container:"):
            # Podman's nginx-dns and haproxy-dns, in nginx's and HAProxy's network namespaces:
            # made once those are.
            owner = json.loads(run(["docker", "inspect", hc["NetworkMode"].split(":", 1)[1]]).stdout)[0]
            owner = owner["Name"].lstrip("/").replace(NAME, "floor", 1)
            body["HostConfig"] = {k: hc.get(k) for k in keys} | {"NetworkMode": f"container:{owner}"}
        else:
            aliases = info["NetworkSettings"]["Networks"][network].get("Aliases") or []
            body["Hostname"] = cfg.get("Hostname")
            body["HostConfig"] = {k: hc.get(k) for k in keys} | {"NetworkMode": network}
            body["NetworkingConfig"] = {"EndpointsConfig": {network: {
                "Aliases": [a for a in aliases if len(a) < 12 or not re.fullmatch("[0-9a-f]+", a)]}}}
        if "upgrade" in info["Name"]:
            # The floor's upgrade service only serves: its boot-time compose run would
            # make a second stack beside the floor's containers.
            body["Entrypoint"] = ["/bin/sh", "-c", "httpd -f -p 5008 -h /www"]
        specs.append((info["Name"].lstrip("/").replace(NAME, "floor", 1), body))
        service_of[specs[-1][0]] = cfg["Labels"].get("com.docker.compose.service", "")
    # What each service's `depends_on` names, as compose reads the files (for the floor in
    # dependency order).
    config = json.loads(run(compose_core("v2") + ["config", "--format", "json"], cwd=pdir).stdout)
    depends = {svc: sorted((s.get("depends_on") or {}).keys()) for svc, s in config["services"].items()}
    wait_boot(NAME)
    run(cht + ["down", NAME])

    results = {k: [] for k in ("cht_up", "v1_up", "v2_up", "floor_up", "cht_down", "v1_down", "v2_down",
                               "status", "rss_kb", "cht_again", "v2_again", "v2_ps", "cht_cold", "floor_down",
                               "floor_deps_up")}
    cache = os.path.join(pdir, "cache", "compose-hashes.json")

    def cycle_cht():
        cmd = ["/usr/bin/time", "-f", "RSS %M"] + cht + ["up", NAME, "--pull", "never"]
        start = time.perf_counter()
        r = run(cmd)
        results["cht_up"].append(time.perf_counter() - start)
        results["rss_kb"].append(int(re.search(r"RSS (\d+)", r.stderr).group(1)))
        # Not timed: the upgrade service's boot-time compose run, in the background. The
        # status and second-up figures are taken after it, as compose's `ps` and `up -d` are.
        wait_boot(NAME)
        for _ in range(3):
            results["status"].append(timed(cht + ["status", NAME]))
        for _ in range(3):
            results["cht_again"].append(timed(cht + ["up", NAME, "--pull", "never"]))
        results["cht_down"].append(timed(cht + ["down", NAME]))

    def cycle_cold():
        # The first `up` of a new project: compose's hashes not learned yet (the one-off
        # container of the upgrade service's image runs on the critical path).
        if os.path.exists(cache):
            os.remove(cache)
        results["cht_cold"].append(timed(cht + ["up", NAME, "--pull", "never"]))
        wait_boot(NAME)
        run(cht + ["down", NAME])

    def cycle_compose(cli):
        start = time.perf_counter()
        run(compose_core(cli) + ["up", "-d"], cwd=pdir)
        run(compose_upgrade(cli) + ["up", "-d"], cwd=pdir)
        wait_ready(http_port, https_port, ca)
        results[f"{cli}_up"].append(time.perf_counter() - start)
        wait_boot(NAME)
        if cli == "v2":
            for _ in range(3):
                start = time.perf_counter()
                run(compose_core(cli) + ["up", "-d"], cwd=pdir)
                run(compose_upgrade(cli) + ["up", "-d"], cwd=pdir)
                results["v2_again"].append(time.perf_counter() - start)
                results["v2_ps"].append(timed(compose_core(cli) + ["ps"], cwd=pdir))
        start = time.perf_counter()
        # The upgrade service shares the network: remove its container first (its own
        # `down` would try to remove the network still in use), then the CHT project.
        run(compose_upgrade(cli) + ["rm", "-s", "-f"], cwd=pdir)
        run(compose_core(cli) + ["down"], cwd=pdir)
        results[f"{cli}_down"].append(time.perf_counter() - start)

    # The containers that join another's network (nginx-dns and haproxy-dns on Podman): made
    # after the rest.
    joiners = [(n, b) for n, b in specs if b["HostConfig"]["NetworkMode"].startswith("container:")]
    joined = {n for n, _ in joiners}

    def remove_all(created, take):
        # The containers on another's network first (as their owner must outlive them),
        # then the rest, each group at once; then the network.
        parallel([lambda n=n, i=i: take(n, i) for n, i in created.items() if n in joined])
        parallel([lambda n=n, i=i: take(n, i) for n, i in created.items() if n not in joined])
        engine("DELETE", f"/networks/{network}")

    def cycle_floor():
        start = time.perf_counter()
        engine("POST", "/networks/create", {"Name": network, "Driver": "bridge"})
        created = {}
        def create(name, body):
            created[name] = engine("POST", f"/containers/create?name={name}", body)["Id"]
        parallel([lambda n=n, b=b: create(n, b) for n, b in specs if (n, b) not in joiners])
        parallel([lambda i=i: engine("POST", f"/containers/{i}/start") for i in created.values()])
        for n, b in joiners:
            create(n, b)
            engine("POST", f"/containers/{created[n]}/start")
        wait_ready(http_port, https_port, ca)
        results["floor_up"].append(time.perf_counter() - start)
        time.sleep(1)
        # The floor of a graceful down: every CHT container stopped (SIGTERM, 10 s grace) and
        # removed, and the upgrade service killed and removed (as cht-dev does: its httpd
        # ignores SIGTERM as PID 1), all at once; then the network.
        start = time.perf_counter()
        def take_down(name, cid):
            if "upgrade" not in name:
                engine("POST", f"/containers/{cid}/stop?t=10")
            engine("DELETE", f"/containers/{cid}?force=true")
        remove_all(created, take_down)
        results["floor_down"].append(time.perf_counter() - start)

    def cycle_floor_in_order():
        # The floor with compose's start order: each container made at once, and started as
        # soon as it is made and the services its `depends_on` names have started (what
        # `depends_on` allows any client); nothing else waits.
        start = time.perf_counter()
        engine("POST", "/networks/create", {"Name": network, "Driver": "bridge"})
        created = {}
        started = {svc: threading.Event() for svc in service_of.values()}
        def bring(name, body):
            created[name] = engine("POST", f"/containers/create?name={name}", body)["Id"]
            for dep in depends.get(service_of[name], []):
                if dep in started:
                    started[dep].wait()
            engine("POST", f"/containers/{created[name]}/start")
            started[service_of[name]].set()
        parallel([lambda n=n, b=b: bring(n, b) for n, b in specs if (n, b) not in joiners])
        for n, b in joiners:
            bring(n, b)
        wait_ready(http_port, https_port, ca)
        results["floor_deps_up"].append(time.perf_counter() - start)
        time.sleep(1)
        remove_all(created, lambda _, cid: engine("DELETE", f"/containers/{cid}?force=true"))

    cycles = [cycle_cht, lambda: cycle_compose("v1"), lambda: cycle_compose("v2"), cycle_floor, cycle_cold,
              cycle_floor_in_order]
    if args.engine == "podman":
        # Compose v1 looks up nginx-dns's network container before making any: it cannot
        # start the Podman files from nothing (v2 can). Its rows read nan.
        del cycles[1]
    for i in range(args.runs):
        print(f"run {i + 1}/{args.runs} ...", flush=True)
        k = i % len(cycles)
        for c in cycles[k:] + cycles[:k]:
            c()

    # One timeline of each: every engine call of `up` from nothing and of `down`.
    up_timeline = run(cht + ["--timings", "up", NAME, "--pull", "never"]).stderr
    wait_boot(NAME)
    down_timeline = run(cht + ["--timings", "down", NAME]).stderr
    print("\n" + up_timeline + "\n" + down_timeline)

    # init vs openssl's RSA-4096 self-signed certificate (what cht-nginx makes on first start).
    init_times, openssl_times = [], []
    for i in range(args.runs):
        h = tempfile.mkdtemp(prefix="cht-dev-bench-init-")
        init_times.append(timed([BIN, "--home", h, "-q", "init", "x"]))
        shutil.rmtree(h)
        d = tempfile.mkdtemp(prefix="cht-dev-bench-openssl-")
        openssl_times.append(timed(["openssl", "req", "-x509", "-newkey", "rsa:4096", "-nodes", "-keyout",
                                    os.path.join(d, "k.pem"), "-out", os.path.join(d, "c.pem"), "-days", "365",
                                    "-subj", "/CN=localhost"]))
        shutil.rmtree(d)
    run(cht + ["destroy", NAME, "--yes"])
    shutil.rmtree(home, ignore_errors=True)
    snap = bench_snapshots(args)

    med = {k: statistics.median(v) if v else float("nan") for k, v in results.items()}
    spread = {k: (min(v), max(v)) if v else (float("nan"),) * 2 for k, v in results.items()}
    init_med, openssl_med = statistics.median(init_times), statistics.median(openssl_times)
    ratio = lambda a, b: f"{med[a] / med[b]:.2f}x"
    rows = [
        ("`cht-dev up` (nothing to HTTPS-ready)", f"{med['cht_up']:.2f} s", ""),
        ("compose v2 `up -d` + same readiness poll", f"{med['v2_up']:.2f} s", ""),
        ("compose v1 `up -d` + same readiness poll", f"{med['v1_up']:.2f} s", ""),
        ("engine floor (raw API, parallel) + same poll", f"{med['floor_up']:.2f} s", ""),
        ("up / floor", ratio("cht_up", "floor_up") + floor_spread("cht_up", "floor_up", spread), "<= 1.05x"),
        ("engine floor in `depends_on` order (raw API) + same poll", f"{med['floor_deps_up']:.2f} s", ""),
        ("up / floor in `depends_on` order (information)",
         ratio("cht_up", "floor_deps_up") + floor_spread("cht_up", "floor_deps_up", spread), ""),
        ("up / compose v2 (information)", ratio("cht_up", "v2_up"), ""),
        ("up / compose v1 (information)", ratio("cht_up", "v1_up"), ""),
        ("first `up` of a project (hashes not yet learned)", f"{med['cht_cold']:.2f} s", ""),
        ("first up / compose v2 (information)", ratio("cht_cold", "v2_up"), ""),
        ("`cht-dev down`", f"{med['cht_down']:.2f} s", ""),
        ("compose v2 `down`", f"{med['v2_down']:.2f} s", ""),
        ("compose v1 `down`", f"{med['v1_down']:.2f} s", ""),
        ("down / compose v2 down (information)", ratio("cht_down", "v2_down"), ""),
        ("down / compose v1 down (information)", ratio("cht_down", "v1_down"), ""),
        ("engine floor of a graceful down (raw API, parallel)", f"{med['floor_down']:.2f} s", ""),
        ("down / floor", ratio("cht_down", "floor_down") + floor_spread("cht_down", "floor_down", spread),
         "<= 1.05x"),
        ("`cht-dev up` on a running, unchanged stack", f"{med['cht_again'] * 1000:.0f} ms", ""),
        ("compose v2 `up -d` on it (CHT, then upgrade service)", f"{med['v2_again'] * 1000:.0f} ms", ""),
        ("up again / compose v2", ratio("cht_again", "v2_again"), "<= 0.25x"),
        ("`cht-dev status` (running stack)", f"{med['status'] * 1000:.0f} ms", ""),
        ("compose v2 `ps`", f"{med['v2_ps'] * 1000:.0f} ms", ""),
        ("status / compose v2 ps", ratio("status", "v2_ps"), "<= 0.25x"),
        ("`cht-dev init` (CA, leaf, files)", f"{init_med * 1000:.0f} ms", ""),
        ("`openssl req -x509 -newkey rsa:4096`", f"{openssl_med * 1000:.0f} ms", ""),
        ("openssl / init", f"{openssl_med / init_med:.0f}x", ">= 50x"),
        ("peak RSS of `up`", f"{med['rss_kb'] / 1024:.1f} MB", "<= 30 MB"),
    ]
    rows += snapshot_rows(snap)
    width = max(len(r[0]) for r in rows)
    print()
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>9}  {target}")
    if args.write and args.engine:
        write_engine_block(args, med, ratio, v2)
    elif args.write:
        docker_v = run(["docker", "version", "--format", "{{.Server.Version}} (API {{.Server.APIVersion}})"]).stdout.strip()
        compose_v = run(["docker-compose", "version", "--short"]).stdout.strip()
        compose_v2 = run([v2, "version", "--short"]).stdout.strip()
        table = [
            "<!-- bench:start (written by scripts/bench.py; edit outside these markers) -->",
            f"Measured by `scripts/bench.sh --runs {args.runs} --write BENCHMARKS.md` on "
            f"{time.strftime('%Y-%m-%d')}: {os.cpu_count()} cores, {platform.machine()}, "
            f"Docker Engine {docker_v}, compose v1 {compose_v}, compose v2 {compose_v2} (also inside "
            f"the stand-in upgrade service, which runs it at boot), stand-in images "
            f"(`scripts/standin-images.sh`), medians of {args.runs} alternating runs.",
            "",
            "| measure | median | target |",
            "|---|---:|---|",
        ]
        table += [f"| {cell(name)} | {value} | {target} |" for name, value, target in rows]
        table += ["", "One `cht-dev --timings up` from nothing and one `--timings down` of the same run "
                  "(start, end and duration in ms; steps of `up` enclose the engine calls they make):",
                  "", "```", up_timeline.strip(), "```", "", "```", down_timeline.strip(), "```"]
        table.append("<!-- bench:end -->")
        block = "\n".join(table)
        try:
            with open(args.write) as f:
                text = f.read()
        except FileNotFoundError:
            text = "# Benchmarks\n\n<!-- bench:start --><!-- bench:end -->\n"
        text = re.sub(r"<!-- bench:start.*?<!-- bench:end -->", lambda _: block, text, flags=re.S)
        with open(args.write, "w") as f:
            f.write(text)
        print(f"\nwrote {args.write}")

REAL_REGISTRY = "cht-dev-upstream.local"


def couch_request(https_port, ca, auth, method, path, body=None):
    """One request to CouchDB through nginx, the API and HAProxy; returns (status, body)."""
    ctx = ssl.create_default_context(cafile=ca)
    c = http.client.HTTPSConnection("localhost", https_port, timeout=600, context=ctx)
    headers = {"Authorization": "Basic " + auth, "Content-Type": "application/json"}
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def bulk_load(https_port, ca, auth, gb):
    """Writes about `gb` GB of JSON documents into `medic` with `_bulk_docs`, 10,000 at a
    time: CHT-like reports, each with its own ids and values (about 2x compressible)."""
    target = int(gb * (1 << 30))
    written, n = 0, 0
    words = ["pregnancy", "visit", "household", "immunization", "delivery", "referral", "assessment"]
    while written < target:
        docs = []
        for _ in range(10000):
            n += 1
            uid = os.urandom(16).hex()
            docs.append({"_id": f"report-{n:09d}", "type": "data_record", "form": words[n % len(words)],
                         "contact": {"_id": uid, "parent": {"_id": os.urandom(8).hex()}},
                         "reported_date": 1_700_000_000_000 + n * 997,
                         "fields": {"notes": f"{words[n % 5]} {words[n % 3]} follow-up {n % 97} " * 6,
                                    "patient_id": uid[:12], "score": n % 1000, "token": os.urandom(24).hex()}})
        body = json.dumps({"docs": docs})
        status, answer = couch_request(https_port, ca, auth, "POST", "/medic/_bulk_docs", body)
        if status != 201:
            sys.exit(f"_bulk_docs answered {status}: {answer[:300]!r}")
        written += len(body)
    return n


def bench_real(args, v2):
    """The upstream-built images' rows: `up` for one node and three, and snapshots of real
    CouchDB documents."""
    import base64
    print("building the release binary and the upstream-built images ...", flush=True)
    run(["cargo", "build", "--release", "-q"], cwd=ROOT)
    run(["bash", os.path.join(ROOT, "scripts/upstream-images.sh"), REAL_REGISTRY, VERSION], cwd=ROOT)
    results = {}
    for nodes in (1, 3):
        home = tempfile.mkdtemp(prefix="cht-dev-bench-real-")
        name = f"real{nodes}"
        http_port, https_port = free_port(), free_port()
        cht = [BIN, "--home", home, "-q"]
        run(cht + ["init", name, "--cht-version", VERSION, "--image-registry", REAL_REGISTRY,
                   "--couchdb-nodes", str(nodes), "--http-port", str(http_port), "--https-port", str(https_port)])
        pdir = os.path.join(home, name)
        ca = os.path.join(home, "ca", "ca.pem")
        couch_file = "compose/cht-couchdb.yml" if nodes == 1 else "compose/cht-couchdb-clustered.yml"
        core = [v2, "--env-file", ".env", "-p", name, "-f", "compose/cht-core.yml", "-f", couch_file]
        upgrade = [v2, "--env-file", ".env", "-p", f"{name}-upgrade", "-f", "upgrade-service.yml"]
        # The first `up` makes the data and the cluster; every measured start finds them.
        run(cht + ["up", name, "--pull", "never", "--timeout", "300"])
        wait_boot(name)
        run(cht + ["down", name])
        times = {"cht": [], "v2": []}
        for i in range(args.runs):
            print(f"real {nodes}-node run {i + 1}/{args.runs} ...", flush=True)
            for who in (("cht", "v2") if i % 2 == 0 else ("v2", "cht")):
                if who == "cht":
                    times["cht"].append(timed(cht + ["up", name, "--pull", "never", "--timeout", "300"]))
                    wait_boot(name)
                    run(cht + ["down", name])
                else:
                    start = time.perf_counter()
                    run(core + ["up", "-d"], cwd=pdir)
                    run(upgrade + ["up", "-d"], cwd=pdir)
                    wait_ready(http_port, https_port, ca, timeout=300)
                    times["v2"].append(time.perf_counter() - start)
                    wait_boot(name)
                    run(upgrade + ["rm", "-s", "-f"], cwd=pdir)
                    run(core + ["down"], cwd=pdir)
        results[nodes] = {k: statistics.median(v) for k, v in times.items()}
        run(cht + ["destroy", name, "--yes"])
        shutil.rmtree(home, ignore_errors=True)

    # Snapshots of real documents.
    home = tempfile.mkdtemp(prefix="cht-dev-bench-realsnap-", dir=os.environ.get("CHT_DEV_BENCH_TMP"))
    name = "realsnap"
    http_port, https_port = free_port(), free_port()
    cht = [BIN, "--home", home, "-q"]
    run(cht + ["init", name, "--cht-version", VERSION, "--image-registry", REAL_REGISTRY,
               "--http-port", str(http_port), "--https-port", str(https_port)])
    run(cht + ["up", name, "--pull", "never"])
    env = dict(line.split("=", 1) for line in open(os.path.join(home, name, ".env")).read().splitlines()
               if "=" in line and not line.startswith("#"))
    auth = base64.b64encode(f"{env['COUCHDB_USER']}:{env['COUCHDB_PASSWORD']}".encode()).decode()
    ca = os.path.join(home, "ca", "ca.pem")
    print(f"writing {args.snapshot_gb:g} GB of documents with _bulk_docs ...", flush=True)
    start = time.perf_counter()
    docs = bulk_load(https_port, ca, auth, args.snapshot_gb)
    load_s = time.perf_counter() - start
    res = measure_snapshots(args.runs, home, name, os.path.join(home, name, "couchdb"))
    status, info = couch_request(https_port, ca, auth, "GET", "/medic")
    count = json.loads(info)["doc_count"] if status == 200 else -1
    if count != docs:
        sys.exit(f"after the restores, medic holds {count} documents, not the {docs} written")
    run(cht + ["destroy", name, "--yes"])
    shutil.rmtree(home, ignore_errors=True)
    snap = {k: statistics.median(v) for k, v in res.items()}

    rows = [
        ("`cht-dev up`, one CouchDB node (nothing to HTTPS-ready)", f"{results[1]['cht']:.2f} s", ""),
        ("compose v2 `up -d` + same readiness poll, one node", f"{results[1]['v2']:.2f} s", ""),
        ("up / compose v2, one node", f"{results[1]['cht'] / results[1]['v2']:.2f}x", "<= 1.0x"),
        ("`cht-dev up`, three CouchDB nodes", f"{results[3]['cht']:.2f} s", ""),
        ("compose v2 `up -d` + same readiness poll, three nodes", f"{results[3]['v2']:.2f} s", ""),
        ("up / compose v2, three nodes", f"{results[3]['cht'] / results[3]['v2']:.2f}x", "<= 1.0x"),
    ]
    rows += snapshot_rows(snap | {"gb": args.snapshot_gb},
                          f"{docs:,} documents, {snap['data'] / 1e9:.2f} GB of CouchDB files, stack running")
    width = max(len(r[0]) for r in rows)
    print()
    for row_name, value, target in rows:
        print(f"{row_name:<{width}}  {value:>9}  {target}")
    print(f"(writing the documents through HTTPS took {load_s:.0f} s)")
    if args.write:
        docker_v = run(["docker", "version", "--format", "{{.Server.Version}} (API {{.Server.APIVersion}})"]).stdout.strip()
        compose_v2 = run([v2, "version", "--short"]).stdout.strip()
        start_m, end_m = "<!-- bench:real:start", "<!-- bench:real:end -->"
        lines = [
            f"{start_m} (written by scripts/bench.py --real; edit outside these markers) -->",
            f"On the upstream-built images (`scripts/upstream-images.sh`: Apache CouchDB 3.5.0 built from "
            f"source, cht-core {VERSION}'s nginx and HAProxy, the API stand-in that uses CouchDB), measured by "
            f"`scripts/bench.sh --real --runs {args.runs} --write BENCHMARKS.md` on {time.strftime('%Y-%m-%d')}: "
            f"{os.cpu_count()} cores, Docker Engine {docker_v}, compose v2 {compose_v2}, medians of {args.runs} "
            f"alternating runs. Readiness is HTTPS reaching the API, which answers only once CouchDB does.",
            "",
            "| measure | median | target |",
            "|---|---:|---|",
        ] + [f"| {cell(n)} | {v} | {t} |" for n, v, t in rows] + [end_m]
        replace_block(args.write, start_m, end_m, "\n".join(lines))
        print(f"\nwrote the real-CouchDB block of {args.write}")


def floor_spread(a, b, spread):
    """The range of a ratio over the runs: fastest against slowest and the reverse."""
    (a_lo, a_hi), (b_lo, b_hi) = spread[a], spread[b]
    return f" ({a_lo / b_hi:.2f}-{a_hi / b_lo:.2f})"


def json_lines(size):
    """About `size` bytes of CouchDB-like JSON lines, about 2x compressible by zstd."""
    out, n = [], 0
    while n < size:
        token = os.urandom(24).hex()
        line = ('{"_id":"%s","_rev":"1-%s","type":"data_record","form":"pregnancy_home_visit",'
                '"fields":{"patient_id":"%s","visit":%d,"danger_signs":"none"}}\n'
                % (token[:32], token[16:], token[8:40], n % 97))
        out.append(line)
        n += len(line)
    return "".join(out).encode()


def make_data_set(data_dir, gb):
    """Fills the data folder with `gb` GB of JSON lines in 256 MB `.couch` files."""
    shards = os.path.join(data_dir, "shards", "00-7f")
    os.makedirs(shards, exist_ok=True)
    block = json_lines(64 << 20)
    total, n = int(gb * (1 << 30)), 0
    while total > 0:
        with open(os.path.join(shards, f"medic-{n:03d}.couch"), "wb") as f:
            for _ in range(min(4, -(-total // len(block)))):
                # Each block a little different, so that no two repeat within zstd's window.
                f.write(os.urandom(16).hex().encode() + b"\n" + block)
                total -= len(block)
        n += 1


def measure_snapshots(runs, home, name, data):
    """`runs` rounds on project `name` (running) of home `home`, whose CouchDB data is in
    `data`: `tar | zstd -T0 -3` of the data and `snapshot create` (time, peak RSS, archive
    size, the services' pause), `zstd -d | tar -x` of the reference archive, and `snapshot
    restore` with the stack down. Returns each measure's list."""
    cht = [BIN, "--home", home, "-q"]
    res = {k: [] for k in ("create", "create_rss", "restore", "tar_zstd", "unzstd", "bytes", "zstd_bytes",
                           "down_ms", "data")}
    out = os.path.join(home, "ref")
    os.makedirs(out, exist_ok=True)
    for i in range(runs):
        print(f"snapshot run {i + 1}/{runs} ...", flush=True)
        ref = os.path.join(out, "ref.tar.zst")
        start = time.perf_counter()
        run(["bash", "-c", f"tar -cf - -C {data} . | zstd -q -T0 -3 -o {ref}"])
        res["tar_zstd"].append(time.perf_counter() - start)
        res["zstd_bytes"].append(os.path.getsize(ref))
        label = f"run{i}"
        start = time.perf_counter()
        r = run(["/usr/bin/time", "-f", "RSS %M"] + [BIN, "--home", home, "--json", "snapshot", "create",
                                                     name, "--label", label])
        res["create"].append(time.perf_counter() - start)
        res["create_rss"].append(int(re.search(r"RSS (\d+)", r.stderr).group(1)))
        made = json.loads(r.stdout)
        res["bytes"].append(made["bytes"])
        res["data"].append(made["data_bytes"])
        res["down_ms"].append(made["stopped_ms"] or 0)
        into = os.path.join(out, "x")
        os.makedirs(into)
        start = time.perf_counter()
        run(["bash", "-c", f"zstd -q -d -c {ref} | tar -xf - -C {into}"])
        res["unzstd"].append(time.perf_counter() - start)
        shutil.rmtree(into)
        os.remove(ref)
        # Restore with the stack down: the unpacking and the swap, not the services' start.
        run(cht + ["down", name])
        res["restore"].append(timed(cht + ["snapshot", "restore", name, label, "--yes"]))
        run(cht + ["up", name, "--pull", "never"])
        run(cht + ["snapshot", "rm", name, label])
    return res


def bench_snapshots(args):
    """Times snapshot create and restore against tar and zstd on a generated data set."""
    runs = args.runs
    home = tempfile.mkdtemp(prefix="cht-dev-bench-snap-", dir=os.environ.get("CHT_DEV_BENCH_TMP"))
    http_port, https_port = free_port(), free_port()
    cht = [BIN, "--home", home, "-q"]
    name = "snapbench"
    run(cht + ["init", name, "--cht-version", VERSION, "--image-registry", REGISTRY,
               "--http-port", str(http_port), "--https-port", str(https_port)])
    data = os.path.join(home, name, "couchdb")
    print(f"generating {args.snapshot_gb:g} GB of JSON lines ...", flush=True)
    make_data_set(data, args.snapshot_gb)
    run(cht + ["up", name, "--pull", "never"])
    res = measure_snapshots(runs, home, name, data)
    res["busy_down_ms"] = []
    # Downtime while 1% of the data is appended during the first pass.
    for i in range(runs):
        target = int(args.snapshot_gb * (1 << 30) / 100)
        files = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(data) for f in fs if f.endswith(".couch"))
        stop = threading.Event()
        chunk = json_lines(1 << 20)
        # Spread over the first pass (about the idle create's time, less stopping and
        # starting): 1 MB at a time, to the data's files in turn.
        pause = statistics.median(res["create"]) * 0.6 / max(1, target // len(chunk))
        def append():
            written, k = 0, 0
            while written < target and not stop.is_set():
                with open(files[k % len(files)], "ab") as f:
                    f.write(chunk)
                written += len(chunk)
                k += 1
                time.sleep(pause)
        appender = threading.Thread(target=append)
        appender.start()
        r = run([BIN, "--home", home, "--json", "snapshot", "create", name, "--label", f"busy{i}"])
        stop.set()
        appender.join()
        res["busy_down_ms"].append(json.loads(r.stdout)["stopped_ms"] or 0)
        run(cht + ["snapshot", "rm", name, f"busy{i}"])
    run(cht + ["destroy", name, "--yes"])
    shutil.rmtree(home, ignore_errors=True)
    return {k: statistics.median(v) for k, v in res.items()} | {"gb": args.snapshot_gb, "runs": runs}


def snapshot_rows(snap, what=None):
    """The snapshot measures as (name, value, target) rows; `what` names the data (by
    default, the generated JSON lines' size). The busy row only where it was measured."""
    gb = f"{snap['gb']:g} GB"
    what = what or f"{gb} of JSON lines, stack running"
    target_down = "<= 1 s" if snap["gb"] <= 1 else "<= 2 s" if snap["gb"] <= 10 else ""
    rows = [
        (f"`cht-dev snapshot create` ({what})", f"{snap['create']:.2f} s", ""),
        ("`tar -cf - | zstd -T0 -3` of the same data", f"{snap['tar_zstd']:.2f} s", ""),
        ("snapshot create / tar | zstd -3", f"{snap['create'] / snap['tar_zstd']:.2f}x", "<= 1.0x"),
        ("archive size / zstd -3's", f"{snap['bytes'] / snap['zstd_bytes']:.3f}x", "<= 1.05x"),
        ("`cht-dev snapshot restore` (stack down)", f"{snap['restore']:.2f} s", ""),
        ("`zstd -d | tar -x` of the same archive", f"{snap['unzstd']:.2f} s", ""),
        ("snapshot restore / zstd -d | tar -x", f"{snap['restore'] / snap['unzstd']:.2f}x", "<= 1.2x"),
        ("services paused during create, idle", f"{snap['down_ms']:.0f} ms", target_down),
    ]
    if "busy_down_ms" in snap:
        rows.append(("services paused, 1% of the data appended during the first pass",
                     f"{snap['busy_down_ms']:.0f} ms", target_down))
    rows.append(("peak RSS of `snapshot create`", f"{snap['create_rss'] / 1024:.1f} MB", "<= 64 MB"))
    return rows


def replace_block(path, start, end, block):
    """Puts `block` between the markers `start` and `end` of the file, or at its end."""
    with open(path) as f:
        text = f.read()
    pattern = re.escape(start) + r".*?" + re.escape(end)
    if re.search(pattern, text, flags=re.S):
        text = re.sub(pattern, lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)


def cell(text):
    """Text for a Markdown table cell: its pipes escaped."""
    return text.replace("|", "\\|")


def write_snapshot_block(args, snap):
    """Writes (or replaces) the snapshot block for this data size in the benchmark file."""
    key = f"snapshots-{snap['gb']:g}gb"
    start, end = f"<!-- bench:{key}:start", f"<!-- bench:{key}:end -->"
    lines = [
        f"{start} (written by scripts/bench.py --snapshots-only; edit outside these markers) -->",
        f"Snapshots of {snap['gb']:g} GB, measured by `scripts/bench.sh --runs {snap['runs']} --snapshots-only "
        f"--snapshot-gb {snap['gb']:g} --write BENCHMARKS.md` on {time.strftime('%Y-%m-%d')}: "
        f"{os.cpu_count()} cores, " + (f"medians of {snap['runs']} runs." if snap["runs"] > 1 else "one run."),
        "",
        "| measure | median | target |",
        "|---|---:|---|",
    ] + [f"| {cell(n)} | {v} | {t} |" for n, v, t in snapshot_rows(snap)] + [end]
    replace_block(args.write, start, end, "\n".join(lines))
    print(f"\nwrote the {key} block of {args.write}")


def write_engine_block(args, med, ratio, v2):
    """Writes (or replaces) the engine's own block of the benchmark file."""
    docker_v = run(["docker", "version", "--format", "{{.Server.Version}} (API {{.Server.APIVersion}})"]).stdout.strip()
    components = run(["docker", "version", "--format", "{{range .Server.Components}}{{.Name}};{{end}}"]).stdout
    product = "Podman" if "Podman Engine" in components else "Docker Engine"
    compose_v2 = run([v2, "version", "--short"]).stdout.strip()
    start, end = f"<!-- bench:{args.engine}:start", f"<!-- bench:{args.engine}:end -->"
    rows = [
        ("`cht-dev up` (nothing to HTTPS-ready)", f"{med['cht_up']:.2f} s"),
        ("compose v2 `up -d` + same readiness poll", f"{med['v2_up']:.2f} s"),
        ("up / compose v2", ratio("cht_up", "v2_up")),
        ("`cht-dev up` on a running, unchanged stack", f"{med['cht_again'] * 1000:.0f} ms"),
        ("compose v2 `up -d` on it (CHT, then upgrade service)", f"{med['v2_again'] * 1000:.0f} ms"),
        ("up again / compose v2", ratio("cht_again", "v2_again")),
    ]
    lines = [
        f"{start} (written by scripts/bench.py --engine {args.engine}; edit outside these markers) -->",
        f"On `{args.engine}` (`scripts/engines.sh`): {product} {docker_v} in its own namespaces, "
        f"compose v2 {compose_v2}, measured by `scripts/bench.sh --runs {args.runs} --engine {args.engine} "
        f"--write BENCHMARKS.md` on {time.strftime('%Y-%m-%d')}, medians of {args.runs} alternating runs.",
        "",
        "| measure | median |",
        "|---|---:|",
    ] + [f"| {name} | {value} |" for name, value in rows] + [end]
    replace_block(args.write, start, end, "\n".join(lines))
    print(f"\nwrote the {args.engine} block of {args.write}")


if __name__ == "__main__":
    main()
