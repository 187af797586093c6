"""Flux manifests as config (issue 11 §1): `bot.config.manifests`, `bot.config.document`
joining them with the config file, and `bot.config.sources` storing them."""

from __future__ import annotations

import textwrap

import pytest

from bot.config import load_config
from bot.config.manifests import manifest_paths, mentions_flux_objects
from bot.config.sources import ConfigSources, sources_identity
from bot.planner import Observation, plan_automation
from bot.policy import LatestRef
from bot.problems import Severity

PATH = "clusters/prod/flux-system/images.yaml"


def flux(api: str = "v1", *, namespace: str = "flux-system", automation: str = "") -> str:
    """An ImageRepository, an ImagePolicy and an ImageUpdateAutomation, as Flux's docs write
    them (with the cluster-only fields a real cluster has), and an object of another group."""
    ns = f"\n  namespace: {namespace}" if namespace else ""
    return OBJECTS.format(api=api, ns=ns) + (automation or AUTOMATION.format(api=api, ns=ns))


OBJECTS = """\
apiVersion: image.toolkit.fluxcd.io/{api}
kind: ImageRepository
metadata:
  name: podinfo{ns}
spec:
  image: ghcr.io/stefanprodan/podinfo
  interval: 5m
  secretRef:
    name: ghcr-auth
  certSecretRef:
    name: ca
  serviceAccountName: puller
  provider: generic
  proxySecretRef:
    name: proxy
  exclusionList: ["^.*\\\\.sig$"]
---
apiVersion: image.toolkit.fluxcd.io/{api}
kind: ImagePolicy
metadata:
  name: podinfo{ns}
  labels:
    team: a
spec:
  imageRepositoryRef:
    name: podinfo
  filterTags:
    pattern: '^(?P<v>[0-9.]+)$'
    extract: '$v'
  policy:
    semver:
      range: 5.0.x
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: unrelated
data:
  image.toolkit.fluxcd.io: not an image object
"""


AUTOMATION = """\
---
apiVersion: image.toolkit.fluxcd.io/{api}
kind: ImageUpdateAutomation
metadata:
  name: flux-system{ns}
spec:
  interval: 30m
  sourceRef:
    kind: GitRepository
    name: flux-system
  git:
    checkout:
      ref:
        branch: main
    commit:
      author:
        email: fluxcdbot@users.noreply.github.com
        name: fluxcdbot
      messageTemplate: '{{{{range .Changed.Changes}}}}{{{{print .OldValue}}}} -> {{{{println .NewValue}}}}{{{{end}}}}'
      signingKey:
        secretRef:
          name: signing-key
    push:
      branch: flux-image-updates
  update:
    path: ./apps
    strategy: Setters
  suspend: true
"""


def line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


def load(manifests: dict[str, str], config: str | None = None, **kwargs):
    encoded = {path: text.encode() for path, text in manifests.items()}
    return load_config(None if config is None else config.encode(), manifests=encoded, **kwargs)


def errors(problems):
    return [p for p in problems if p.severity is Severity.ERROR]


@pytest.mark.parametrize("api", ["v1", "v1beta2", "v1beta1"])
def test_the_three_objects_are_the_config_in_every_api_version(api):
    config, problems = load({PATH: flux(api)})
    assert errors(problems) == []
    repository = config.repositories["podinfo"]
    assert repository.image == "ghcr.io/stefanprodan/podinfo"
    assert repository.interval == 300.0
    assert repository.exclusion_list == (r"^.*\.sig$",)
    assert repository.namespace == "flux-system" and repository.path == PATH
    assert repository.credentials == "ghcr-auth"  # the Secret's name, asked of the operator
    policy = config.policies["podinfo"]
    assert policy.repository == "podinfo" and policy.labels == {"team": "a"}
    assert policy.spec.semver_range == "5.0.x" and policy.spec.filter_extract == "$v"
    assert (policy.namespace, policy.path) == ("flux-system", PATH)
    assert policy.line == line_of(flux(api), "kind: ImagePolicy") - 1
    automation = config.automations["flux-system"]
    assert automation.namespace == "flux-system" and automation.path == PATH
    assert automation.interval == 1800.0
    assert (automation.checkout_branch, automation.push_branch) == ("main", "flux-image-updates")
    assert automation.author_email == "fluxcdbot@users.noreply.github.com"
    assert automation.update_path == "apps"
    # Flux's Go template, translated to what the sandbox runs.
    assert automation.message_template is not None and "{%" in automation.message_template
    assert "ConfigMap" not in str(problems)  # other objects are not read, not complained about


