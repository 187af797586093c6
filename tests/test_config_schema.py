"""schema/image-automation.schema.json against the checker (issue 11 §3).

* Every config example of the docs, the examples and the tests validates.
* Every config of `REJECTED` (one per rule of docs/config.md) is rejected by the
  checker, and by the schema too unless `SCHEMA_CANNOT` says why it cannot be.
"""

from __future__ import annotations

import io
import json
import re
import textwrap
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML

from bot.config import load_config
from tests.cli.test_cli import CONFIG as CLI_CONFIG
from tests.datapaths import REPO
from tests.manifests import podinfo_config
from tests.test_config import DESIGN_EXAMPLE

SCHEMA = json.loads((REPO / "schema/image-automation.schema.json").read_text())
VALIDATOR = Draft202012Validator(SCHEMA)


def data(text: str) -> object:
    """The YAML as the bot reads it: YAML 1.2, one document."""
    return YAML(typ="safe", pure=True).load(io.StringIO(text))


def schema_errors(text: str) -> list[str]:
    return [error.message for error in VALIDATOR.iter_errors(data(text))]


def checker_errors(text: str) -> list[str]:
    _config, problems = load_config(text.encode())
    return [str(problem) for problem in problems]


def _examples() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in sorted(REPO.glob("examples/**/image-automation.yml")):
        found[str(path.relative_to(REPO))] = path.read_text()
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        blocks = re.findall(r"```yaml\n(.*?)```", path.read_text(), re.S)
        for index, block in enumerate(blocks):
            if re.search(r"^version: 1$", block, re.M):
                found[f"{path.relative_to(REPO)} block {index}"] = block
    found["tests/test_config.py DESIGN_EXAMPLE"] = DESIGN_EXAMPLE
    found["tests/cli/test_cli.py CONFIG"] = CLI_CONFIG
    found["tests/manifests.py podinfo_config()"] = podinfo_config()
    found["podinfo_config(update_path, range)"] = podinfo_config(
        update_path="./clusters/podinfo.yaml", semver_range=">=5.0.0 <5.1.0"
    )
    return found


EXAMPLES = _examples()


def test_the_schema_is_valid_draft_2020_12():
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_there_are_examples_from_docs_examples_and_tests():
    sources = {name.split("/")[0].split(" ")[0] for name in EXAMPLES}
    assert {"examples", "docs", "README.md", "tests"} <= sources
    assert len(EXAMPLES) >= 8


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_validates_and_loads(name):
    text = EXAMPLES[name]
    assert schema_errors(text) == [], name
    assert checker_errors(text) == [], name


@pytest.mark.parametrize(
    "path",
    [
        *sorted(REPO.glob("examples/**/image-automation.yml")),
        REPO / "docs/config.md",
    ],
    ids=str,
)
def test_examples_name_the_schema_on_their_first_line(path: Path):
    text = path.read_text()
    if path.suffix == ".md":
        text = re.search(r"```yaml\n(.*?)```", text, re.S).group(1)
    assert text.startswith("# yaml-language-server: $schema=")
    target = text.split("$schema=", 1)[1].split("\n", 1)[0]
    if path.suffix == ".yml":  # in this repository the examples point at the file itself
        assert (path.parent / target).resolve() == REPO / "schema/image-automation.schema.json"


def config(body: str) -> str:
    return "version: 1\n" + textwrap.dedent(body)


REPOSITORY = "imageRepositories:\n  - {name: app, image: ghcr.io/org/app}\n"
POLICY = REPOSITORY + (
    "imagePolicies:\n  - {name: app, imageRepositoryRef: app, policy: {semver: {range: '1.x'}}}\n"
)


def automation(body: str) -> str:
    return config(POLICY + "imageUpdateAutomations:\n  - name: auto\n" + body)


