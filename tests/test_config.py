"""The repo config file: design §2's example, one test per rule with exact positions."""

from __future__ import annotations

import textwrap
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import (
    AutomationConfig,
    ImagePolicyConfig,
    LabelSelector,
    is_valid_branch_name,
    load_config,
    parse_duration,
)
from bot.config.yaml import MAX_CONFIG_BYTES
from bot.imageref import ImageRef
from bot.policy.model import DEFAULT_EXCLUSION_LIST, PolicySpec
from bot.problems import Problem

# design.md §2, verbatim.
DESIGN_EXAMPLE = r"""version: 1
namespace: flux-system          # namespace that markers name ("ns:policy"); default "default"
imageRepositories:
  - name: podinfo
    image: ghcr.io/stefanprodan/podinfo
    interval: 5m                 # scan period (default 5m)
    exclusionList: ['^.*\.sig$'] # default as shown
    insecure: false              # plain http (default: only for localhost/loopback)
    credentials: ghcr-readonly   # name of operator-provided credentials; never secrets in the repo
imagePolicies:
  - name: podinfo
    imageRepositoryRef: podinfo  # a name above (Flux's {name: ...} form accepted too)
    labels: {app: podinfo}
    policy:
      semver: {range: '>=5.0.0 <6'}    # or alphabetical: {order: asc|desc}
                                       # or numerical: {order: asc|desc}
                                       # or rolling: {tag: latest}   (tracks the tag's digest)
    filterTags: {pattern: '^main-[a-f0-9]+-(?P<ts>[0-9]+)$', extract: '$ts'}
    aliasOf: latest              # optional: only tags that currently share `latest`'s digest
    digestReflectionPolicy: Never  # Never | IfNotPresent | Always
    interval: 10m                # with Always
imageUpdateAutomations:
  - name: podinfo-update
    interval: 30m
    git:
      checkout: {ref: {branch: main}}          # default: the repository's default branch
      commit:
        author: {name: image-automation, email: bot@example.com}
        messageTemplate: '...'                 # Jinja2; data below
        messageTemplateValues: {cluster: prod}
      push: {branch: image-automation/podinfo-update}   # default: image-automation/<name>
    update: {path: ./clusters/prod, strategy: Setters}
    policySelector: {matchLabels: {app: podinfo}, matchExpressions: []}
    pullRequest:
      title: 'Update images ({{ AutomationObject }})'  # Jinja2
      bodyTemplate: '...'                      # Jinja2; default: the change list of §4
      labels: [image-automation]
      draft: false
"""

REPO = """\
version: 1
imageRepositories:
  - name: app
    image: ghcr.io/org/app
"""


def load(text: str):
    return load_config(textwrap.dedent(text))


def only_error(text: str) -> str:
    """The single error of ``text``, without the path prefix: ``line:col: message``."""
    _config, errors = load(text)
    assert len(errors) == 1, [str(e) for e in errors]
    return str(errors[0]).removeprefix(".github/image-automation.yml:")


def policy_text(body: str) -> str:
    return REPO + "imagePolicies:\n" + textwrap.indent(textwrap.dedent(body), "  ")


def test_design_example_loads_with_the_right_values():
    config, errors = load_config(DESIGN_EXAMPLE)
    assert errors == []
    assert config.version == 1
    assert config.namespace == "flux-system"

    repo = config.repositories["podinfo"]
    assert repo.image == "ghcr.io/stefanprodan/podinfo"
    assert repo.ref == ImageRef("ghcr.io", "stefanprodan/podinfo")
    assert repo.interval == 300.0
    assert repo.timeout is None
    assert repo.exclusion_list == (r"^.*\.sig$",)
    assert repo.insecure is False
    assert repo.credentials == "ghcr-readonly"
    assert repo.line == 4

    policy = config.policies["podinfo"]
    assert policy == ImagePolicyConfig(
        name="podinfo",
        repository="podinfo",
        labels={"app": "podinfo"},
        spec=PolicySpec(
            kind="semver",
            semver_range=">=5.0.0 <6",
            filter_pattern="^main-[a-f0-9]+-(?P<ts>[0-9]+)$",
            filter_extract="$ts",
            alias_of="latest",
            digest_reflection="Never",
        ),
        interval=None,  # only used with Always
        line=11,
        namespace="flux-system",  # the config's
    )

    auto = config.automations["podinfo-update"]
    assert auto.interval == 1800.0
    assert auto.checkout_branch == "main"
    assert auto.push_branch == "image-automation/podinfo-update"
    assert (auto.author_name, auto.author_email) == ("image-automation", "bot@example.com")
    assert auto.message_template == "..."
    assert auto.message_template_values == {"cluster": "prod"}
    assert auto.update_path == "clusters/prod"
    assert auto.strategy == "Setters"
    assert auto.policy_selector == LabelSelector({"app": "podinfo"}, [])
    assert auto.pr_title == "Update images ({{ AutomationObject }})"
    assert auto.pr_body_template == "..."
    assert auto.pr_labels == ["image-automation"]
    assert auto.pr_draft is False
    assert auto.line == 23
    assert auto.selects(policy)


