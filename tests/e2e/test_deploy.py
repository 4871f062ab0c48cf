"""docker/: the Dockerfile and the Kubernetes / KServe manifests.

The image is built and run only when a Docker daemon answers (`docker info`;
test_image_builds_and_serves, skipped otherwise: `make test` never starts one; see
docker/build-local-base.sh for a machine without Docker Hub). It reuses an image built from
the same sources (tag modeld-e2e:<digest>). No cluster: everything else is checked
statically: every manifest parses as YAML and
names its kind; probe paths exist in the route table and probe ports in the config the
pod runs with; shutdown timings nest (drain < grace period); the Dockerfile's build step
is the command README.md documents and its runtime stage installs exactly the packages
of the libraries the binary links."""

import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from conftest import REPO_ROOT, Daemon, free_port, modeld_bin, run_modeld, write_toy_model

DOCKER = REPO_ROOT / "docker"
DOCKERFILE = DOCKER / "Dockerfile"


def manifests():
    docs = {}
    for path in sorted(DOCKER.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            assert isinstance(doc, dict), f"{path}: not a mapping"
            for key in ("apiVersion", "kind"):
                assert doc.get(key), f"{path}: no {key}"
            assert doc.get("metadata", {}).get("name"), f"{path}: no metadata.name"
            docs[(doc["kind"], doc["metadata"]["name"])] = doc
    return docs


@pytest.fixture(scope="module")
def docs():
    return manifests()


def get_routes():
    out = run_modeld(["--list-routes"]).stdout.splitlines()
    return {tuple(line.split(" ", 1)) for line in out}


def check_config(tmp_path, text):
    cfg = tmp_path / "modeld.json"
    cfg.write_text(text)
    cp = run_modeld(["--config", cfg, "--check-config"])
    assert cp.returncode == 0, cp.stderr
    return json.loads(text)


def test_every_manifest_parses(docs):
    kinds = {k for k, _ in docs}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "ConfigMap", "PersistentVolumeClaim",
            "ServingRuntime", "InferenceService"} <= kinds, kinds


def probe_port(container, probe):
    port = probe["httpGet"]["port"]
    if isinstance(port, str):
        [p] = [p["containerPort"] for p in container["ports"] if p.get("name") == port]
        return p
    return port


def test_deployment_probes_ports_and_timings(docs, tmp_path):
    dep = docs[("Deployment", "modeld")]
    pod = dep["spec"]["template"]["spec"]
    [c] = pod["containers"]
    cm = docs[("ConfigMap", "modeld-config")]
    cfg = check_config(tmp_path, cm["data"]["modeld.json"])
    listen_port = int(cfg["listen"].rsplit(":", 1)[1])
    assert cfg["listen"].startswith("0.0.0.0:")
    routes = get_routes()
    for kind, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/readyz")):
        probe = c[kind]
        assert probe["httpGet"]["path"] == path
        assert ("GET", path) in routes
        assert probe_port(c, probe) == listen_port
    assert c["startupProbe"]["failureThreshold"] * c["startupProbe"]["periodSeconds"] >= 120
    for key in ("requests", "limits"):
        assert c["resources"][key]["cpu"] and c["resources"][key]["memory"]
    # shutdown: the endpoint goes first (preStop), then the drain, all within the grace period
    sleep = c["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > int(sleep[1]) + cfg["drain_timeout_ms"] / 1000
    # config and repository are volumes, the reload poller is on
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert c["args"] == ["--config", mounts["config"] + "/modeld.json"]
    assert mounts["models"] == cfg["model_repository"]
    assert cfg["repository_poll_ms"] > 0
    vols = {v["name"]: v for v in pod["volumes"]}
    assert vols["config"]["configMap"]["name"] == "modeld-config"
    assert vols["models"]["persistentVolumeClaim"]["claimName"] == "modeld-models"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    svc = docs[("Service", "modeld")]
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["ports"][0]["targetPort"] in [p["name"] for p in c["ports"]]


def test_hpa(docs, toy_repo):
    hpa = docs[("HorizontalPodAutoscaler", "modeld")]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "modeld"}
    [cpu] = hpa["spec"]["metrics"]
    assert cpu["resource"]["name"] == "cpu"
    text = (DOCKER / "k8s" / "hpa.yaml").read_text()
    commented = yaml.safe_load("\n".join(re.sub(r"^\s*# ?", "", line, count=1) for line in text.splitlines()
                                         if line.strip().startswith("# -") or line.strip().startswith("#   ")))
    assert commented[0]["pods"]["metric"]["name"] == "modeld_inflight_requests"
    with Daemon(toy_repo) as d:
        metrics = d.request("GET", "/metrics")[2]
    assert re.search(r"^modeld_inflight_requests \d+$", metrics, re.M), "the HPA example's metric is not exported"