#: One config per rule the checker enforces (docs/config.md), each rejected by it.
REJECTED = {
    "no version": "namespace: default\n",
    "version 2": "version: 2\n",
    "unknown top-level field": config("imageRepository: []\n"),
    "namespace not a DNS label": config("namespace: Flux_System\n"),
    "fluxManifests not a list": config("fluxManifests: clusters/prod\n"),
    "assignee not a login": automation("    pullRequest: {assignees: ['not a login']}\n"),
    "eleven assignees": automation(
        "    pullRequest: {assignees: [" + ", ".join(f"p{i}" for i in range(11)) + "]}\n"
    ),
    "minimumReleaseAge not an age": config(
        REPOSITORY + "imagePolicies:\n  - {name: app, imageRepositoryRef: app, "
        "policy: {semver: {range: '1.x'}}, minimumReleaseAge: 3 days}\n"
    ),
    "team reviewer not a slug": automation("    pullRequest: {teamReviewers: ['-team']}\n"),
    "fluxManifests outside the repository": config("fluxManifests: [../other]\n"),
    "fluxManifests absolute": config("fluxManifests: [/etc/flux]\n"),
    "fluxManifests empty entry": config("fluxManifests: [' ']\n"),
    "section not a list": config("imageRepositories: {name: app}\n"),
    "name not a Kubernetes name": config("imageRepositories:\n  - {name: App, image: app}\n"),
    "image missing": config("imageRepositories:\n  - {name: app}\n"),
    "image with a scheme": config("imageRepositories:\n  - {name: app, image: 'https://x.io/app'}\n"),
    "image with a tag": config("imageRepositories:\n  - {name: app, image: 'ghcr.io/org/app:1.0'}\n"),
    "image with a digest": config(
        "imageRepositories:\n  - {name: app, image: 'app@sha256:" + "a" * 64 + "'}\n"
    ),
    "image in upper case": config("imageRepositories:\n  - {name: app, image: ghcr.io/Org/App}\n"),
    "interval not a duration": config(
        "imageRepositories:\n  - {name: app, image: app, interval: 5 minutes}\n"
    ),
    "interval of zero": config("imageRepositories:\n  - {name: app, image: app, interval: 0s}\n"),
    "timeout in hours": config("imageRepositories:\n  - {name: app, image: app, timeout: 1h}\n"),
    "exclusionList of 26": config(
        "imageRepositories:\n  - name: app\n    image: app\n    exclusionList: ["
        + ", ".join(f"'x{i}'" for i in range(26))
        + "]\n"
    ),
    "exclusionList not RE2": config(
        "imageRepositories:\n  - {name: app, image: app, exclusionList: ['(?=x)']}\n"
    ),
    "insecure not a boolean": config("imageRepositories:\n  - {name: app, image: app, insecure: yes}\n"),
    "a Flux-only field": config(
        "imageRepositories:\n  - {name: app, image: app, secretRef: {name: s}}\n"
    ),
    "duplicate names": config(
        "imageRepositories:\n  - {name: app, image: app}\n  - {name: app, image: other}\n"
    ),
    "policy without a repository": config(
        "imagePolicies:\n  - {name: app, policy: {semver: {range: '1.x'}}}\n"
    ),
    "policy naming an unknown repository": config(
        "imagePolicies:\n  - {name: app, imageRepositoryRef: nope, policy: {semver: {range: '1'}}}\n"
    ),
    "two policy kinds": config(
        REPOSITORY
        + "imagePolicies:\n  - name: app\n    imageRepositoryRef: app\n"
        + "    policy: {semver: {range: '1.x'}, numerical: {}}\n"
    ),
    "no policy kind": config(
        REPOSITORY + "imagePolicies:\n  - {name: app, imageRepositoryRef: app, policy: {}}\n"
    ),
    "order neither asc nor desc": config(
        REPOSITORY
        + "imagePolicies:\n  - name: app\n    imageRepositoryRef: app\n"
        + "    policy: {alphabetical: {order: up}}\n"
    ),
    "invalid semver range": config(
        REPOSITORY
        + "imagePolicies:\n  - {name: app, imageRepositoryRef: app, policy: {semver: {range: '>>1'}}}\n"
    ),
    "filterTags pattern not RE2": config(
        REPOSITORY
        + "imagePolicies:\n  - name: app\n    imageRepositoryRef: app\n"
        + "    policy: {alphabetical: {}}\n    filterTags: {pattern: '(a)\\1'}\n"
    ),
    "rolling tag not a tag": config(
        REPOSITORY
        + "imagePolicies:\n  - {name: app, imageRepositoryRef: app, policy: {rolling: {tag: 'a b'}}}\n"
    ),
    "digestReflectionPolicy unknown": config(
        POLICY.replace("policy: {semver", "digestReflectionPolicy: Sometimes, policy: {semver")
    ),
    "label key with spaces": config(
        POLICY.replace("policy: {semver", "labels: {'a b': x}, policy: {semver")
    ),
    "label value a number": config(POLICY.replace("policy: {semver", "labels: {tier: 1}, policy: {semver")),
    "automation without a name": config(POLICY + "imageUpdateAutomations:\n  - {interval: 5m}\n"),
    "checkout by tag": automation("    git: {checkout: {ref: {tag: v1}}}\n"),
    "push branch not a ref name": automation("    git: {push: {branch: 'a..b'}}\n"),
    "push branch with a space": automation("    git: {push: {branch: 'a b'}}\n"),
    "author without email": automation("    git: {commit: {author: {name: bot}}}\n"),
    "author email not an address": automation(
        "    git: {commit: {author: {name: bot, email: nobody}}}\n"
    ),
    "template that does not parse": automation(
        "    git: {commit: {messageTemplate: '{% for %}'}}\n"
    ),
    "Go template": automation(
        "    git: {commit: {messageTemplate: '{{ printf \"%s\" .AutomationObject }}'}}\n"
    ),
    "update path outside the tree": automation("    update: {path: ../x}\n"),
    "update path absolute": automation("    update: {path: /etc}\n"),
    "update strategy unknown": automation("    update: {path: ., strategy: Magic}\n"),
    "selector operator unknown": automation(
        "    policySelector: {matchExpressions: [{key: app, operator: Maybe}]}\n"
    ),
    "PR label too long": automation("    pullRequest: {labels: ['" + "x" * 51 + "']}\n"),
    "draft not a boolean": automation("    pullRequest: {draft: sometimes}\n"),
    "two automations on one push branch": config(
        POLICY
        + "imageUpdateAutomations:\n"
        + "  - {name: a, git: {checkout: {ref: {branch: main}}, push: {branch: bot}}}\n"
        + "  - {name: b, git: {checkout: {ref: {branch: main}}, push: {branch: bot}}}\n"
    ),
}