def test_defaults():
    config, errors = load(
        REPO
        + textwrap.dedent(
            """\
        imagePolicies:
          - name: app
            imageRepositoryRef: {name: app}
            policy: {alphabetical: {}}
        imageUpdateAutomations:
          - name: auto
        """
        )
    )
    assert errors == []
    assert config.namespace == "default"
    repo = config.repositories["app"]
    assert (repo.interval, repo.timeout, repo.insecure, repo.credentials) == (
        300.0,
        None,
        None,
        None,
    )
    assert repo.exclusion_list == DEFAULT_EXCLUSION_LIST
    policy = config.policies["app"]
    assert policy.spec == PolicySpec(kind="alphabetical", order="asc")
    assert policy.labels == {} and policy.interval is None
    auto = config.automations["auto"]
    assert auto == AutomationConfig(name="auto", line=10)
    assert auto.push_branch == "image-automation/auto"
    assert auto.checkout_branch is None
    assert auto.author_name == "image-automation[bot]" and auto.author_email == ""
    assert auto.update_path == "." and auto.policy_selector is None
    assert auto.selects(policy)


def test_all_policy_kinds():
    config, errors = load(
        policy_text(
            """\
            - name: s
              imageRepositoryRef: app
              policy: {semver: {range: '~1.2'}}
            - name: a
              imageRepositoryRef: app
              policy: {alphabetical: {order: desc}}
            - name: n
              imageRepositoryRef: app
              policy: {numerical: {order: asc}}
              filterTags: {pattern: '^[0-9]+$'}
            - name: r
              imageRepositoryRef: app
              policy: {rolling: {tag: latest}}
              digestReflectionPolicy: Always
            - name: r2
              imageRepositoryRef: app
              policy: {rolling: {tag: stable}}
              digestReflectionPolicy: Always
              interval: 1h30m
            - name: bare
              imageRepositoryRef: app
              policy:
                alphabetical:
              filterTags: {}
            """
        )
    )
    assert errors == []
    specs = {name: p.spec for name, p in config.policies.items()}
    assert specs["s"] == PolicySpec(kind="semver", semver_range="~1.2")
    assert specs["a"] == PolicySpec(kind="alphabetical", order="desc")
    assert specs["n"] == PolicySpec(kind="numerical", filter_pattern="^[0-9]+$")
    assert specs["r"] == PolicySpec(
        kind="rolling", rolling_tag="latest", digest_reflection="Always"
    )
    assert config.policies["r"].interval == 600.0  # Flux's default with Always
    assert config.policies["r2"].interval == 5400.0
    assert specs["bare"] == PolicySpec(kind="alphabetical", filter_pattern="")


# --- file-level problems -----------------------------------------------------------------------


def test_invalid_yaml_gives_one_error_at_the_parser_position():
    assert only_error("version: 1\nimagePolicies: [a, b\n") == (
        "3:1: invalid YAML: expected ',' or ']', but got '<stream end>' "
        "(while parsing a flow sequence)"
    )


def test_top_level_must_be_a_mapping():
    assert only_error("- a\n- b\n") == "1:1: the file: expected a mapping, got a list"


def test_empty_file():
    assert only_error("# nothing\n") == "1:1: the file is empty; start it with 'version: 1'"


def test_two_documents():
    assert only_error("version: 1\n---\nversion: 1\n").startswith("2:1: invalid YAML:")


def test_binary_garbage():
    _config, errors = load_config(b"version: 1\n\xff\xfe\x00\x01garbage")
    assert [str(e) for e in errors] == [
        ".github/image-automation.yml:2:1: the file is not UTF-8 text (byte 0xff); save it as UTF-8"
    ]


def test_control_characters():
    _config, errors = load_config("version: 1\nnamespace: a\x00b\n")
    assert [(e.line, e.column) for e in errors] == [(2, 13)]
    assert "not allowed in YAML" in errors[0].message


def test_bytes_with_bom_are_fine():
    config, errors = load_config(b"\xef\xbb\xbf" + REPO.encode())
    assert errors == [] and "app" in config.repositories


def test_raw_bytes_not_utf8_are_one_problem_at_the_first_bad_byte():
    # The server hands over the blob's bytes as they are: a Latin-1 'é' is not replaced.
    data = "version: 1\nnamespace: caf\xe9  # caf\xe9\n".encode("latin-1")
    config, errors = load_config(data, path="sub/dir/config.yml")
    assert config.namespace == "default"
    assert errors == [
        Problem(
            "sub/dir/config.yml",
            2,
            15,
            "the file is not UTF-8 text (byte 0xe9); save it as UTF-8",
        )
    ]
    assert errors[0].is_error
    assert str(errors[0]) == (
        "sub/dir/config.yml:2:15: the file is not UTF-8 text (byte 0xe9); save it as UTF-8"
    )


