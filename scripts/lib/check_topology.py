#!/usr/bin/env python3
"""Keeps the three deployment doors in step (run by scripts/check-deploy).

* docker-compose.yml (its resolved JSON from `docker-compose config`) against the
  Momentum configs it mounts from deploy/conf/;
* scripts/local-cluster's loopback topology (from `local-cluster --generate DIR`)
  against compose: same services, same peer names, same port map, and configs
  that differ only in addresses;
* the rendered Kubernetes manifests (`kubectl kustomize deploy/k8s`): the
  StatefulSet's pod names are the peers of its ConfigMap, probes, env overrides;
* the image (deploy/Dockerfile, scripts/image) against both: one image name,
  the same numeric user, the ports it exposes, a preStop pause that needs no
  binary the image lacks (it is FROM scratch: no `sleep`).

Configs are read with the workspace's own `confparse dump` and accepted by the
binaries' own `--check`. Prints one line per check and a closing
"check-topology: N passed, N failed"; exits 1 on any failure.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

PASSED = []
FAILED = []


def check(name, ok, detail=""):
    if ok:
        PASSED.append(name)
        print(f"ok   {name}")
    else:
        FAILED.append(name)
        print(f"FAIL {name}{': ' + detail if detail else ''}")
    return ok


def clean_env(extra=None):
    """The process environment without EC_* variables (they would override the
    configs under test), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EC_")}
    env.update(extra or {})
    return env


def run(args, env=None):
    return subprocess.run(args, capture_output=True, text=True, env=clean_env(env), timeout=60)


class Conf:
    """One configuration file as `confparse dump` resolves it (includes followed)."""

    def __init__(self, bindir, path):
        self.path = path
        out = run([os.path.join(bindir, "confparse"), "dump", path])
        if out.returncode != 0:
            raise SystemExit(f"confparse dump {path} failed:\n{out.stderr}")
        self.tree = json.loads(out.stdout)

    def scope(self, name):
        for item in self.tree["items"]:
            if item["kind"] == "scope" and item["name"].lower() == name.lower():
                return item
        return None

    def option(self, scope, name):
        s = self.scope(scope)
        for item in (s or {}).get("items", []):
            if item["kind"] == "option" and item["name"].lower() == name.lower():
                return value_of(item["value"])
        return None

    def listens(self, scope):
        s = self.scope(scope) or {"items": []}
        return [i.get("instance") for i in s["items"] if i["kind"] == "scope" and i["name"].lower() == "listen"]

    def flat(self):
        """{path: value} over the whole tree, Listen instances in the path."""
        out = {}

        def walk(node, prefix):
            for item in node["items"]:
                name = item["name"].lower()
                if item["kind"] == "scope":
                    key = f"{prefix}{name}" + (f"[{item['instance']}]" if item.get("instance") is not None else "")
                    out[key] = "<scope>"
                    walk(item, key + ".")
                else:
                    out[f"{prefix}{name}"] = value_of(item["value"])

        walk(self.tree, "")
        return out


def value_of(v):
    if "scalar" in v:
        return v["scalar"]
    if "list" in v:
        return [value_of(x) for x in v["list"]]
    if "dict" in v:
        return {e["key"]: value_of(e["value"]) for e in v["dict"]}
    return v


ADDR = re.compile(r"^(?:[a-z0-9-]+|127\.0\.0\.1):\d+$")


def normalise(flat, nodeaddr_values):
    """Replaces addresses by placeholders, so two configs that differ only in
    addresses compare equal."""

    def norm(v):
        if isinstance(v, list):
            return [norm(x) for x in v]
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, str) and (ADDR.match(v) or v in nodeaddr_values):
            return "<addr>"
        return v

    out = {}
    for k, v in flat.items():
        k = re.sub(r"listen\[[^\]]*\]", "listen[<addr>]", k)
        out[k] = norm(v)
    return out


def host_of(addr):
    return addr.rsplit(":", 1)[0]


def port_of(addr):
    return int(addr.rsplit(":", 1)[1])


# ---------------------------------------------------------------- compose