#: What the schema cannot say, and why: these are `check-config`'s alone.
SCHEMA_CANNOT = {
    "interval of zero": "a duration's value (longer than zero) is arithmetic, not a pattern",
    "exclusionList not RE2": "whether a pattern is RE2 needs RE2",
    "duplicate names": "uniqueness of one field across list entries",
    "policy naming an unknown repository": "a reference from one list into another",
    "invalid semver range": "Masterminds' range grammar needs its parser",
    "filterTags pattern not RE2": "whether a pattern is RE2 needs RE2",
    "template that does not parse": "whether a Jinja2 template parses needs Jinja2",
    "Go template": "whether a Go template is of the forms the bot translates needs a parser",
    "two automations on one push branch": "uniqueness of a derived value across entries",
    "image in upper case": "upper case is allowed in the registry host, not the path: the "
    "split of host and path follows rules a pattern could only approximate",
}


def test_every_rule_has_a_rejected_config_and_every_exception_a_reason():
    assert set(SCHEMA_CANNOT) <= set(REJECTED)
    assert all(reason.strip() for reason in SCHEMA_CANNOT.values())


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_what_the_checker_rejects_the_schema_rejects_or_says_why_not(name):
    text = REJECTED[name]
    assert checker_errors(text), f"{name}: the checker accepts it, so it is no example"
    rejected = bool(schema_errors(text))
    if name in SCHEMA_CANNOT:
        assert not rejected, f"{name}: the schema does reject it; drop it from SCHEMA_CANNOT"
    else:
        assert rejected, f"{name}: the schema accepts what the checker rejects"