def test_bytes_and_text_load_alike():
    text = DESIGN_EXAMPLE + "bogus: 1\n"
    assert load_config(text.encode()) == load_config(text)


def test_config_remembers_its_path_for_later_problems():
    assert load_config(REPO)[0].path == ".github/image-automation.yml"
    assert load_config(REPO, path="x.yml")[0].path == "x.yml"
    assert load_config(b"\xff", path="x.yml")[0].path == "x.yml"


def test_billion_laughs_is_refused_fast():
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        refs = ",".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    text = "\n".join(lines) + "\nversion: 1\nimageRepositories: *a9\n"
    start = time.monotonic()
    config, errors = load_config(text)
    assert time.monotonic() - start < 2
    assert config.repositories == {}
    assert len(errors) == 1
    assert "aliases here expand to more than" in errors[0].message


def test_recursive_alias_is_refused():
    _config, errors = load_config("version: 1\nimageRepositories: &a [*a]\n")
    assert len(errors) == 1 and "alias refers to a value that contains it" in errors[0].message


def test_small_aliases_are_fine():
    config, errors = load(
        """\
        version: 1
        imageRepositories:
          - &base {name: a, image: ghcr.io/org/a, interval: 1m}
        imagePolicies:
          - name: a
            imageRepositoryRef: a
            labels: &labels {team: web}
            policy: {semver: {range: '1.x'}}
          - name: b
            imageRepositoryRef: a
            labels: *labels
            policy: {semver: {range: '2.x'}}
        """
    )
    assert errors == []
    assert config.policies["b"].labels == {"team": "web"}


def test_merge_keys_are_reported():
    _config, errors = load(
        """\
        version: 1
        imageRepositories:
          - &base {name: a, image: ghcr.io/org/a}
          - <<: *base
            name: b
        """
    )
    assert [str(e).split(":", 1)[1] for e in errors] == [
        "4:5: imageRepositories[1]: merge keys ('<<') are not supported; write the fields out",
        "4:5: imageRepositories[1]: missing 'image'",
    ]


def test_ten_megabytes_is_refused_fast():
    text = "version: 1\n" + "# padding padding padding\n" * (10 * 1024 * 1024 // 26)
    start = time.monotonic()
    _config, errors = load_config(text)
    assert time.monotonic() - start < 1
    assert len(errors) == 1
    assert errors[0].line == 1 and f"the limit is {MAX_CONFIG_BYTES} bytes" in errors[0].message


def test_deep_nesting_is_an_error_not_a_crash():
    start = time.monotonic()
    _config, errors = load_config("version: 1\nx: " + "[" * 5000 + "]" * 5000 + "\n")
    assert time.monotonic() - start < 2
    assert [str(e) for e in errors] == [
        ".github/image-automation.yml:2:53: the file is nested more than 50 levels deep; flatten it"
    ]


def test_python_tags_are_never_constructed():
    # The value is not constructed: the tag makes it "not a string".
    assert only_error(
        """\
        version: 1
        namespace: !!python/object/apply:os.system ['echo pwned']
        """
    ) == (
        "2:12: namespace: expected a string, got a value tagged "
        "'tag:yaml.org,2002:python/object/apply:os.system'"
    )


def test_duplicate_keys():
    assert (
        only_error(
            """\
        version: 1
        imageRepositories:
          - name: a
            image: ghcr.io/org/a
            image: ghcr.io/org/b
        """
        )
        == "5:5: imageRepositories[0].image: duplicate key (first at line 4); remove one"
    )


def test_duplicate_top_level_key():
    assert only_error("version: 1\nversion: 1\n") == (
        "2:1: version: duplicate key (first at line 1); remove one"
    )


# --- top level ----------------------------------------------------------------------------------


def test_version_required():
    assert (
        only_error("namespace: x\n")
        == "1:1: version: missing; add 'version: 1' at the top of the file"
    )


def test_version_must_be_1():
    assert only_error("version: 2\n") == "1:10: version: must be 1 (the only config format so far)"


def test_version_type():
    assert (
        only_error("version: '1'\n") == "1:10: version: expected a whole number, got a string ('1')"
    )


def test_unknown_top_level_key_suggests():
    assert only_error("version: 1\nimagePolicy: []\n") == (
        "2:1: imagePolicy: unknown field; expected one of version, namespace, fluxManifests, "
        "imageRepositories, imagePolicies, imageUpdateAutomations (did you mean 'imagePolicies'?)"
    )


def test_bad_namespace():
    assert only_error("version: 1\nnamespace: Flux_System\n").startswith(
        "2:12: namespace: 'Flux_System' is not a valid namespace"
    )


def test_list_sections_must_be_lists():
    assert only_error("version: 1\nimageRepositories: {name: a}\n") == (
        "2:20: imageRepositories: expected a list of entries ('- name: ...'), got a mapping"
    )


# --- imageRepositories --------------------------------------------------------------------------


def test_repository_unknown_field_and_flux_hint():
    assert only_error(REPO + "    secretRef: {name: regcred}\n") == (
        "5:5: imageRepositories[0].secretRef: unknown field; credentials never live in the "
        "repository; set 'credentials:' to the name of credentials the bot's operator provides"
    )


def test_repository_typo_suggests():
    assert only_error(REPO + "    intervall: 5m\n").endswith("(did you mean 'interval'?)")


def test_repository_image_required():
    assert only_error("version: 1\nimageRepositories:\n  - name: a\n") == (
        "3:5: imageRepositories[0]: missing 'image'"
    )


def test_repository_name_required():
    assert only_error("version: 1\nimageRepositories:\n  - image: alpine\n") == (
        "3:5: imageRepositories[0]: missing 'name'; give every entry a unique name"
    )


def test_repository_name_rules():
    assert only_error(
        "version: 1\nimageRepositories:\n  - {name: My_App, image: a/b}\n"
    ).startswith("3:12: imageRepositories[0].name: 'My_App' is not a valid name")


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (
            "https://ghcr.io/org/app",
            "image 'https://ghcr.io/org/app' should not include URL scheme; remove 'https://'",
        ),
        (
            "ghcr.io/org/app:1.0",
            "image 'ghcr.io/org/app:1.0' should not include a tag; remove ':1.0'",
        ),
        ("ghcr.io/Org/App", "could not parse reference 'ghcr.io/Org/App': repository name"),
    ],
)
def test_repository_image_validation(image, message):
    error = only_error(f"version: 1\nimageRepositories:\n  - name: a\n    image: {image}\n")
    assert error.startswith(f"4:12: imageRepositories[0].image: {message}")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5", "expected a duration like '5m' or '1h30m', got a number ('5')"),
        ("5 minutes", "'5 minutes' is not a duration; write numbers with units ms, s, m or h"),
        ("1d", "'1d' is not a duration"),
        ("0s", "'0s' must be longer than zero"),
        ("-5m", "'-5m' is not a duration"),
    ],
)
def test_bad_durations(value, message):
    assert only_error(REPO + f"    interval: {value}\n").startswith(
        f"5:15: imageRepositories[0].interval: {message}"
    )


