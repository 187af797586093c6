"""The deployment files, checked statically against the code they deploy.

No container engine or cluster here: the Kubernetes manifests are parsed with
PyYAML and the Dockerfile with a small parser of its own, and both are held to
what `python -m bot serve` actually reads, listens on and needs.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
KUBE = REPO / "deploy" / "kubernetes"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"

ENV_NAME = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*")
BUILD_TOOLS = re.compile(
    r"^(gcc(-\d+)?|g\+\+(-\d+)?|cpp|cc|clang|make|cmake|build-essential|autoconf|automake|"
    r"libtool|pkg-config|python3?-dev|python3?\.\d+-dev|libc6?-dev|libyaml-dev|rustc|cargo)$"
)
# Set by the image for Python and pip themselves, not for the bot.
INTERPRETER_ENV = re.compile(r"(PYTHON|PIP_)\w*")


# --- reading the code -------------------------------------------------------


def module_constant(relative: str, name: str) -> Any:
    """A module-level ``NAME = literal`` of a bot module, read without importing it."""
    tree = ast.parse((REPO / relative).read_text())
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == name for t in targets) and node.value:
            return ast.literal_eval(node.value)
    raise AssertionError(f"{relative} has no module-level {name}")


def names_read_from_environment() -> set[str]:
    """Upper-case string literals in the bot's modules that read the environment."""
    names: set[str] = set()
    for path in (REPO / "bot").rglob("*.py"):
        text = path.read_text()
        if "environ" not in text:
            continue
        for node in ast.walk(ast.parse(text)):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and ENV_NAME.fullmatch(node.value)
            ):
                names.add(node.value)
    return names


def console_scripts() -> dict[str, str]:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    return pyproject["project"]["scripts"]


# --- reading the manifests --------------------------------------------------