def test_kserve_runtime_and_inference_service(docs):
    rt = docs[("ServingRuntime", "modeld")]
    isvc = docs[("InferenceService", "xgb-breast-cancer")]
    assert rt["spec"]["protocolVersions"] == ["v2"]
    formats = {f["name"] for f in rt["spec"]["supportedModelFormats"]}
    assert formats == {"xgboost", "lightgbm", "modeld-lr"}
    [c] = rt["spec"]["containers"]
    assert c["name"] == "kserve-container"
    args = dict(zip(c["args"][::2], c["args"][1::2]))
    assert args["--model-repository"] == "/mnt/models"
    port = int(args["--listen"].rsplit(":", 1)[1])
    assert [p["containerPort"] for p in c["ports"]] == [port] == [8080]
    routes = get_routes()
    for kind in ("readinessProbe", "livenessProbe"):
        assert ("GET", c[kind]["httpGet"]["path"]) in routes and c[kind]["httpGet"]["port"] == port
    model = isvc["spec"]["predictor"]["model"]
    assert model["runtime"] == "modeld" and model["protocolVersion"] == "v2"
    assert model["modelFormat"]["name"] in formats
    # the runtime's flags are flags the binary takes
    cp = run_modeld(c["args"] + ["--check-config"])
    assert cp.returncode == 0, cp.stderr


def dockerfile_stages():
    """[(FROM line, [instructions with continuations joined])] per stage."""
    stages, cur = [], None
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("FROM "):
            cur = (line, [])
            stages.append(cur)
        else:
            cur[1].append(line)
    return stages


def apt_packages(run):
    m = re.search(r"apt-get install\s+(.*?)(&&|$)", run)
    return {w for w in m.group(1).split() if not w.startswith("-")}


def test_dockerfile(tmp_path):
    (build_from, build), (run_from, runtime) = dockerfile_stages()
    assert build_from == "FROM debian:bookworm-slim AS build" and run_from == "FROM debian:bookworm-slim"
    # the build step is the command README.md documents
    [make] = [i[4:] for i in build if i.startswith("RUN make")]
    readme = (REPO_ROOT / "README.md").read_text()
    assert re.search(rf"^{re.escape(make)}\s+#", readme, re.M), f"README.md does not document `{make}`"
    [cmd] = [i for i in build if "apt-get install" in i]
    makefile = (REPO_ROOT / "Makefile").read_text()
    deb = set(re.search(r"DEB_PKGS := (.*?)\n\n", makefile, re.S).group(1).replace("\\", " ").split())
    assert apt_packages(cmd) <= deb
    # the runtime stage installs the packages of exactly the libraries the binary links
    [cmd] = [i for i in runtime if "apt-get install" in i]
    needed = re.findall(r"NEEDED.*\[(.*)\]", subprocess.run(["readelf", "-d", str(modeld_bin())],
                                                              capture_output=True, text=True).stdout)
    ldd = dict(re.findall(r"^\s*(\S+) => (\S+)", subprocess.run(["ldd", str(modeld_bin())], capture_output=True,
                                                                  text=True).stdout, re.M))
    owners = set()
    # a sanitizer build (make MODE=asan) links its runtimes too; the image is a release build
    needed = [lib for lib in needed if not re.match(r"lib(asan|ubsan|lsan|tsan)\.", lib)]
    for lib in needed:
        path = ldd[lib]
        for candidate in (path, str(Path(path).resolve()), "/usr" + path):
            out = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
            if out.returncode == 0:
                owners.add(out.stdout.split(":")[0])
                break
        else:
            pytest.fail(f"no Debian package owns {path} ({lib})")
    assert apt_packages(cmd) == owners - {"libc6"}, (apt_packages(cmd), owners)
    copies = [i for i in runtime if i.startswith("COPY")]
    assert copies == ["COPY --from=build /src/build/modeld /usr/local/bin/modeld",
                      "COPY docker/modeld.json /etc/modeld/modeld.json", "COPY --from=build /src/conf/models/ /models/"]
    # every model of conf/models goes in, made readable for the non-root user in the build stage
    assert "COPY conf/models/ /src/conf/models/" in build and "RUN chmod -R a+rX,go-w /src/conf/models" in build
    user = [i for i in runtime if i.startswith("USER")]
    assert user and user[-1] not in ("USER root", "USER 0")
    assert "STOPSIGNAL SIGTERM" in runtime
    [hc] = [i for i in runtime if i.startswith("HEALTHCHECK")]
    assert "/healthz" in hc and "/dev/tcp/127.0.0.1/8080" in hc
    [vol] = [i for i in runtime if i.startswith("VOLUME")]
    assert json.loads(vol[len("VOLUME "):]) == ["/etc/modeld", "/models"]
    [cmdline] = [i for i in runtime if i.startswith("CMD")]
    assert json.loads(cmdline[4:]) == ["--config", "/etc/modeld/modeld.json"]
    cfg = check_config(tmp_path, (DOCKER / "modeld.json").read_text())
    assert cfg["listen"] == "0.0.0.0:8080" and cfg["model_repository"] == "/models"
    assert "EXPOSE 8080" in runtime
    # `docker stop` waits 10 s before SIGKILL: the drain must end before that
    assert cfg["drain_timeout_ms"] < 10000