def test_durations():
    assert parse_duration("1h30m") == 5400.0
    assert parse_duration("1.5s") == 1.5
    assert parse_duration("250ms") == 0.25
    assert parse_duration("1h", hours=False) is None
    assert parse_duration("") is None
    assert parse_duration("5m ") is None


def test_timeout_has_no_hours_and_is_at_least_one_second():
    assert only_error(REPO + "    timeout: 1h\n").startswith(
        "5:14: imageRepositories[0].timeout: '1h' is not a duration; write numbers with units "
        "ms, s or m"
    )
    config, errors = load(REPO + "    timeout: 100ms\n")
    assert errors == [] and config.repositories["app"].timeout == 1.0
    config, errors = load(REPO + "    timeout: 1m30s\n")
    assert config.repositories["app"].timeout == 90.0


def test_exclusion_list():
    config, errors = load(REPO + "    exclusionList: ['^sha256-', '\\.att$']\n")
    assert errors == []
    assert config.repositories["app"].exclusion_list == ("^sha256-", "\\.att$")
    config, errors = load(REPO + "    exclusionList: []\n")
    assert config.repositories["app"].exclusion_list == DEFAULT_EXCLUSION_LIST
    error = only_error(REPO + "    exclusionList: ['ok', '(?<=x)y']\n")
    assert error.startswith(
        "5:27: imageRepositories[0].exclusionList[1]: invalid regular expression pattern '(?<=x)y'"
    )
    error = only_error(REPO + "    exclusionList: [" + ", ".join(["a"] * 26) + "]\n")
    assert (
        error == "5:20: imageRepositories[0].exclusionList: has 26 patterns; at most 25 are allowed"
    )


def test_insecure_must_be_boolean():
    # YAML 1.2: "yes" is a string, not a boolean.
    assert only_error(REPO + "    insecure: yes\n") == (
        "5:15: imageRepositories[0].insecure: expected true or false, got a string ('yes')"
    )


def test_duplicate_repository_names():
    assert only_error(REPO + "  - name: app\n    image: ghcr.io/org/other\n") == (
        "5:11: imageRepositories[1].name: 'app' is already used in imageRepositories (line 3); "
        "names must be unique, rename one"
    )


# --- imagePolicies ------------------------------------------------------------------------------


def test_policy_missing_repository():
    error = only_error(
        policy_text(
            """\
            - name: p
              imageRepositoryRef: ap
              policy: {semver: {range: '1.x'}}
            """
        )
    )
    assert error == (
        "7:25: imagePolicies[0].imageRepositoryRef: no image repository named 'ap' "
        "(did you mean 'app'?); add it under imageRepositories or fix the name"
    )