def test_each_cluster_only_field_gets_a_notice_at_its_line_naming_what_the_bot_does():
    _config, problems = load({PATH: flux()})
    notices = {p.message.split(": ", 1)[0].rsplit(".", 1)[-1]: p for p in problems}
    assert set(notices) == {
        "secretRef",
        "certSecretRef",
        "serviceAccountName",
        "provider",
        "proxySecretRef",
        "signingKey",
        "suspend",
    }
    assert all(p.severity is Severity.NOTICE and p.path == PATH for p in problems)
    assert notices["secretRef"].line == line_of(flux(), "secretRef:")
    assert "REGISTRY_CREDENTIALS" in notices["secretRef"].message
    assert "caFile" in notices["certSecretRef"].message
    assert "ecr:" in notices["provider"].message
    assert "pauses Flux's controller, not the bot" in notices["suspend"].message
    assert "signed by GitHub" in notices["signingKey"].message


def test_a_source_other_than_a_git_repository_is_a_notice():
    automation = AUTOMATION.format(api="v1", ns="\n  namespace: flux-system").replace(
        "kind: GitRepository", "kind: OCIRepository"
    )
    _config, problems = load({PATH: flux(automation=automation)})
    (source,) = [p for p in problems if "sourceRef" in p.message]
    assert source.severity is Severity.NOTICE
    assert "'OCIRepository'" in source.message and "holds the manifest" in source.message


def test_no_push_branch_commits_to_the_checkout_branch_as_flux_does():
    automation = AUTOMATION.format(api="v1", ns="").replace(
        "    push:\n      branch: flux-image-updates\n", ""
    )
    config, problems = load({PATH: flux(namespace="", automation=automation)})
    assert errors(problems) == []
    automation_config = config.automations["flux-system"]
    assert automation_config.push_branch == "main"
    assert automation_config.commits_directly("main")
    assert automation_config.namespace == "default"  # no metadata.namespace: the config's


def test_a_go_template_the_bot_cannot_run_falls_back_to_the_default_with_a_warning():
    automation = AUTOMATION.format(api="v1beta1", ns="").replace(
        "messageTemplate: '{{range .Changed.Changes}}{{print .OldValue}} -> "
        "{{println .NewValue}}{{end}}'",
        "messageTemplate: '{{ printf \"%s\" .Updated.Images }}'",
    )
    config, problems = load({PATH: flux(namespace="", automation=automation)})
    assert errors(problems) == []
    assert config.automations["flux-system"].message_template is None  # the default
    (warning,) = [p for p in problems if p.severity is Severity.WARNING]
    text = flux(namespace="", automation=automation)
    assert warning.path == PATH and warning.line == line_of(text, "messageTemplate")
    assert "messageTemplate" in warning.message and "default message is used" in warning.message
    assert "{{ AutomationObject }}" in warning.message  # the Jinja2 spelling


def test_a_field_flux_does_not_have_is_a_warning_not_an_error():
    text = flux().replace("  interval: 5m\n", "  intervall: 5m\n", 1)
    config, problems = load({PATH: text})
    assert errors(problems) == [] and "podinfo" in config.repositories
    (typo,) = [p for p in problems if "intervall" in p.message]
    assert typo.severity is Severity.WARNING and typo.line == line_of(text, "intervall")
    assert "check its spelling" in typo.message


def test_an_api_version_the_bot_does_not_read_is_named():
    text = flux().replace("image.toolkit.fluxcd.io/v1\nkind: ImageRepository",
                          "image.toolkit.fluxcd.io/v1alpha1\nkind: ImageRepository")  # fmt: skip
    config, problems = load({PATH: text})
    assert "podinfo" not in config.repositories
    unread = [p for p in problems if "v1alpha1" in p.message]
    assert unread and unread[0].severity is Severity.WARNING
    # So its policy has no image repository: an error at the reference.
    (missing,) = errors(problems)
    assert "no image repository named 'podinfo'" in missing.message and missing.path == PATH


def test_a_name_in_the_config_file_and_a_manifest_is_an_error_naming_both_places():
    config_file = textwrap.dedent("""\
        version: 1
        namespace: flux-system
        imageRepositories:
          - name: podinfo
            image: ghcr.io/other/podinfo
        """)
    config, problems = load({PATH: flux()}, config_file)
    (duplicate,) = errors(problems)
    assert (duplicate.path, duplicate.line) == (PATH, 4)
    assert (
        ".github/image-automation.yml:4" in duplicate.message and f"{PATH}:1" in duplicate.message
    )
    assert config.repositories["podinfo"].image == "ghcr.io/other/podinfo"  # the first stays


