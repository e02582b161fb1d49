"""What neither the schemas nor checkov can tell about deploy/kubernetes: the proxy's own
settings against the pod that runs it, and the init container that lays out its codex homes.

Usage: check_manifests.py RENDERED.yaml (every manifest, rendered together by kustomize).
Run from the repository root, by `make test-deploy`.
"""

import os
import re
import subprocess
import sys
import tempfile

import yaml

failures = []


def check(ok, message):
    if not ok:
        failures.append(message)


def env_of(container, docs):
    """The container's environment as the server sees it: envFrom ConfigMaps, then env."""
    env = {}
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef")
        if ref:
            (config,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == ref["name"]]
            env.update(config.get("data", {}))
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
    return env


def config_default(field):
    """A default from src/config.rs, so that this check follows the server's."""
    source = open("src/config.rs").read()
    match = re.search(rf"\b{field}: Duration::from_secs\((\d+)\)", source)
    assert match, f"no default for {field} in src/config.rs"
    return int(match.group(1))


def covered(path, mounts):
    return any(path == m or path.startswith(m.rstrip("/") + "/") for m in mounts)


def check_proxy(docs):
    (proxy,) = [d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "codex-proxy"]
    pod = proxy["spec"]["template"]["spec"]
    (server,) = [c for c in pod["containers"] if c["name"] == "codex-proxy"]
    env = env_of(server, docs)

    # The grace period covers the preStop pause, then the server's own SHUTDOWN_GRACE_SECS.
    grace = int(env.get("SHUTDOWN_GRACE_SECS", config_default("shutdown_grace")))
    pre_stop = server.get("lifecycle", {}).get("preStop", {})
    pause = 0
    if "exec" in pre_stop:
        command = pre_stop["exec"]["command"]
        check(command[0] == "sleep", f"the preStop hook is not a sleep: {command}")
        pause = int(command[1])
    elif "sleep" in pre_stop:
        pause = int(pre_stop["sleep"]["seconds"])
    termination = pod.get("terminationGracePeriodSeconds", 30)
    check(
        termination > pause + grace,
        f"terminationGracePeriodSeconds ({termination}) must exceed the preStop pause ({pause} s) "
        f"plus SHUTDOWN_GRACE_SECS ({grace} s), or the kubelet kills requests the server would end",
    )

    # Ready on /health; alive on anything else, since /health is 503 whenever codex cannot
    # answer (not logged in, its app-server restarting), which a restart does not mend.
    check(server["readinessProbe"]["httpGet"]["path"] == "/health", "the readiness probe is not /health")
    for probe in ("livenessProbe", "startupProbe"):
        path = server.get(probe, {}).get("httpGet", {}).get("path")
        check(path is not None, f"the proxy has no HTTP {probe}")
        check(path != "/health", f"the {probe} must not be /health: a pod without a login would be restarted for ever")

    # The port the server listens on is the one the container and the Services name.
    port = int(env.get("PORT", 8000))
    ports = {p["name"]: p["containerPort"] for p in server["ports"]}
    check(ports.get("http") == port, f"the container's http port is {ports.get('http')}, the server's PORT {port}")

    # Non-root and read-only, with a writable volume wherever the server and codex write.
    context = {**pod.get("securityContext", {}), **server.get("securityContext", {})}
    check(context.get("runAsNonRoot") is True, "the proxy does not set runAsNonRoot")
    check(context.get("runAsUser", 0) != 0, "the proxy runs as root")
    check(context.get("readOnlyRootFilesystem") is True, "the proxy's root filesystem is not read-only")
    check(context.get("allowPrivilegeEscalation") is False, "the proxy allows privilege escalation")
    mounts = [m["mountPath"] for m in server.get("volumeMounts", []) if not m.get("readOnly")]
    writes = {
        "/tmp (TMPDIR: each request's working directory and images)": env.get("TMPDIR", "/tmp"),
        "CODEX_HOME": env.get("CODEX_HOME", "/home/codex/.codex"),
        "the working directory (.env)": server.get("workingDir", "/home/codex"),
    }
    if env.get("CODEX_WORKDIR"):
        writes["CODEX_WORKDIR"] = env["CODEX_WORKDIR"]
    for what, path in writes.items():
        check(covered(path, mounts), f"{what} is {path}, on the read-only root filesystem: mount a volume there")
    return pod