def test_policy_ref_mapping_form_and_namespace():
    config, errors = load(
        policy_text(
            """\
            - name: p
              imageRepositoryRef: {name: app, namespace: default}
              policy: {semver: {range: '1.x'}}
            """
        )
    )
    assert errors == [] and config.policies["p"].repository == "app"
    assert only_error(
        policy_text(
            """\
            - name: p
              imageRepositoryRef: {name: app, namespace: other}
              policy: {semver: {range: '1.x'}}
            """
        )
    ) == (
        "7:48: imagePolicies[0].imageRepositoryRef.namespace: cross-namespace references are "
        "not supported; remove it"
    )


def test_policy_needs_exactly_one_kind():
    assert only_error(
        policy_text(
            """\
            - name: p
              imageRepositoryRef: app
              policy: {semver: {range: '1.x'}, alphabetical: {}}
            """
        )
    ) == (
        "8:52: imagePolicies[0].policy.alphabetical: only one of semver, alphabetical, numerical "
        "or rolling may be set; found semver and alphabetical, keep one"
    )
    assert only_error(
        policy_text(
            """\
            - name: p
              imageRepositoryRef: app
              policy: {}
            """
        )
    ).startswith("8:13: imagePolicies[0].policy: empty; choose one of semver")
    assert only_error(
        policy_text(
            """\
            - name: p
              imageRepositoryRef: app
            """
        )
    ).startswith("6:5: imagePolicies[0].policy: missing; choose one of semver")


def test_policy_order_enum():
    assert (
        only_error(
            policy_text(
                """\
            - name: p
              imageRepositoryRef: app
              policy: {numerical: {order: ASC}}
            """
            )
        )
        == "8:33: imagePolicies[0].policy.numerical.order: 'ASC' is not allowed; expected one of asc, desc"
    )


def test_policy_digest_reflection_enum():
    assert only_error(
        policy_text(
            """\
            - name: p
              imageRepositoryRef: app
              policy: {semver: {range: '1.x'}}
              digestReflectionPolicy: always
            """
        )
    ) == (
        "9:29: imagePolicies[0].digestReflectionPolicy: 'always' is not allowed; expected one of "
        "Never, IfNotPresent, Always"
    )


def test_policy_invalid_semver_range():
    assert only_error(
        policy_text(
            """\
            - name: p
              imageRepositoryRef: app
              policy:
                semver:
                  range: '>>1'
            """
        )
    ) == (
        '10:16: imagePolicies[0].policy.semver.range: invalid semver range ">>1": '
        "improper constraint: \">>1\"; write a range such as '>=1.2.0 <2.0.0' or '~1.2'"
    )


def test_policy_invalid_filter_pattern():
    error = only_error(
        policy_text(
            """\
            - name: p
              imageRepositoryRef: app
              policy: {alphabetical: {}}
              filterTags:
                pattern: '^v(?=[0-9])'
            """
        )
    )
    assert error.startswith(
        "10:16: imagePolicies[0].filterTags.pattern: invalid regular expression pattern "
        "'^v(?=[0-9])'"
    )


def test_policy_rolling_needs_a_valid_tag():
    assert only_error(
        policy_text(
            """\
            - name: p
              imageRepositoryRef: app
              policy: {rolling: {tag: -latest}}
            """
        )
    ).startswith("8:29: imagePolicies[0].policy.rolling.tag: '-latest' is not an image tag")


def test_policy_rolling_with_alias_points_at_alias():
    error = only_error(
        policy_text(
            """\
            - name: p
              imageRepositoryRef: app
              policy: {rolling: {tag: latest}}
              aliasOf: stable
            """
        )
    )
    assert error.startswith("9:14: imagePolicies[0].aliasOf: aliasOf cannot be combined")


def test_policy_labels_must_be_strings():
    assert (
        only_error(
            policy_text(
                """\
            - name: p
              imageRepositoryRef: app
              labels: {tier: 1}
              policy: {semver: {range: '1.x'}}
            """
            )
        )
        == "8:20: imagePolicies[0].labels.tier: expected a string, got a number ('1'); quote it"
    )


def test_policy_label_key_rules():
    assert only_error(
        policy_text(
            """\
            - name: p
              imageRepositoryRef: app
              labels: {'bad key': x}
              policy: {semver: {range: '1.x'}}
            """
        )
    ).startswith("8:14: imagePolicies[0].labels.bad key: 'bad key' is not a valid label key")


def test_policy_whose_repository_is_broken_is_dropped_with_a_reason():
    _config, errors = load(
        """\
        version: 1
        imageRepositories:
          - name: app
            image: ghcr.io/org/app:latest
        imagePolicies:
          - name: p
            imageRepositoryRef: app
            policy: {semver: {range: '1.x'}}
        """
    )
    assert [(e.line, e.column) for e in errors] == [(4, 12), (7, 25)]
    assert errors[1].message == (
        "imagePolicies[0].imageRepositoryRef: image repository 'app' has errors (reported "
        "above); this policy is skipped until they are fixed"
    )