def test_the_config_file_and_manifests_mix():
    config_file = textwrap.dedent("""\
        version: 1
        namespace: flux-system
        fluxManifests: [clusters/prod/flux-system]
        imagePolicies:
          - name: podinfo-major
            imageRepositoryRef: podinfo
            policy: {semver: {range: '>=5.0.0'}}
        imageUpdateAutomations:
          - name: from-the-file
            update: {path: ./apps}
        """)
    config, problems = load({PATH: flux()}, config_file)
    assert errors(problems) == []
    assert config.flux_manifests == ("clusters/prod/flux-system",)
    assert set(config.policies) == {"podinfo", "podinfo-major"}
    assert config.policies["podinfo-major"].path == ""  # the config file
    assert config.file_of(config.policies["podinfo-major"]) == ".github/image-automation.yml"
    assert set(config.automations) == {"flux-system", "from-the-file"}


def test_a_reference_into_another_namespace_must_find_the_repository_there():
    text = flux().replace(
        "    name: podinfo\n  filterTags", "    name: podinfo\n    namespace: apps\n  filterTags"
    )
    _config, problems = load({PATH: text})
    (wrong,) = errors(problems)
    assert "is in namespace 'flux-system', not 'apps'" in wrong.message


def test_an_automation_applies_only_its_own_namespaces_policies_with_its_namespace_markers():
    other = (
        flux(namespace="team-b")
        .replace("name: podinfo", "name: podinfo-b")
        .replace("name: flux-system\n", "name: team-b\n", 1)
        .replace("branch: flux-image-updates", "branch: team-b-updates")
    )
    config, problems = load({PATH: flux(), "teams/b.yaml": other})
    assert errors(problems) == []
    observation = Observation(
        latest={
            "podinfo": LatestRef("ghcr.io/stefanprodan/podinfo", "5.0.3"),
            "podinfo-b": LatestRef("ghcr.io/stefanprodan/podinfo", "5.0.2"),
        }
    )
    files = {
        "apps/a.yaml": b'image: ghcr.io/stefanprodan/podinfo:5.0.0 # {"$imagepolicy": "flux-system:podinfo"}\n',
        "apps/b.yaml": b'image: ghcr.io/stefanprodan/podinfo:5.0.0 # {"$imagepolicy": "team-b:podinfo-b"}\n',
    }
    plan = plan_automation(
        config, config.automations["team-b"], observation, files, repository="o/r"
    )
    assert set(plan.edited) == {"apps/b.yaml"} and set(plan.latest) == {"podinfo-b"}
    assert b"podinfo:5.0.2" in plan.edited["apps/b.yaml"]
    plan = plan_automation(
        config, config.automations["flux-system"], observation, files, repository="o/r"
    )
    assert set(plan.edited) == {"apps/a.yaml"}
    assert (
        plan.commit_message
        == "ghcr.io/stefanprodan/podinfo:5.0.0 -> ghcr.io/stefanprodan/podinfo:5.0.3\n"
    )


def test_which_files_are_looked_at():
    paths = [
        "clusters/prod/flux-system/images.yaml",
        "clusters/prod/flux-system/gotk-components.yaml",
        "clusters/prod/flux-system/README.md",
        "clusters/staging/image-policy.yml",
        "infra/a/b/image-repo.yaml",
        "infra/image-x.yaml",
        "infra/other.yaml",
        "top.yaml",
    ]
    assert manifest_paths(None, paths) == sorted(p for p in paths if not p.endswith(".md"))
    assert manifest_paths(["clusters/prod/flux-system", "infra/**/image-*.yaml"], paths) == [
        "clusters/prod/flux-system/gotk-components.yaml",
        "clusters/prod/flux-system/images.yaml",
        "infra/a/b/image-repo.yaml",
        "infra/image-x.yaml",
    ]
    assert manifest_paths(["clusters/*/image-*.yml", "./top.yaml"], paths) == [
        "clusters/staging/image-policy.yml",
        "top.yaml",
    ]
    assert manifest_paths(["."], paths) == manifest_paths(None, paths)