def compose_topology(args):
    compose = json.load(open(args.compose_json))
    services = compose["services"]
    servers = sorted(n for n, s in services.items() if (s.get("command") or [""])[0] == "msgc-server")
    nodes = sorted(n for n, s in services.items() if (s.get("command") or [""])[0] == "cluster-listener")
    check("compose: every service runs msgc-server or cluster-listener",
          set(servers) | set(nodes) == set(services), f"services {sorted(services)}")
    check("compose: 3 msgc-servers and 3 cluster-listener nodes", len(servers) == 3 and len(nodes) == 3,
          f"servers {servers}, nodes {nodes}")

    def conf_path(svc):
        cmd = services[svc]["command"]
        inner = cmd[cmd.index("--config") + 1]
        for vol in services[svc].get("volumes", []):
            if inner.startswith(vol["target"].rstrip("/") + "/"):
                return os.path.join(vol["source"], os.path.relpath(inner, vol["target"]))
        return None

    def published(svc, target):
        for p in services[svc].get("ports", []):
            if p.get("target") == target:
                return p
        return None

    peers_by_server = {}
    for s in servers:
        svc = services[s]
        env = svc.get("environment") or {}
        check(f"compose {s}: EC_NODE_NAME is the service name", env.get("EC_NODE_NAME") == s, str(env))
        path = conf_path(s)
        check(f"compose {s}: --config is a mounted file of deploy/conf",
              path is not None and os.path.isfile(path) and os.path.dirname(path) == args.conf_dir, str(path))
        conf = Conf(args.bindir, path)
        peers = conf.option("msgc_server", "peers") or {}
        peers_by_server[s] = peers
        check(f"compose {s}: msgc_server peers are the compose servers", sorted(peers) == servers,
              f"peers {sorted(peers)}")
        check(f"compose {s}: each peer is addressed by its service name, port 4809",
              all(v == f"{k}:4809" for k, v in peers.items()), str(peers))
        check(f"compose {s}: listens on :4809", conf.listens("msgcserver_listener") == [":4809"],
              str(conf.listens("msgcserver_listener")))
        hc = svc.get("healthcheck", {}).get("test", [])
        check(f"compose {s}: healthcheck is msgc-server's own, on msgc.v1.Bus",
              hc[:3] == ["CMD", "msgc-server", "healthcheck"] and "msgc.v1.Bus" in hc
              and "127.0.0.1:4809" in hc, str(hc))
        p = published(s, 4809)
        check(f"compose {s}: 4809 published on the host's loopback", p is not None and p.get("host_ip") == "127.0.0.1",
              str(p))
        out = run([os.path.join(args.bindir, "msgc-server"), "--check", "--config", path, "--name", s])
        check(f"compose {s}: msgc-server --check accepts its config", out.returncode == 0, out.stdout + out.stderr)

    node_info = {}
    for n in nodes:
        svc = services[n]
        path = conf_path(n)
        check(f"compose {n}: --config is a mounted file of deploy/conf",
              path is not None and os.path.isfile(path) and os.path.dirname(path) == args.conf_dir, str(path))
        conf = Conf(args.bindir, path)
        msgc = conf.option("msgc_client", "server") or []
        deps = {k: v.get("condition") for k, v in (svc.get("depends_on") or {}).items()}
        check(f"compose {n}: nodename is the service name", conf.option("cluster", "nodename") == n,
              str(conf.option("cluster", "nodename")))
        check(f"compose {n}: nodeaddr is the service name", conf.option("cluster", "nodeaddr") == n,
              str(conf.option("cluster", "nodeaddr")))
        own = host_of(msgc[0]) if msgc else None
        check(f"compose {n}: its first msgc server is the one it depends_on (service_healthy)",
              own in servers and deps == {own: "service_healthy"}, f"server {msgc}, depends_on {deps}")
        check(f"compose {n}: every msgc server it dials is a compose server on 4809",
              all(host_of(a) in servers and port_of(a) == 4809 for a in msgc), str(msgc))
        check(f"compose {n}: listens on *:4802", conf.listens("ECCluster_Listener") == ["*:4802"],
              str(conf.listens("ECCluster_Listener")))
        hc = svc.get("healthcheck", {}).get("test", [])
        check(f"compose {n}: healthcheck is cluster-listener's own, on eccluster.v1.Node",
              hc[:3] == ["CMD", "cluster-listener", "healthcheck"] and "eccluster.v1.Node" in hc
              and "127.0.0.1:4802" in hc, str(hc))
        p = published(n, 4802)
        check(f"compose {n}: 4802 published on the host's loopback", p is not None and p.get("host_ip") == "127.0.0.1",
              str(p))
        targets = [v["target"] for v in svc.get("volumes", [])]
        check(f"compose {n}: volumes for its state_dir and spool_dir",
              "/var/lib/ecelerity" in targets and "/var/spool/ecelerity" in targets, str(targets))
        out = run([os.path.join(args.bindir, "cluster-listener"), "--check", "--config", path])
        check(f"compose {n}: cluster-listener --check accepts its config", out.returncode == 0, out.stdout + out.stderr)
        node_info[n] = {"server": own, "conf": conf}

    ports = {}
    for name in servers + nodes:
        p = published(name, 4809 if name in servers else 4802)
        ports[name] = int(p["published"]) if p else None
    return {"servers": servers, "nodes": nodes, "peers": peers_by_server, "node_info": node_info, "ports": ports}