def test_one_bad_policy_does_not_stop_the_others():
    config, errors = load(
        policy_text(
            """\
            - name: good
              imageRepositoryRef: app
              policy: {semver: {range: '1.x'}}
            - name: bad
              imageRepositoryRef: app
              policy: {semver: {range: 'not a range'}}
            - name: also-good
              imageRepositoryRef: app
              policy: {alphabetical: {order: desc}}
            - name: bad-too
              imageRepositoryRef: app
              policy: {numerical: {order: up}}
            """
        )
        + textwrap.dedent(
            """\
        imageUpdateAutomations:
          - name: broken
            interval: soon
          - name: fine
        """
        )
    )
    assert sorted(config.policies) == ["also-good", "good"]
    assert sorted(config.automations) == ["fine"]
    assert [(e.line, e.column) for e in errors] == [(11, 30), (17, 33), (20, 15)]
    assert errors[0].message.startswith("imagePolicies[1].policy.semver.range: invalid semver")
    assert errors[1].message.startswith("imagePolicies[3].policy.numerical.order")
    assert errors[2].message.startswith("imageUpdateAutomations[0].interval")


# --- imageUpdateAutomations ---------------------------------------------------------------------


def automation(body: str) -> str:
    return "version: 1\nimageUpdateAutomations:\n" + textwrap.indent(textwrap.dedent(body), "  ")


def test_automation_checkout_only_branch():
    assert only_error(
        automation(
            """\
            - name: a
              git:
                checkout: {ref: {tag: v1}}
            """
        )
    ) == (
        "5:24: imageUpdateAutomations[0].git.checkout.ref.tag: unknown field; only 'branch' is "
        "supported: the bot proposes changes to a branch"
    )


@pytest.mark.parametrize(
    "branch", ["foo bar", "foo..bar", "-x", "x/", "a.lock", "a//b", "x~1", "@", "HEAD", ".x"]
)
def test_automation_push_branch_must_be_a_ref_name(branch):
    error = only_error(
        automation(
            f"""\
            - name: a
              git:
                push: {{branch: '{branch}'}}
            """
        )
    )
    assert error.startswith(
        f"5:22: imageUpdateAutomations[0].git.push.branch: '{branch}' is not a valid git branch name"
    )


def test_branch_names():
    assert is_valid_branch_name("image-automation/podinfo-update")
    assert is_valid_branch_name("main")
    assert not is_valid_branch_name("a:b")
    assert not is_valid_branch_name("a\x01b")


def test_push_branch_may_equal_checkout_branch():
    config, errors = load(
        automation(
            """\
            - name: direct
              git:
                checkout: {ref: {branch: main}}
                push: {branch: main}
            """
        )
    )
    assert errors == []
    auto = config.automations["direct"]
    assert auto.checkout_branch == auto.push_branch == "main"


def test_default_push_branch_must_be_valid():
    assert only_error(automation("- name: x.lock\n")) == (
        "3:11: imageUpdateAutomations[0].name: the default push branch 'image-automation/x.lock' "
        "is not a valid git branch name; set git.push.branch"
    )
    config, errors = load(automation("- name: x.lock\n  git: {push: {branch: bot/x}}\n"))
    assert errors == [] and config.automations["x.lock"].push_branch == "bot/x"


def test_author_email_required():
    assert only_error(
        automation(
            """\
            - name: a
              git:
                commit:
                  author: {name: bot}
            """
        )
    ) == (
        "6:17: imageUpdateAutomations[0].git.commit.author: missing 'email'; an author needs an "
        "email address"
    )
    assert only_error(
        automation(
            """\
            - name: a
              git:
                commit:
                  author: {email: not-an-email}
            """
        )
    ).startswith("6:25: imageUpdateAutomations[0].git.commit.author.email: 'not-an-email'")


def test_author_name_defaults_when_only_email_given():
    config, errors = load(
        automation("- name: a\n  git: {commit: {author: {email: me@example.com}}}\n")
    )
    assert errors == []
    auto = config.automations["a"]
    assert (auto.author_name, auto.author_email) == ("image-automation[bot]", "me@example.com")


@pytest.mark.parametrize(
    ("path", "expected"),
    [("./clusters/prod", "clusters/prod"), (".", "."), ("apps/", "apps"), ("a/../b", "b")],
)
def test_update_path_normalised(path, expected):
    config, errors = load(automation(f"- name: a\n  update: {{path: '{path}'}}\n"))
    assert errors == [] and config.automations["a"].update_path == expected


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("../other", "'../other' points outside the repository; remove the '..'"),
        ("a/../../b", "'a/../../b' points outside the repository"),
        ("/etc", "'/etc' must be a relative path inside the repository"),
    ],
)
def test_update_path_must_stay_inside(path, message):
    assert only_error(automation(f"- name: a\n  update: {{path: '{path}'}}\n")).startswith(
        f"4:20: imageUpdateAutomations[0].update.path: {message}"
    )


def test_update_strategy_enum():
    assert only_error(automation("- name: a\n  update: {strategy: Kustomize}\n")) == (
        "4:24: imageUpdateAutomations[0].update.strategy: 'Kustomize' is not allowed; "
        "expected one of Setters"
    )