def test_the_screen_passes_objects_not_the_crds_that_name_the_group():
    assert mentions_flux_objects(flux().encode())
    assert mentions_flux_objects(b"- apiVersion: 'image.toolkit.fluxcd.io/v1beta2'\n") is False
    assert mentions_flux_objects(b'  apiVersion: "image.toolkit.fluxcd.io/v1"\n')
    crd = b"kind: CustomResourceDefinition\nspec:\n  group: image.toolkit.fluxcd.io\n"
    assert not mentions_flux_objects(crd)
    assert not mentions_flux_objects(b"apiVersion: apps/v1\nkind: Deployment\n")


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("fluxManifests: [/etc]", "must be a path inside the repository"),
        ("fluxManifests: [../other]", "points outside the repository"),
        ("fluxManifests: ['']", "must not be empty"),
        ("fluxManifests: clusters", "expected a list of strings"),
    ],
)
def test_flux_manifests_entries_are_checked(bad, message):
    _config, problems = load_config(f"version: 1\n{bad}\n")
    (problem,) = problems
    assert problem.line == 2 and message in problem.message


def test_a_manifest_that_is_not_yaml_is_one_error_at_its_line():
    _config, problems = load({PATH: "apiVersion: image.toolkit.fluxcd.io/v1\nkind: [\n"})
    (problem,) = problems
    assert problem.path == PATH and problem.line == 3 and "invalid YAML" in problem.message


def test_sources_are_stored_whole_and_a_config_alone_as_itself():
    alone = ConfigSources.of(b"version: 1\n", {})
    assert alone.encode() == b"version: 1\n"  # what a database from before holds
    assert ConfigSources.decode(b"version: 1\n") == alone
    both = ConfigSources.of(b"version: 1\n", {"b.yaml": b"x\x00y", "a.yaml": b""})
    assert ConfigSources.decode(both.encode()) == both
    assert both.manifests[0][0] == "a.yaml"
    only = ConfigSources.of(None, {"a.yaml": b"apiVersion: x\n"})
    assert ConfigSources.decode(only.encode()) == only
    config, problems = ConfigSources.of(None, {PATH: flux().encode()}).load()
    assert set(config.automations) == {"flux-system"} and not errors(problems)


def test_the_identity_is_the_config_blob_alone_when_no_manifests_are_looked_for():
    assert sources_identity("abc", None) == "abc"
    assert sources_identity(None, None) is None
    # Manifests looked for and none found: still not the config alone (one may come).
    assert sources_identity("abc", {}).startswith("sources:")
    assert sources_identity(None, {}) != sources_identity("abc", {})
    one = sources_identity("abc", {"a.yaml": "1"})
    assert one.startswith("sources:")
    assert one != sources_identity("abc", {"a.yaml": "2"})
    assert one != sources_identity(None, {"a.yaml": "1"})
    assert one == sources_identity("abc", {"a.yaml": "1"})


def test_globs_cannot_take_long_and_their_number_is_bounded():
    deep = "/".join(["d"] * 30) + "/y.yaml"
    stacked = "**/" * 12 + "x.yaml"
    assert manifest_paths([stacked, "**/*/**/*/**/y.yaml"], [deep]) == [deep]  # RE2: linear
    _config, problems = load_config(f"version: 1\nfluxManifests: ['{stacked}']\n")
    (problem,) = problems
    assert "too many '**'" in problem.message


def test_a_config_file_that_mimics_a_stored_bundle_is_a_file_with_an_error():
    forged = b'\x00image-automation config sources 1\n{"config": null, "manifests": [["x.yaml", 5]]}\n'
    encoded = ConfigSources(forged).encode()
    assert encoded != forged and ConfigSources.decode(encoded) == ConfigSources(forged)
    config, problems = ConfigSources.decode(encoded).load()
    assert config.automations == {} and problems and problems[0].is_error
    # Bytes that look like a bundle but are not one are read as a config file, not a crash.
    config, problems = ConfigSources.decode(forged[:40] + b"{not json").load()
    assert problems and problems[0].is_error


def test_an_object_with_any_error_is_dropped_not_loaded_half():
    text = flux().replace("  namespace: flux-system\nspec:\n  image", "  namespace: 5\nspec:\n  image", 1)
    config, problems = load({PATH: text})
    assert "podinfo" not in config.repositories
    assert any("metadata.namespace: expected a string" in p.message for p in errors(problems))


def test_a_go_comment_is_a_go_template_and_a_refspec_alone_still_commits_directly():
    automation = AUTOMATION.format(api="v1", ns="").replace(
        "messageTemplate: '{{range .Changed.Changes}}{{print .OldValue}} -> "
        "{{println .NewValue}}{{end}}'",
        "messageTemplate: '{{/* why */}}update'",
    ).replace("      branch: flux-image-updates", "      refspec: refs/heads/main:refs/heads/auto")
    config, problems = load({PATH: flux(namespace="", automation=automation)})
    assert errors(problems) == []
    automation_config = config.automations["flux-system"]
    assert automation_config.message_template == "{# why #}update"
    assert automation_config.push_branch == "main"  # Flux pushes to the checkout branch