def docker_works():
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def docker(*args, timeout=60, check=True):
    cp = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert cp.returncode == 0, f"docker {' '.join(args)}: {cp.stderr[-3000:]}"
    return cp


# What the image is built from: the allow list of .dockerignore, plus the Dockerfile.
IMAGE_INPUTS = ("Makefile", "server", "handlers", "models", "conf/models", "docker/modeld.json",
                "docker/Dockerfile", ".dockerignore")
BASE = "debian:bookworm-slim"
E2E_REPO = "modeld-e2e"
KEEP_IMAGES = 4


def image_tag():
    """modeld-e2e:<digest of the build inputs and the base image>: an image already built
    from the same sources is reused instead of rebuilt."""
    h = hashlib.sha256(docker("image", "inspect", "-f", "{{.Id}}", BASE).stdout.strip().encode())
    for top in IMAGE_INPUTS:
        root = REPO_ROOT / top
        files = [root] if root.is_file() else sorted(f for f in root.rglob("*") if not f.is_dir())
        for f in files:
            if "__pycache__" in f.parts or f.suffix == ".pyc":
                continue
            h.update(f"{f.relative_to(REPO_ROOT)}\0{f.lstat().st_mode:o}\0".encode())
            h.update(os.readlink(f).encode() if f.is_symlink() else f.read_bytes())
            h.update(b"\0")
    return f"{E2E_REPO}:{h.hexdigest()[:16]}"


@pytest.fixture(scope="module")
def image():
    def pulled():
        try:
            return docker("pull", BASE, timeout=300, check=False).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    if docker("image", "inspect", BASE, check=False).returncode != 0 and not pulled():
        pytest.skip(f"no {BASE} image and it cannot be pulled (no Docker Hub?): "
                    "docker/build-local-base.sh makes one from a Debian mirror")
    tag = image_tag()
    if docker("image", "inspect", tag, check=False).returncode != 0:
        # --network host: the apt-get steps reach the mirror even when the daemon's bridge
        # has no NAT (dockerd --iptables=false, as docker/build-local-base.sh starts it).
        docker("build", "--network", "host", "-f", str(DOCKERFILE), "-t", tag, str(REPO_ROOT), timeout=1800)
        # Keep the few newest (other worktrees may be testing theirs), drop older ones.
        listed = docker("image", "ls", E2E_REPO, "--format", "{{.CreatedAt}}\t{{.Repository}}:{{.Tag}}").stdout
        for line in sorted(listed.splitlines(), reverse=True)[KEEP_IMAGES:]:
            if line.split("\t")[1] != tag:
                docker("image", "rm", line.split("\t")[1], check=False)
    return tag


def http_json(base, method, path, body=None, timeout=10):
    req = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


LGB_ROW = [0.5, None, -1.2, 3.3, 0, 1, 2, 0.1, -0.4, 7, 0, 0, 1.5, None, 2, 0.3, -2, 1, 0, 4]