# ---------------------------------------------------------------- local cluster


def local_topology(args, compose):
    lines = [line.split() for line in open(os.path.join(args.local_dir, "topology")) if line.strip()]
    servers = sorted(name for kind, name, *_ in lines if kind == "server")
    nodes = sorted(name for kind, name, *_ in lines if kind == "node")
    entries = {name: (addr, path) for _, name, addr, path in lines}
    check("local-cluster: the same msgc-servers as compose", servers == compose["servers"],
          f"local {servers}, compose {compose['servers']}")
    check("local-cluster: the same nodes as compose", nodes == compose["nodes"],
          f"local {nodes}, compose {compose['nodes']}")

    for s in servers:
        addr, path = entries[s]
        conf = Conf(args.bindir, path)
        peers = conf.option("msgc_server", "peers") or {}
        check(f"local {s}: the same peer names as compose", sorted(peers) == sorted(compose["peers"].get(s, {})),
              f"local {sorted(peers)}")
        check(f"local {s}: its own peer address is where it listens",
              peers.get(s) == addr and conf.listens("msgcserver_listener") == [addr],
              f"peer {peers.get(s)}, listen {conf.listens('msgcserver_listener')}, topology {addr}")
        check(f"local {s}: loopback only", all(host_of(a) == "127.0.0.1" for a in peers.values()), str(peers))
        check(f"local {s}: the same port as compose publishes", port_of(addr) == compose["ports"].get(s),
              f"local {addr}, compose {compose['ports'].get(s)}")
        compose_conf = Conf(args.bindir, os.path.join(args.conf_dir, "msgc_server.conf"))
        check(f"local {s}: its config is compose's but for addresses",
              normalise(conf.flat(), set()) == normalise(compose_conf.flat(), set()))
        out = run([os.path.join(args.bindir, "msgc-server"), "--check", "--config", path, "--name", s])
        check(f"local {s}: msgc-server --check accepts its config", out.returncode == 0, out.stdout + out.stderr)

    for n in nodes:
        addr, path = entries[n]
        conf = Conf(args.bindir, path)
        info = compose["node_info"].get(n)
        msgc = conf.option("msgc_client", "server") or []
        own_server = info["server"] if info else None
        check(f"local {n}: nodename as compose", conf.option("cluster", "nodename") == n)
        check(f"local {n}: on the same msgc server as compose ({own_server})",
              bool(msgc) and own_server in entries and msgc[0] == entries[own_server][0],
              f"local servers {msgc}")
        check(f"local {n}: listens where the topology says, on loopback",
              conf.listens("ECCluster_Listener") == [addr] and host_of(addr) == "127.0.0.1",
              str(conf.listens("ECCluster_Listener")))
        check(f"local {n}: the same port as compose publishes", port_of(addr) == compose["ports"].get(n),
              f"local {addr}, compose {compose['ports'].get(n)}")
        if info:
            check(f"local {n}: its config is compose's but for addresses",
                  normalise(conf.flat(), {n, "127.0.0.1"}) == normalise(info["conf"].flat(), {n, "127.0.0.1"}))
        out = run([os.path.join(args.bindir, "cluster-listener"), "--check", "--config", path])
        check(f"local {n}: cluster-listener --check accepts its config", out.returncode == 0, out.stdout + out.stderr)