def load_manifests() -> list[tuple[Path, dict]]:
    docs = []
    for path in sorted(KUBE.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append((path, doc))
    return docs


@pytest.fixture(scope="module")
def manifests() -> list[tuple[Path, dict]]:
    docs = load_manifests()
    assert docs, f"no manifests in {KUBE}"
    return docs


def of_kind(manifests: list[tuple[Path, dict]], kind: str) -> list[dict]:
    return [doc for _, doc in manifests if doc.get("kind") == kind]


@pytest.fixture(scope="module")
def deployment(manifests) -> dict:
    found = of_kind(manifests, "Deployment")
    assert len(found) == 1, f"expected one Deployment, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def pod(deployment) -> dict:
    return deployment["spec"]["template"]["spec"]


@pytest.fixture(scope="module")
def container(pod) -> dict:
    containers = pod["containers"]
    assert len(containers) == 1, "expected the bot's container alone"
    return containers[0]


def env_of(container: dict) -> dict[str, dict]:
    return {entry["name"]: entry for entry in container.get("env", [])}


def container_port(container: dict, port: int | str) -> int:
    """The containerPort that a probe's or Service's `port` (a name or number) reaches."""
    ports = container.get("ports", [])
    if isinstance(port, str):
        named = [p["containerPort"] for p in ports if p.get("name") == port]
        assert named, f"no container port named {port!r} (ports: {ports})"
        return named[0]
    assert port in [p["containerPort"] for p in ports], f"port {port} is not a container port"
    return port


def object_keys(manifests, kind: str) -> dict[str, set[str]]:
    """Name -> keys of every Secret or ConfigMap manifest."""
    return {
        doc["metadata"]["name"]: set(doc.get("data") or {}) | set(doc.get("stringData") or {})
        for doc in of_kind(manifests, kind)
    }


def secret_values(manifests, name: str) -> dict[str, str]:
    for doc in of_kind(manifests, "Secret"):
        if doc["metadata"]["name"] == name:
            return dict(doc.get("stringData") or {})
    raise AssertionError(f"no Secret {name}")


# --- the Kubernetes manifests -----------------------------------------------


def test_every_manifest_names_its_kind(manifests):
    for path, doc in manifests:
        assert doc.get("apiVersion"), f"{path.name}: no apiVersion"
        assert doc.get("kind"), f"{path.name}: no kind"
        if doc["kind"] != "Kustomization":
            assert doc.get("metadata", {}).get("name"), f"{path.name}: no metadata.name"


def test_kustomization_lists_existing_files_but_not_placeholder_secrets(manifests):
    kustomizations = of_kind(manifests, "Kustomization")
    if not kustomizations:
        pytest.skip("no kustomization.yaml")
    (kustomization,) = kustomizations
    listed = kustomization.get("resources", [])
    for resource in listed:
        assert (KUBE / resource).is_file(), f"kustomization lists missing {resource}"
    for path, doc in manifests:
        if doc["kind"] == "Secret":
            # Applying placeholders would overwrite the real Secret.
            assert path.name not in listed, f"{path.name} holds placeholders: keep it out"
        elif doc["kind"] != "Kustomization":
            assert path.name in listed, f"{path.name} is not in kustomization.yaml"


def test_deployment_runs_two_replicas(deployment):
    assert deployment["spec"]["replicas"] == 2


def test_deployment_selector_matches_its_pods(deployment):
    selector = deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()


def test_probes_hit_health_endpoints_on_a_container_port(container):
    liveness = container["livenessProbe"]["httpGet"]
    readiness = container["readinessProbe"]["httpGet"]
    assert liveness["path"] == "/healthz"
    assert readiness["path"] == "/readyz"
    container_port(container, liveness["port"])
    container_port(container, readiness["port"])


def test_health_endpoints_exist_in_the_web_app():
    web = (REPO / "bot" / "web.py").read_text()
    for path in ("/healthz", "/readyz"):
        assert f'add_get("{path}"' in web, f"bot/web.py serves no {path}"


def test_the_bot_listens_on_the_container_port(container):
    env = env_of(container)
    listening = (
        int(env["PORT"]["value"])
        if "PORT" in env
        else module_constant("bot/server.py", "DEFAULT_PORT")
    )
    probe_port = container_port(container, container["livenessProbe"]["httpGet"]["port"])
    assert probe_port == listening, f"probes hit {probe_port}, serve listens on {listening}"


def test_service_targets_the_probed_port(manifests, deployment, container):
    services = of_kind(manifests, "Service")
    assert len(services) == 1
    (service,) = services
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items(), "Service selects no bot pod"
    probed = container_port(container, container["readinessProbe"]["httpGet"]["port"])
    ports = service["spec"]["ports"]
    assert [p["port"] for p in ports] == [80]
    assert container_port(container, ports[0]["targetPort"]) == probed


def test_every_env_var_set_is_read_by_the_bot(container):
    read = names_read_from_environment()
    assert {"APP_ID", "WEBHOOK_SECRET", "DATABASE_URL"} <= read, "the environment scan is broken"
    assert not container.get("envFrom"), "list each variable in env, so each can be checked"
    names = set(env_of(container))
    unread = sorted(names - read)
    assert not unread, f"the Deployment sets {unread}, which nothing in bot/ reads"


def test_the_deployment_sets_what_serve_needs(container):
    env = env_of(container)
    assert {"APP_ID", "WEBHOOK_SECRET", "DATABASE_URL"} <= set(env)
    assert {"PRIVATE_KEY", "PRIVATE_KEY_PATH"} & set(env)
    assert env["LOG_FORMAT"]["value"] == "json"


def test_credentials_come_from_secrets(container):
    env = env_of(container)
    for name in ("WEBHOOK_SECRET", "DATABASE_URL", "PRIVATE_KEY"):
        if name in env:
            assert "secretKeyRef" in env[name].get("valueFrom", {}), (
                f"{name} must come from a Secret"
            )


def test_referenced_secrets_and_config_maps_exist(manifests, pod, container):
    defined = {
        "Secret": object_keys(manifests, "Secret"),
        "ConfigMap": object_keys(manifests, "ConfigMap"),
    }
    references: list[tuple[str, str, str]] = []
    for entry in container.get("env", []):
        source = entry.get("valueFrom", {})
        for field_name, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
            if field_name in source:
                references.append((kind, source[field_name]["name"], source[field_name]["key"]))
    for volume in pod.get("volumes", []):
        for field_name, kind, name_field in (
            ("secret", "Secret", "secretName"),
            ("configMap", "ConfigMap", "name"),
        ):
            if field_name in volume:
                name = volume[field_name][name_field]
                assert name in defined[kind], f"volume {volume['name']}: no {kind} {name}"
                for item in volume[field_name].get("items", []):
                    references.append((kind, name, item["key"]))
    assert references, "the Deployment takes nothing from a Secret"
    for kind, name, key in references:
        assert name in defined[kind], f"no {kind} named {name} in {KUBE}"
        assert key in defined[kind][name], f"{kind} {name} has no key {key!r}"


def test_private_key_path_is_the_mounted_secret_file(pod, container):
    path = env_of(container)["PRIVATE_KEY_PATH"]["value"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    for mount in container["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "secret" not in volume:
            continue
        items = volume["secret"].get("items") or []
        files = {f"{mount['mountPath'].rstrip('/')}/{item['path']}" for item in items}
        if path in files:
            assert mount.get("readOnly") is True
            return
    pytest.fail(f"PRIVATE_KEY_PATH={path} is no file of a mounted Secret")


def test_replicas_share_postgresql(manifests, deployment, container):
    source = env_of(container)["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    example = secret_values(manifests, source["name"])[source["key"]]
    if deployment["spec"]["replicas"] > 1:
        assert example.startswith(("postgresql://", "postgresql+psycopg://")), (
            "several replicas cannot share SQLite"
        )


def test_secret_manifest_is_marked_as_placeholders(manifests):
    for secret in of_kind(manifests, "Secret"):
        values = secret.get("stringData") or {}
        assert values, "give placeholders in stringData, not base64 data"
        for key, value in values.items():
            assert "REPLACE" in value, f"Secret {key}: not marked as a placeholder"


def test_pod_runs_as_non_root_on_a_read_only_root(pod, container):
    pod_context = pod.get("securityContext", {})
    context = container.get("securityContext", {})
    assert pod_context.get("runAsNonRoot") or context.get("runAsNonRoot")
    for found in (pod_context, context):
        assert found.get("runAsUser", 1) != 0
    uid = context.get("runAsUser", pod_context.get("runAsUser"))
    if uid is not None:
        assert uid == dockerfile_user()[0], "runAsUser differs from the image's USER"
    assert context.get("readOnlyRootFilesystem") is True
    assert context.get("allowPrivilegeEscalation") is False


def test_tmp_is_writable(pod, container):
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
    assert "/tmp" in mounts, "the worker pool's fork server needs a writable /tmp"
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]


def test_resources(container):
    resources = container["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert "memory" in resources["limits"]


def test_grace_period_outlasts_the_shutdown(pod, container):
    grace = module_constant("bot/scheduler.py", "SHUTDOWN_GRACE")
    pre_stop = container.get("lifecycle", {}).get("preStop", {})
    pause = 0
    command = pre_stop.get("exec", {}).get("command", [])
    if command[:1] == ["sleep"]:
        pause = float(command[1])
    pause += float(pre_stop.get("sleep", {}).get("seconds", 0))
    period = pod["terminationGracePeriodSeconds"]
    assert period >= 40
    assert period > grace + pause, (
        f"{period} s cannot hold a {pause} s pause and {grace} s of reconciles"
    )


def test_metrics_annotations_name_the_container_port(deployment, container):
    annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
    if "prometheus.io/port" in annotations:
        container_port(container, int(annotations["prometheus.io/port"]))
        path = annotations.get("prometheus.io/path", "/metrics")
        assert f'add_get("{path}"' in (REPO / "bot" / "web.py").read_text(), f"no {path}"


# --- the Dockerfile ---------------------------------------------------------


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [rest for kw, rest in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """Instructions with continuation lines joined and comments dropped, by stage."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1].rstrip() + " "
            continue
        whole = (pending + stripped).strip()
        pending = ""
        if whole:
            keyword, _, rest = whole.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    stages: list[Stage] = []
    for keyword, rest in instructions:
        if keyword == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        else:
            assert stages, f"{keyword} before the first FROM"
            stages[-1].instructions.append((keyword, rest))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


def dockerfile_user() -> tuple[int, int | None]:
    users = parse_dockerfile(DOCKERFILE.read_text())[-1].args("USER")
    assert users, "the final stage sets no USER: it would run as root"
    user, _, group = users[-1].partition(":")
    assert user.isdigit(), f"USER {user}: give a numeric UID so runAsNonRoot can check it"
    return int(user), int(group) if group else None


def test_parse_dockerfile_joins_continuations_and_stages():
    stages = parse_dockerfile(
        "# syntax=docker/dockerfile:1\nFROM a AS one\nRUN x \\\n  # note\n  && y\nFROM b\nUSER 5\n"
    )
    assert [(s.image, s.name) for s in stages] == [("a", "one"), ("b", None)]
    assert stages[0].args("RUN") == ["x && y"]
    assert stages[1].args("USER") == ["5"]


def test_dockerfile_is_multi_stage_on_python_311_slim(stages):
    assert len(stages) >= 2
    for stage in stages:
        assert stage.image == "python:3.11-slim", stage.image
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11", "the images' Python no longer matches requires-python"


def test_final_stage_runs_as_non_root():
    uid, gid = dockerfile_user()
    assert uid != 0 and gid != 0


def shell_commands(script: str) -> list[list[str]]:
    """The words of each simple command in a shell line (split at ``&&``, ``;``, ``|``...)."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token and set(token) <= set("&;|()"):
            commands.append([])
        else:
            commands[-1].append(token)
    return [words for words in commands if words]


def test_shell_commands_splits_at_operators():
    assert shell_commands('a -y "x;y" && b c; d | e') == [
        ["a", "-y", "x;y"],
        ["b", "c"],
        ["d"],
        ["e"],
    ]


def test_final_stage_installs_no_build_tools(stages):
    for run in stages[-1].args("RUN"):
        for words in shell_commands(run):
            if words[:1] in (["apt-get"], ["apt"], ["apk"]) and {"install", "add"} & set(words):
                packages = [w.split("=")[0] for w in words if not w.startswith("-")]
                tools = [p for p in packages if BUILD_TOOLS.match(p)]
                assert not tools, f"the final image installs build tools: {tools}"


def test_final_stage_installs_only_built_wheels(stages):
    installs = [run for run in stages[-1].args("RUN") if "pip install" in run]
    assert installs, "the final stage installs nothing"
    for run in installs:
        assert "--no-index" in run, f"pip may reach an index: {run}"
        assert "--no-cache-dir" in run


def test_stage_references_name_earlier_stages(stages):
    for index, stage in enumerate(stages):
        earlier = {s.name for s in stages[:index]} | {str(i) for i in range(index)}
        for keyword, rest in stage.instructions:
            for ref in re.findall(r"--(?:mount=\S*?)?from=([\w.-]+)", rest):
                assert ref in earlier, f"{keyword} refers to unknown stage {ref}"


def test_libyaml_is_guaranteed(stages):
    builder_runs = " ".join(run for stage in stages[:-1] for run in stage.args("RUN"))
    # An sdist of PyYAML built without libyaml headers silently lacks the C extension.
    assert "--only-binary=:all:" in builder_runs
    final_runs = " ".join(stages[-1].args("RUN"))
    assert "bot.update.yamlscan" in final_runs, "the build should fail without libyaml"


def test_entrypoint_is_the_console_script(stages):
    final = stages[-1]
    (entrypoint,) = final.args("ENTRYPOINT")
    command = json.loads(entrypoint)
    assert command[0] in console_scripts()
    assert json.loads(final.args("CMD")[-1]) == ["serve"]


def test_exposed_port_is_the_deployment_port(stages, container):
    exposed = {int(p.split("/")[0]) for rest in stages[-1].args("EXPOSE") for p in rest.split()}
    assert exposed == {container_port(container, "http")}


def test_image_env_is_read_by_the_bot(stages):
    read = names_read_from_environment()
    env: dict[str, str] = {}
    for rest in stages[-1].args("ENV"):
        for word in shlex.split(rest):
            name, _, value = word.partition("=")
            env[name] = value
    unread = sorted(n for n in env if n not in read and not INTERPRETER_ENV.fullmatch(n))
    assert not unread, f"the image sets {unread}, which nothing in bot/ reads"
    assert env.get("LOG_FORMAT") == "json"
    assert env.get("PYTHONUNBUFFERED") == "1"
    assert env.get("DATABASE_URL", "").startswith("sqlite:////data/")
    assert "/data" in " ".join(stages[-1].args("VOLUME"))


def test_healthcheck_uses_healthz(stages):
    checks = stages[-1].args("HEALTHCHECK")
    for check in checks:
        assert "/healthz" in check and "curl" not in check


def dockerignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        negated = pattern.startswith("!")
        bare = pattern.lstrip("!").rstrip("/")
        candidates = prefixes + (parts if bare.startswith("**/") else [])
        bare = bare.removeprefix("**/")
        if any(fnmatch.fnmatchcase(candidate, bare) for candidate in candidates):
            ignored = not negated
    return ignored


def test_dockerignore_keeps_out_local_clutter_but_not_the_sources(stages):
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for clutter in (
        ".git",
        ".venv",
        "tests",
        "bench",
        ".pytest_cache",
        "bot/__pycache__",
        "key.pem",
    ):
        assert dockerignored(clutter, patterns), f".dockerignore lets {clutter} in"
    for stage in stages:
        for rest in stage.args("COPY"):
            words = rest.split()
            if any(w.startswith("--from") for w in words):
                continue
            sources = [w for w in words if not w.startswith("--")][:-1]
            for source in sources:
                assert (REPO / source).exists(), f"COPY {source}: no such file"
                assert not dockerignored(source.rstrip("/"), patterns), (
                    f".dockerignore drops {source}"
                )