def run_init(pod, logins, volume, copied=()):
    """Runs the init container's script on this machine, its paths moved into a scratch folder:
    `logins` are the Secret's files, `volume` the auth.json files already on the volume, and
    `copied` the accounts whose file should come from the Secret."""
    (init,) = [c for c in pod["initContainers"] if c["name"] == "codex-homes"]
    script = init["command"][2]
    scratch = tempfile.mkdtemp(prefix="codex-homes-")
    paths = {"/home/codex": f"{scratch}/home", "/logins": f"{scratch}/logins", "/codex": f"{scratch}/codex"}
    for path in paths.values():
        os.makedirs(path)
    for old in ("/home/codex", "/logins", "/codex"):
        script = re.sub(rf"(?<![\w./-]){re.escape(old)}(?=[/\s\"']|$)", paths[old], script)
    for name, text in logins.items():
        with open(f"{paths['/logins']}/{name}", "w") as f:
            f.write(text)
    for account, text in volume.items():
        os.makedirs(f"{paths['/codex']}/{account}")
        with open(f"{paths['/codex']}/{account}/auth.json", "w") as f:
            f.write(text)
    done = subprocess.run(["sh", "-c", script], env={"POD_NAME": "codex-proxy-1", "PATH": os.environ["PATH"]},
                          capture_output=True, text=True)
    check(done.returncode == 0, f"the init container's script failed: {done.stderr}")

    def read(path):
        try:
            return open(path).read()
        except FileNotFoundError:
            return None

    homes = {}
    for account in sorted(os.listdir(paths["/codex"])):
        auth = f"{paths['/codex']}/{account}/auth.json"
        homes[account] = read(auth)
        if account in copied:
            check(os.stat(auth).st_mode & 0o777 == 0o600, f"{account}/auth.json, copied from the Secret, is not 0600")
    dotenv = read(f"{paths['/home/codex']}/.env")
    return homes, dotenv.replace(paths["/codex"], "/codex") if dotenv else None


def check_init(pod):
    # No login anywhere: the default home exists (codex refuses a CODEX_HOME that does not),
    # and the server runs the single CODEX_HOME.
    homes, dotenv = run_init(pod, {}, {})
    check(homes == {"default": None}, f"with no login, the volume holds {homes}")
    check(dotenv is None, f"with no login, .env is {dotenv!r}")

    # Only the default login: still the single CODEX_HOME.
    homes, dotenv = run_init(pod, {"codex-proxy-1.default.auth.json": "seed"}, {}, copied={"default"})
    check(homes == {"default": "seed"}, f"the default login was not seeded: {homes}")
    check(dotenv is None, f"with only the default login, .env is {dotenv!r}")

    # This replica's logins are seeded once (a volume's refreshed copy is kept), shared ones at
    # every start, other replicas' never; every home with a login is an account.
    homes, dotenv = run_init(
        pod,
        {
            "codex-proxy-1.alice.auth.json": "alice seed",
            "codex-proxy-1.bob.auth.json": "bob seed",
            "codex-proxy-10.carol.auth.json": "carol, another replica's",
            "codex-proxy-0.dave.auth.json": "dave, another replica's",
            "shared.team.auth.json": "team key, new",
            "codex-proxy-1.bad.name.auth.json": "an invalid account name",
        },
        {"alice": "alice refreshed", "team": "team key, old", "erin": "logged in inside the pod"},
        copied={"bob", "team"},
    )
    expected = {
        "alice": "alice refreshed",
        "bob": "bob seed",
        "default": None,
        "erin": "logged in inside the pod",
        "team": "team key, new",
    }
    check(homes == expected, f"the homes are {homes}, not {expected}")
    accounts = "alice=/codex/alice,bob=/codex/bob,erin=/codex/erin,team=/codex/team"
    check(dotenv == f"CODEX_ACCOUNTS={accounts}\n", f".env is {dotenv!r}, not CODEX_ACCOUNTS={accounts}")


def check_openwebui(docs):
    """OpenWebUI runs the version docker/compose.yaml runs."""
    (webui,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "open-webui"]
    (image,) = [c["image"] for c in webui["spec"]["template"]["spec"]["containers"]]
    compose = yaml.safe_load(open("docker/compose.yaml"))
    check(image == compose["services"]["open-webui"]["image"],
          f"OpenWebUI is {image} here, {compose['services']['open-webui']['image']} in docker/compose.yaml")


def main():
    docs = [d for path in sys.argv[1:] for d in yaml.safe_load_all(open(path)) if d]
    pod = check_proxy(docs)
    check_init(pod)
    check_openwebui(docs)
    for failure in failures:
        print(f"deploy/kubernetes: {failure}")
    if failures:
        sys.exit(1)
    print("manifests: the grace period, probes, port and writable paths fit the server's settings; "
          "the init container seeds, keeps and lists codex homes as documented")


main()