# ---------------------------------------------------------------- kubernetes


def env_map(container):
    return {e["name"]: e for e in container.get("env", [])}


def field_ref(env, name):
    e = env.get(name) or {}
    return ((e.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")


def metrics_checks(name, template, c, binary):
    """The admin listener: admin_listen from EC_CONF__, a `metrics` container
    port on the same port, and the prometheus.io scrape annotations naming it."""
    scope = "MSGCSERVER_LISTENER" if binary == "msgc-server" else "ECCLUSTER_LISTENER"
    admin = (env_map(c).get(f"EC_CONF__{scope}__ADMIN_LISTEN") or {}).get("value", "")
    metrics = next((p for p in c.get("ports", []) if p.get("name") == "metrics"), {})
    ann = (template.get("metadata") or {}).get("annotations") or {}
    admin_port = port_of(admin) if ":" in admin else None
    check(f"k8s {name}: admin_listen set (EC_CONF__{scope}__ADMIN_LISTEN)", admin_port is not None, admin)
    check(f"k8s {name}: a `metrics` container port on admin_listen's port",
          metrics.get("containerPort") == admin_port, f"{metrics} vs {admin}")
    check(f"k8s {name}: prometheus.io scrape annotations on the metrics port",
          ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/path") == "/metrics"
          and ann.get("prometheus.io/port") == str(metrics.get("containerPort")), str(ann))


def k8s_checks(args):
    docs = [d for d in yaml.safe_load_all(open(args.k8s)) if d]
    check("k8s: kustomize rendered resources", len(docs) > 0, "empty output")
    by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    configmaps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    services = [d for d in docs if d["kind"] == "Service"]
    sets = [d for d in docs if d["kind"] == "StatefulSet"]
    check("k8s: two StatefulSets (msgc-servers, nodes)", len(sets) == 2, str([s["metadata"]["name"] for s in sets]))

    def image_of(c):
        return c.get("image", "")

    tmp = tempfile.mkdtemp(prefix="k8s-conf-")
    msgc_service = None
    node_conf = None
    for sts in sets:
        name = sts["metadata"]["name"]
        spec = sts["spec"]
        pod = spec["template"]["spec"]
        labels = spec["template"]["metadata"]["labels"]
        sel = spec["selector"]["matchLabels"]
        check(f"k8s {name}: selector matches the pod labels", all(labels.get(k) == v for k, v in sel.items()))
        check(f"k8s {name}: parallel pod management", spec.get("podManagementPolicy") == "Parallel")
        headless = by.get(("Service", spec.get("serviceName")))
        check(f"k8s {name}: serviceName is a headless Service selecting its pods",
              headless is not None and headless["spec"].get("clusterIP") == "None"
              and all(labels.get(k) == v for k, v in headless["spec"]["selector"].items()), str(spec.get("serviceName")))
        c = pod["containers"][0]
        binary = c["command"][0]
        env = env_map(c)
        check(f"k8s {name}: EC_NODE_NAME from the pod name", field_ref(env, "EC_NODE_NAME") == "metadata.name")
        port = c["ports"][0]["containerPort"]
        live = (c.get("livenessProbe") or {}).get("grpc") or {}
        ready = (c.get("readinessProbe") or {}).get("grpc") or {}
        named = "msgc.v1.Bus" if binary == "msgc-server" else "eccluster.v1.Node"
        check(f"k8s {name}: grpc liveness probe on the whole service (\"\")",
              live.get("port") == port and live.get("service", "") == "", str(live))
        check(f"k8s {name}: grpc readiness probe on {named}", ready.get("port") == port and ready.get("service") == named,
              str(ready))
        metrics_checks(name, spec["template"], c, binary)
        res = c.get("resources") or {}
        check(f"k8s {name}: resource requests and limits (cpu, memory)",
              all(k in (res.get("requests") or {}) and k in (res.get("limits") or {}) for k in ("cpu", "memory")),
              str(res))
        pre = (c.get("lifecycle") or {}).get("preStop") or {}
        # The kubelet's own sleep action: the image has no `sleep` binary to exec.
        pause = (pre.get("sleep") or {}).get("seconds")
        grace = pod.get("terminationGracePeriodSeconds", 30)
        check(f"k8s {name}: preStop is the kubelet's sleep action (no exec: the image is FROM scratch)",
              "exec" not in pre and isinstance(pause, int), str(pre))
        check(f"k8s {name}: grace > preStop pause + the 5 s shutdown bound",
              isinstance(pause, int) and grace > pause + 5, f"preStop {pre}, grace {grace}")
        check(f"k8s {name}: runs as non-root", (pod.get("securityContext") or {}).get("runAsNonRoot") is True)
        check(f"k8s {name}: image set by kustomize (name:tag)", ":" in image_of(c), image_of(c))
        mount = next((m for m in c.get("volumeMounts", []) if m["name"] == "conf"), None)
        vol = next((v for v in pod.get("volumes", []) if v["name"] == "conf"), None)
        cm = configmaps.get(((vol or {}).get("configMap") or {}).get("name"))
        conf_arg = c["command"][c["command"].index("--config") + 1]
        ok = mount is not None and cm is not None and os.path.dirname(conf_arg) == mount["mountPath"] \
            and os.path.basename(conf_arg) in cm.get("data", {})
        check(f"k8s {name}: --config is a file of its mounted ConfigMap", ok, conf_arg)
        if not ok:
            continue
        d = os.path.join(tmp, name)
        os.makedirs(d)
        for fname, text in cm["data"].items():
            with open(os.path.join(d, fname), "w") as f:
                f.write(text)
        path = os.path.join(d, os.path.basename(conf_arg))
        conf = Conf(args.bindir, path)
        if binary == "msgc-server":
            replicas = spec.get("replicas", 1)
            peers = conf.option("msgc_server", "peers") or {}
            want = {f"{name}-{i}": f"{name}-{i}.{spec['serviceName']}:{port}" for i in range(replicas)}
            check(f"k8s {name}: peers are the pods {name}-0..{replicas - 1} at their headless DNS names",
                  peers == want, f"peers {peers}, want {want}")
            check(f"k8s {name}: headless Service publishes not-ready addresses",
                  headless is not None and headless["spec"].get("publishNotReadyAddresses") is True)
            for i in range(replicas):
                out = run([os.path.join(args.bindir, "msgc-server"), "--check", "--config", path],
                          {"EC_NODE_NAME": f"{name}-{i}"})
                check(f"k8s {name}-{i}: msgc-server --check accepts the ConfigMap", out.returncode == 0,
                      out.stdout + out.stderr)
            clients = [s for s in services if s["spec"].get("clusterIP") != "None"
                       and all(labels.get(k) == v for k, v in s["spec"]["selector"].items())]
            check(f"k8s {name}: a client Service (ClusterIP) selects the servers", len(clients) == 1,
                  str([s["metadata"]["name"] for s in clients]))
            msgc_service = clients[0]["metadata"]["name"] if clients else None
        else:
            direct = field_ref(env, "EC_CONF__CLUSTER__NODEADDR") == "status.podIP"
            via = (env.get("EC_CONF__CLUSTER__NODEADDR") or {}).get("value") == "$(POD_IP)" \
                and field_ref(env, "POD_IP") == "status.podIP" \
                and list(env).index("POD_IP") < list(env).index("EC_CONF__CLUSTER__NODEADDR")
            check(f"k8s {name}: nodeaddr from the pod IP (EC_CONF__CLUSTER__NODEADDR)", direct or via)
            mounts = [m["mountPath"] for m in c.get("volumeMounts", [])]
            check(f"k8s {name}: writable volumes for state_dir and spool_dir (read-only root)",
                  "/var/lib/ecelerity" in mounts and "/var/spool/ecelerity" in mounts, str(mounts))
            out = run([os.path.join(args.bindir, "cluster-listener"), "--check", "--config", path],
                      {"EC_NODE_NAME": f"{name}-0", "EC_CONF__CLUSTER__NODEADDR": "10.0.0.1"})
            check(f"k8s {name}: cluster-listener --check accepts the ConfigMap with the pod's env",
                  out.returncode == 0 and f"node {name}-0 at 10.0.0.1" in out.stdout, out.stdout + out.stderr)
            node_conf = conf
    servers = node_conf.option("msgc_client", "server") if node_conf else None
    check("k8s: nodes dial the msgc client Service on 4809",
          msgc_service is not None and servers == [f"{msgc_service}:4809"], str(servers))
    return sets


# ---------------------------------------------------------------- the image


def dockerfile_stages(path):
    """{stage: {"from": ..., "instr": [(INSTRUCTION, args)]}} with line continuations joined."""
    stages, cur, buf = {}, None, ""
    for raw in open(path):
        line = raw.rstrip("\n")
        if line.strip().startswith("#") and not buf:
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        line, buf = buf + line, ""
        if not line.strip():
            continue
        word, _, rest = line.strip().partition(" ")
        word = word.upper()
        if word == "FROM":
            parts = rest.split()
            cur = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else f"#{len(stages)}"
            stages[cur] = {"from": parts[0], "instr": []}
        elif cur is not None:
            stages[cur]["instr"].append((word, rest.strip()))
    return stages


def image_checks(args, compose_json, k8s_sets):
    stages = dockerfile_stages(args.dockerfile)
    base = stages.get("base", {"from": None, "instr": []})
    instr = dict((w, a) for w, a in base["instr"] if w in ("USER", "EXPOSE"))
    check("image: the targets share a `base` stage FROM scratch", base["from"] == "scratch", str(base["from"]))
    for target in ("prebuilt", "image"):
        st = stages.get(target)
        check(f"image: target {target} is FROM base", st is not None and st["from"] == "base", str(st))
    check("image: the default (last) target is `image`", list(stages)[-1:] == ["image"], str(list(stages)))
    check("image: `prebuilt` comes before the build stage (the classic builder builds stages in order)",
          list(stages).index("prebuilt") < list(stages).index("build") if "build" in stages and "prebuilt" in stages
          else False, str(list(stages)))
    user = instr.get("USER", "")
    uid, _, gid = user.partition(":")
    check("image: USER is numeric uid:gid, not root", uid.isdigit() and gid.isdigit() and uid != "0", user)
    exposed = set(instr.get("EXPOSE", "").split())
    check("image: EXPOSE 4802 (cluster-listener) and 4809 (msgc-server)", exposed == {"4802", "4809"}, str(exposed))

    services = compose_json["services"]
    images = {n: s.get("image") for n, s in services.items()}
    compose_image = next(iter(images.values()), None)
    check("compose: one image for every service", len(set(images.values())) == 1, str(images))
    check("compose: every service runs as the image's USER",
          all(s.get("user") == user for s in services.values()), str({n: s.get("user") for n, s in services.items()}))
    check("compose: every service has a read-only root file system and drops all capabilities",
          all(s.get("read_only") is True and s.get("cap_drop") == ["ALL"] for s in services.values()))
    builds = {n: (s.get("build") or {}).get("target") for n, s in services.items()}
    check("compose: `build` takes the Dockerfile's default target `image`",
          all(t == "image" for t in builds.values()), str(builds))
    for sts in k8s_sets:
        name = sts["metadata"]["name"]
        pod = sts["spec"]["template"]["spec"]
        c = pod["containers"][0]
        sc = pod.get("securityContext") or {}
        check(f"k8s {name}: the compose image ({compose_image})", c.get("image") == compose_image, c.get("image"))
        check(f"k8s {name}: runAsUser/runAsGroup are the image's USER",
              f"{sc.get('runAsUser')}:{sc.get('runAsGroup')}" == user, f"{sc.get('runAsUser')}:{sc.get('runAsGroup')}")
        # The metrics port is the admin listener's, not a service port.
        ports = {str(p["containerPort"]) for p in c.get("ports", []) if p.get("name") != "metrics"}
        check(f"k8s {name}: its container port is one the image exposes", bool(ports) and ports <= exposed, str(ports))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--compose-json", required=True)
    p.add_argument("--conf-dir", required=True)
    p.add_argument("--local-dir", required=True)
    p.add_argument("--k8s", required=True)
    p.add_argument("--bindir", required=True)
    p.add_argument("--dockerfile", default="deploy/Dockerfile")
    args = p.parse_args()
    args.conf_dir = os.path.realpath(args.conf_dir)
    compose = compose_topology(args)
    local_topology(args, compose)
    sets = k8s_checks(args)
    image_checks(args, json.load(open(args.compose_json)), sets)
    print(f"check-topology: {len(PASSED)} passed, {len(FAILED)} failed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
