"""docker/: the Dockerfile and the Kubernetes / KServe manifests.

No container engine daemon or cluster runs on the development machine, so the image is
built and run only when `docker info` works (test_image_builds_and_serves, skipped
otherwise); everything else is checked statically: every manifest parses as YAML and
names its kind; probe paths exist in the route table and probe ports in the config the
pod runs with; shutdown timings nest (drain < grace period); the Dockerfile's build step
is the command README.md documents and its runtime stage installs exactly the packages
of the libraries the binary links."""

import json
import re
import shutil
import subprocess
import time
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
                      "COPY docker/modeld.json /etc/modeld/modeld.json", "COPY conf/models/ /models/"]
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
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


@pytest.mark.skipif(not docker_works(), reason="no working Docker daemon here (`docker info` fails)")
def test_image_builds_and_serves(tmp_path):
    tag = "modeld-test:e2e"
    b = subprocess.run(["docker", "build", "-f", str(DOCKERFILE), "-t", tag, str(REPO_ROOT)],
                       capture_output=True, text=True, timeout=900)
    assert b.returncode == 0, b.stderr[-3000:]
    port = free_port()
    name = f"modeld-e2e-{port}"
    subprocess.run(["docker", "run", "-d", "--rm", "--name", name, "-p", f"127.0.0.1:{port}:8080", tag],
                   check=True, capture_output=True, timeout=60)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(base + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        with urllib.request.urlopen(base + "/healthz", timeout=2) as r:
            assert json.loads(r.read()) == {"status": "ok"}
        req = urllib.request.Request(base + "/v1/models/lgb_binary:predict", data=json.dumps(
            {"instances": [[0.5, None, -1.2, 3.3, 0, 1, 2, 0.1, -0.4, 7, 0, 0, 1.5, None, 2, 0.3, -2, 1, 0, 4]]}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            assert json.loads(r.read())["predictions"] == [0.45610294808460294]
    finally:
        subprocess.run(["docker", "stop", name], capture_output=True, timeout=60)