def test_template_syntax_is_checked_with_go_hint():
    error = only_error(
        automation(
            """\
            - name: a
              pullRequest:
                title: 'Update {{ printf "%s" .AutomationObject }}'
            """
        )
    )
    assert error.startswith("5:14: imageUpdateAutomations[0].pullRequest.title: template error")
    assert "a Flux Go template the bot cannot translate" in error
    assert "Jinja2 writes {{ .AutomationObject }} as {{ AutomationObject }}" in error


def test_flux_go_templates_of_the_documented_forms_are_read_as_jinja2():
    config, errors = load(
        automation(
            """\
            - name: a
              git:
                commit:
                  messageTemplate: |
                    Update {{ .AutomationObject }}
                    {{ range .Changed.Changes }}{{ print .OldValue }} -> {{ println .NewValue }}{{ end }}
              pullRequest:
                title: 'Update {{ .AutomationObject }}'
            """
        )
    )
    assert errors == []
    automation_config = config.automations["a"]
    assert automation_config.pr_title == "Update {{ AutomationObject }}"
    assert automation_config.message_template == (
        "Update {{ AutomationObject }}\n"
        '{% for _dot1 in Changed.Changes %}{{ _dot1.OldValue }} -> {{ _dot1.NewValue ~ "\\n" }}'
        "{% endfor %}\n"
    )


def test_message_template_block():
    config, errors = load(
        automation(
            """\
            - name: a
              git:
                commit:
                  messageTemplate: |
                    Update images
                    {% for change in Changed.Changes %}
                    - {{ change.OldValue }} -> {{ change.NewValue }}
                    {% endfor %}
            """
        )
    )
    assert errors == []
    assert config.automations["a"].message_template.startswith("Update images\n{% for")


def test_pull_request_fields():
    config, errors = load(
        automation("- name: a\n  pullRequest: {labels: [deps, images], draft: true}\n")
    )
    assert errors == []
    assert config.automations["a"].pr_labels == ["deps", "images"]
    assert config.automations["a"].pr_draft is True
    assert only_error(automation("- name: a\n  pullRequest: {draft: 'no'}\n")) == (
        "4:26: imageUpdateAutomations[0].pullRequest.draft: expected true or false, "
        "got a string ('no')"
    )


def test_selector_expressions():
    config, errors = load(
        automation(
            """\
            - name: a
              policySelector:
                matchLabels: {team: web}
                matchExpressions:
                  - {key: env, operator: In, values: [prod, staging]}
                  - {key: legacy, operator: DoesNotExist}
            """
        )
    )
    assert errors == []
    selector = config.automations["a"].policy_selector
    assert selector == LabelSelector(
        {"team": "web"}, [("env", "In", ("prod", "staging")), ("legacy", "DoesNotExist", ())]
    )
    assert selector.matches({"team": "web", "env": "prod"})
    assert not selector.matches({"team": "web", "env": "dev"})
    assert not selector.matches({"team": "web", "env": "prod", "legacy": "yes"})
    assert not selector.matches({"env": "prod"})


def test_selector_errors():
    assert only_error(
        automation(
            """\
            - name: a
              policySelector:
                matchExpressions:
                  - {key: env, operator: Equals, values: [x]}
            """
        )
    ) == (
        "6:32: imageUpdateAutomations[0].policySelector.matchExpressions[0].operator: 'Equals' "
        "is not allowed; expected one of In, NotIn, Exists, DoesNotExist"
    )
    assert only_error(
        automation(
            """\
            - name: a
              policySelector:
                matchExpressions:
                  - {key: env, operator: In}
            """
        )
    ) == (
        "6:11: imageUpdateAutomations[0].policySelector.matchExpressions[0]: operator In needs "
        "a non-empty 'values' list"
    )


@pytest.mark.parametrize(
    ("operator", "values", "labels", "expected"),
    [
        ("In", ("a",), {"k": "a"}, True),
        ("In", ("a",), {}, False),
        ("NotIn", ("a",), {}, True),
        ("NotIn", ("a",), {"k": "a"}, False),
        ("NotIn", ("a",), {"k": "b"}, True),
        ("Exists", (), {"k": ""}, True),
        ("Exists", (), {}, False),
        ("DoesNotExist", (), {}, True),
        ("DoesNotExist", (), {"k": "x"}, False),
    ],
)
def test_label_selector_semantics(operator, values, labels, expected):
    assert LabelSelector({}, [("k", operator, values)]).matches(labels) is expected


def test_empty_selector_matches_everything():
    assert LabelSelector().matches({}) and LabelSelector().matches({"a": "b"})


def test_flux_object_pasted_whole_gets_a_hint():
    _config, errors = load(
        """\
        version: 1
        imageRepositories:
          - metadata: {name: app}
            spec: {image: ghcr.io/org/app}
        """
    )
    assert [(e.line, e.column) for e in errors] == [(3, 5), (3, 5), (3, 5), (4, 5)]
    messages = " | ".join(e.message for e in errors)
    assert (
        "imageRepositories[0].metadata: unknown field; this looks like a Flux object: " in messages
    )
    assert "imageRepositories[0].spec: unknown field; this looks like a Flux object: " in messages