@pytest.mark.skipif(not docker_works(), reason="no working Docker daemon here (`docker info` fails)")
def test_image_builds_and_serves(image):
    """The image of docker/Dockerfile, built (or reused if built from the same sources) and
    run as `docker run -p` does it: non-root, HEALTHCHECK healthy, every model of conf/models
    ready, a predict (and a generation from each transformer), then `docker stop` drains —
    readiness 503, a request half uploaded at the signal still answered — and exits 0 well
    within docker's 10 s grace period."""
    cfg = json.loads(docker("image", "inspect", "-f", "{{json .Config}}", image).stdout)
    assert cfg["User"] == "10001" and cfg["StopSignal"] == "SIGTERM" and "8080/tcp" in cfg["ExposedPorts"]
    assert "/healthz" in " ".join(cfg["Healthcheck"]["Test"]) and cfg["Healthcheck"]["Interval"] == 10 * 10**9
    assert cfg["Entrypoint"] == ["/usr/local/bin/modeld"] and cfg["Cmd"] == ["--config", "/etc/modeld/modeld.json"]

    port = free_port()
    name = f"modeld-e2e-{port}"
    # The image's health check, run every second instead of every 10 s.
    docker("run", "-d", "--name", name, "--health-interval", "1s", "-p", f"127.0.0.1:{port}:8080", image)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        health = None
        while time.monotonic() < deadline:
            health = docker("inspect", "-f", "{{.State.Health.Status}}", name).stdout.strip()
            if health == "healthy":
                break
            time.sleep(0.3)
        assert health == "healthy", docker("logs", name).stderr[-2000:]
        # the daemon process (not just an exec'd shell) runs as the image's user
        top = docker("top", name, "-o", "pid,uid,args").stdout.splitlines()
        [daemon] = [line.split(None, 2) for line in top[1:] if "/usr/local/bin/modeld" in line]
        assert daemon[1] == "10001", top

        assert http_json(base, "GET", "/healthz") == (200, {"status": "ok"})
        assert http_json(base, "GET", "/readyz") == (200, {"status": "ready"})
        st, listing = http_json(base, "GET", "/v1/models")
        assert st == 200
        served = {m["name"]: m for m in listing["models"]}
        shipped = {d.name for d in (REPO_ROOT / "conf" / "models").iterdir() if d.is_dir()}
        assert set(served) == shipped, (sorted(served), sorted(shipped))
        assert all(m["state"] == "ready" for m in served.values()), served
        st, body = http_json(base, "POST", "/v1/models/lgb_binary:predict", {"instances": [LGB_ROW]})
        assert (st, body["predictions"]) == (200, [0.45610294808460294]), body
        for m in served.values():
            if m["kind"] == "transformer":
                st, body = http_json(base, "POST", f"/v1/models/{m['name']}:generate",
                                     {"prompt": "In the beginning", "max_tokens": 4, "ignore_eos": True}, timeout=60)
                assert st == 200 and body["usage"]["completion_tokens"] == 4, (m["name"], body)

        # docker stop with a request half uploaded and a keep-alive connection open
        ka = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        ka.request("GET", "/readyz")
        assert ka.getresponse().read() == b'{"status":"ready"}'
        body = json.dumps({"instances": [LGB_ROW]}).encode()
        slow = socket.create_connection(("127.0.0.1", port), timeout=15)
        slow.sendall(b"POST /v1/models/lgb_binary:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Connection: close\r\n" + f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:len(body) // 2])
        time.sleep(0.3)
        stopped = {}

        def stop():
            t0 = time.monotonic()
            stopped["cp"] = docker("stop", name, check=False)
            stopped["s"] = time.monotonic() - t0

        stopper = threading.Thread(target=stop)
        stopper.start()
        drain_status, until = None, time.monotonic() + 8
        while time.monotonic() < until and stopper.is_alive():
            ka.request("GET", "/readyz")
            r = ka.getresponse()
            r.read()
            if r.status != 200:
                drain_status = r.status
                break
            time.sleep(0.1)
        assert drain_status == 503, "readiness did not turn 503 while draining"
        slow.sendall(body[len(body) // 2:])
        reply = b""
        while chunk := slow.recv(65536):
            reply += chunk
        head, _, payload = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), reply[:300]
        assert json.loads(payload)["predictions"] == [0.45610294808460294]
        stopper.join(30)
        assert stopped["cp"].returncode == 0, stopped["cp"].stderr
        assert stopped["s"] < 9, f"docker stop took {stopped['s']:.1f} s (SIGKILL at 10 s)"
        state = json.loads(docker("inspect", "-f", "{{json .State}}", name).stdout)
        assert state["ExitCode"] == 0 and not state["OOMKilled"], state
        events = [json.loads(line).get("event") for line in docker("logs", name).stderr.splitlines()
                  + docker("logs", name).stdout.splitlines() if line.startswith("{")]
        assert "draining" in events and "stopped" in events, events[-5:]
    finally:
        docker("rm", "-f", "-v", name, check=False)