def test_errors_are_sorted_and_formatted():
    _config, errors = load_config("version: 3\nbogus: 1\n", path="x.yml")
    assert [str(e) for e in errors] == [
        "x.yml:1:10: version: must be 1 (the only config format so far)",
        "x.yml:2:1: bogus: unknown field; expected one of version, namespace, fluxManifests, "
        "imageRepositories, imagePolicies, imageUpdateAutomations",
    ]
    assert Problem("p", 3, 4, "m").__str__() == "p:3:4: m"


def test_many_errors_are_capped():
    items = "".join(f"  - name: r{i}\n    image: 'ghcr.io/x/Y{i}'\n" for i in range(150))
    _config, errors = load_config("version: 1\nimageRepositories:\n" + items)
    assert len(errors) == 101
    assert errors[-1].message == "50 more errors not shown; fix these first"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\x00",
        "version",
        "[",
        "{a: [}",
        "version: 1\nimageRepositories: [[]]\n",
        "version: 1\nimagePolicies: [{name: p, imageRepositoryRef: [], policy: []}]\n",
        "version: 1\nimageUpdateAutomations: [{name: a, git: [], update: 1, pullRequest: x}]\n",
        "version: 1\nimageUpdateAutomations: [{name: {a: b}}]\n",
        "? [a]\n: b\n",
        "version: 1\nimageRepositories: [{name: a, image: !!binary aGVsbG8=}]\n",
        "version: 1\nimageRepositories:\n  - {? [x] : y}\n",
    ],
)
def test_garbage_never_raises(text):
    config, errors = load_config(text)
    assert errors
    assert all(e.line >= 1 and e.column >= 1 for e in errors)
    assert config.policies == {} and config.automations == {}


_yamlish = st.lists(
    st.sampled_from(
        list("abv:-[]{},'\"&*!#|>? \n\t1.")
        + ["version: 1\n", "name: a", "image: ", "imagePolicies:\n", "  - ", "policy: "]
    ),
    max_size=60,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_yamlish, st.binary(max_size=80)))
def test_arbitrary_input_never_raises_or_hits_an_internal_error(data):
    _config, errors = load_config(data)
    assert all(e.line >= 1 and e.column >= 1 for e in errors)
    assert not any("could not read the config" in e.message for e in errors)


TWO_ON_ONE_BRANCH = """\
version: 1
imageRepositories: []
imagePolicies: []
imageUpdateAutomations:
  - name: a
    git: {push: {branch: shared}}
  - name: b
    git:
      push:
        branch: shared
  - name: direct-1
    git: {checkout: {ref: {branch: main}}, push: {branch: main}}
  - name: direct-2
    git: {checkout: {ref: {branch: main}}, push: {branch: main}}
"""


def test_two_automations_proposing_on_one_push_branch_is_an_error_on_both() -> None:
    _config, errors = load_config(TWO_ON_ONE_BRANCH, default_branch="main")
    assert [(e.line, e.column) for e in errors] == [(6, 26), (10, 17)]
    assert "also the push branch of 'b' (line 7)" in errors[0].message
    assert "also the push branch of 'a' (line 5)" in errors[1].message
    # Direct commits to one branch fast-forward one after the other: no clash.
    assert not any("direct" in e.message for e in errors)


def test_push_branch_clash_needs_the_default_branch_when_no_checkout_is_given() -> None:
    # If the default branch were "shared", both would commit directly, which is fine.
    assert load_config(TWO_ON_ONE_BRANCH)[1] == []
    assert len(load_config(TWO_ON_ONE_BRANCH, default_branch="shared")[1]) == 0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{{ Changed.Changes | nosuchfilter }}", "No filter named 'nosuchfilter'"),
        ('{% include "other" %}', "cannot include, import or extend"),
        ("{{ Updated }}", "Updated"),
    ],
)
def test_a_template_the_renderer_would_refuse_is_refused_at_its_own_line(line, message):
    config, errors = load(
        automation(
            f"""\
            - name: a
              git:
                commit:
                  messageTemplate: |
                    Update
                    {line}
            """
        )
    )
    (error,) = errors
    assert error.line == 8  # the template's second line, in the config file
    assert "template error on its line 2" in error.message and message in error.message


def test_the_repository_is_due_at_its_shortest_interval_policies_with_always_included():
    config, errors = load(
        """\
        version: 1
        imageRepositories:
          - {name: app, image: ghcr.io/o/app, interval: 10m}
        imagePolicies:
          - name: app
            imageRepositoryRef: app
            digestReflectionPolicy: Always
            interval: 2m
            policy: {semver: {range: '>=1'}}
          - name: other
            imageRepositoryRef: app
            interval: 1m  # ignored without Always
            policy: {semver: {range: '>=1'}}
        imageUpdateAutomations:
          - {name: a, interval: 30m}
        """
    )
    assert errors == []
    assert config.shortest_interval() == 120.0
