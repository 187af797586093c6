"""Templates (design §4, flux-behaviour §5.4): Flux's documented examples in Jinja2, the sandbox,
the default PR body and the hidden state block."""

import hashlib

import pytest

from bot.policy.model import LatestRef
from bot.update.prbody import (
    MAX_BODY_CHARS,
    PullRequestState,
    change_set_id,
    compose_body,
    render_pr_body,
    too_long,
)
from bot.update.result import Change, ObjectId, Result
from bot.update.templates import (
    DEFAULT_COMMIT_MESSAGE,
    MAX_OUTPUT_CHARS,
    TemplateError,
    render_template,
    template_data,
)

PODINFO = "ghcr.io/stefanprodan/podinfo"


def deployment(name: str, namespace: str = "default") -> ObjectId:
    return ObjectId("apps/v1", "Deployment", namespace, name)


def docs_result() -> Result:
    """The flux-behaviour §5.4 docs example."""
    result = Result()
    policy = "flux-system:podinfo-policy"
    result.add_change(
        "foo-deployment.yaml", deployment("foo"), Change("2.2.2", "5.0.3", policy + ":tag")
    )
    result.add_change(
        "podinfo-deployment.yaml", deployment("infopod"), Change("v1.0", "5.0.3", policy + ":tag")
    )
    result.add_change(
        "podinfo-deployment.yaml",
        deployment("podinfo"),
        Change(f"{PODINFO}:4.0.6", f"{PODINFO}:5.0.3", policy),
        Change("bar", PODINFO, policy + ":name"),
        Change("4.0.6", "5.0.3", policy + ":tag"),
    )
    return result


def data_for(result: Result, automation: str = "flux-system/podinfo-update", **values: str) -> dict:
    return template_data(
        automation=automation,
        result=result,
        values=values,
        observed_policies={"podinfo-policy": LatestRef(PODINFO, "5.0.3")},
        repository="org/fleet",
    )


DOCS_TEMPLATE = """\
Automated image update

Automation name: {{ AutomationObject }}

Files:
{% for filename, _ in Changed.FileChanges.items() -%}
- {{ filename }}
{% endfor -%}

Objects:
{% for resource, changes in Changed.Objects.items() -%}
- {{ resource.Kind }} {{ resource.Name }}
  Changes:
{%- for change in changes %}
    - {{ change.OldValue }} -> {{ change.NewValue }}
{% endfor -%}
{% endfor -%}
"""

DOCS_OUTPUT = f"""\
Automated image update

Automation name: flux-system/podinfo-update

Files:
- foo-deployment.yaml
- podinfo-deployment.yaml
Objects:
- Deployment foo
  Changes:
    - 2.2.2 -> 5.0.3
- Deployment infopod
  Changes:
    - v1.0 -> 5.0.3
- Deployment podinfo
  Changes:
    - {PODINFO}:4.0.6 -> {PODINFO}:5.0.3

    - bar -> {PODINFO}

    - 4.0.6 -> 5.0.3

"""


def test_docs_example() -> None:
    # The docs show one more blank line at the very end than Go (and Jinja2) produce:
    # the template's final `-}}` / `-%}` trims the template's last newline.
    out = render_template(DOCS_TEMPLATE, data_for(docs_result()), name="t")
    assert out == DOCS_OUTPUT.removesuffix("\n")


def controller_result(new: str = "helloworld:v1.0.0") -> Result:
    result = Result()
    result.add_change(
        "deploy.yaml", deployment("test", ""), Change("helloworld:1.0.0", new, "ns:pol")
    )
    return result


def test_controller_commit_summary_example() -> None:
    template = """\
Commit summary

Automation: {{ AutomationObject }}

Files:
{% for filename, _ in Changed.FileChanges.items() -%}
- {{ filename }}
{% endfor -%}

Objects:
{% for resource, _ in Changed.Objects.items() -%}
{% if resource.Kind == "Deployment" -%}
- {{ resource.Kind | lower }} {{ resource.Name | lower }}
{% else -%}
- {{ resource.Kind }} {{ resource.Name }}
{% endif -%}
{% endfor -%}

Images:
{% for change in Changed.Changes -%}
{% if change.Setter %}- {{ change.NewValue }} ({{ change.Setter }}){% endif %}
{% endfor -%}
"""
    out = render_template(template, data_for(controller_result(), "ns/update-test"), name="t")
    assert out == (
        "Commit summary\n\nAutomation: ns/update-test\n\nFiles:\n- deploy.yaml\nObjects:\n"
        "- deployment test\nImages:\n- helloworld:v1.0.0 (ns:pol)\n"
    )


def test_file_object_tree_example() -> None:
    template = """\
Commit summary with ResultV2

Automation: {{ AutomationObject }}

{% for filename, objects in Changed.FileChanges.items() -%}
- File: {{ filename }}
{% for object, changes in objects.items() -%}
{{ "  " }}- Object: {{ object.Kind }}/{{ object.Namespace }}/{{ object.Name }}
    Changes:
{% for change in changes -%}
{{ "    " }}- {{ change.OldValue }} -> {{ change.NewValue }}
{% endfor -%}
{% endfor -%}
{% endfor -%}
"""
    out = render_template(
        template, data_for(controller_result("helloworld:1.0.1"), "test-ns/test-update"), name="t"
    )
    assert out == (
        "Commit summary with ResultV2\n\nAutomation: test-ns/test-update\n\n- File: deploy.yaml\n"
        "  - Object: Deployment//test\n    Changes:\n    - helloworld:1.0.0 -> helloworld:1.0.1\n"
    )


def test_gitea_one_liner_and_values_examples() -> None:
    data = data_for(docs_result(), cluster="prod")
    gitea = "{% for change in Changed.Changes %}{{ change.OldValue }} -> {{ change.NewValue }}\n{% endfor %}"
    assert render_template(gitea, data, name="t").splitlines() == [
        "2.2.2 -> 5.0.3",
        "v1.0 -> 5.0.3",
        f"{PODINFO}:4.0.6 -> {PODINFO}:5.0.3",
        f"bar -> {PODINFO}",
        "4.0.6 -> 5.0.3",
    ]
    values = "Automated image update by Flux for cluster {{ Values.cluster }}."
    assert (
        render_template(values, data, name="t")
        == "Automated image update by Flux for cluster prod."
    )


def test_gerrit_change_id_example() -> None:
    template = "Change-Id: I{{ (AutomationObject ~ '|' ~ Changed.Changes | join(',')) | sha256sum | truncate(40, true, '', 0) }}"
    out = render_template(template, data_for(docs_result()), name="t")
    joined = ",".join(f"{c.old_value} -> {c.new_value}" for c in docs_result().changes())
    digest = hashlib.sha256(f"flux-system/podinfo-update|{joined}".encode()).hexdigest()
    assert out == f"Change-Id: I{digest[:40]}"


def test_data_model_names() -> None:
    data = data_for(docs_result())
    template = (
        "{{ AutomationObject.Namespace }} {{ AutomationObject.Name }} {{ Repository }}\n"
        "{% for o in Changed.Objects %}{{ o.APIVersion }} {{ o }};{% endfor %}\n"
        "{{ Changed.Changes[0] }} {{ Changed.Changes[0].Setter }}\n"
        "{{ ObservedPolicies['podinfo-policy'].name }}:{{ ObservedPolicies['podinfo-policy'].tag }}"
    )
    assert render_template(template, data, name="t").splitlines() == [
        "flux-system podinfo-update org/fleet",
        "apps/v1 Deployment/default/foo;apps/v1 Deployment/default/infopod;apps/v1 Deployment/default/podinfo;",
        "2.2.2 -> 5.0.3 flux-system:podinfo-policy:tag",
        f"{PODINFO}:5.0.3",
    ]


def test_missing_values_render_empty_and_default_works() -> None:
    data = data_for(docs_result())
    assert render_template("[{{ Values.nope }}]", data, name="t") == "[]"
    assert render_template("{{ Values.nope | default('x') }}", data, name="t") == "x"


def test_default_commit_message() -> None:
    assert DEFAULT_COMMIT_MESSAGE == "Update from image update automation"
    assert (
        render_template(DEFAULT_COMMIT_MESSAGE, data_for(docs_result()), name="t")
        == DEFAULT_COMMIT_MESSAGE
    )


# --- the sandbox ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ AutomationObject.__class__ }}",
        "{{ AutomationObject.__dataclass_fields__ }}",
        "{{ range.__globals__ }}",
        "{{ self.__init__.__globals__ }}",
        "{{ Changed.FileChanges.clear() }}",
        "{% for c in ''.__class__.__mro__ %}{{ c }}{% endfor %}",
        "{% include '/etc/passwd' %}",
        "{% import 'x' as y %}",
        "{% extends 'base' %}",
        "{{ 'x' * 100000000 }}",
        "{{ 'x' | center(100000000) }}",
        "{% set ns = namespace(a='x' * 1000) %}{% for i in range(30) %}{% set ns.a = ns.a ~ ns.a %}{% endfor %}",
        "{% for i in range(100000000) %}{% endfor %}",
        "{% for i in range(9000) %}{{ '%08d' | format(i) }}{% endfor %}",
        "{{ Updated.Files }}",
        "{{ Changed.ImageResult }}",
    ],
)
def test_unsafe_templates_fail_cleanly(template: str) -> None:
    with pytest.raises(TemplateError) as info:
        render_template(template, data_for(docs_result()), name="messageTemplate")
    assert str(info.value).startswith("messageTemplate:1: ")
    assert "Traceback" not in str(info.value)


def test_functions_never_print_their_repr() -> None:
    out = render_template(
        "[{{ 'x'.upper }}][{{ range }}][{{ dict }}]", data_for(docs_result()), name="t"
    )
    assert out == "[][][]"


@pytest.mark.parametrize(
    ("template", "line", "fragment"),
    [
        ("ok\n{% for x in Changed %}\n", 2, "endfor"),
        ("a\nb\n{{ Values.x.y.z }}", 3, "has no attribute"),
        ("a\n{{ 1 / 0 }}", 2, "division by zero"),
        ("{{ }}", 1, "Expected an expression"),
        ("a\n\n\n{{ missing.attr }}", 4, "'missing' is undefined"),
    ],
)
def test_errors_name_template_and_line(template: str, line: int, fragment: str) -> None:
    with pytest.raises(TemplateError) as info:
        render_template(template, data_for(docs_result()), name="pullRequest.title")
    assert (info.value.name, info.value.line) == ("pullRequest.title", line)
    assert fragment in info.value.message
    assert str(info.value) == f"pullRequest.title:{line}: {info.value.message}"


def test_output_is_bounded() -> None:
    template = "{% for i in range(5000) %}{{ Changed.Changes[0].OldValue * 2000 }}{% endfor %}"
    with pytest.raises(TemplateError, match="output is longer than"):
        render_template(template, data_for(docs_result()), name="t")
    assert len(render_template("{{ 'x' * 1000 }}", data_for(docs_result()), name="t")) == 1000
    assert MAX_OUTPUT_CHARS == 65536


# --- PR title, body and state -----------------------------------------------------------------

DESIGN_BLOCK = f"""\
Automation: flux-system/podinfo-update

- File: podinfo-deployment.yaml
  - Object: Deployment/default/podinfo
    Changes:
    - {PODINFO}:4.0.6 -> {PODINFO}:5.0.3
    - 4.0.6 -> 5.0.3
"""


def design_result() -> Result:
    result = Result()
    result.add_change(
        "podinfo-deployment.yaml",
        deployment("podinfo"),
        Change(f"{PODINFO}:4.0.6", f"{PODINFO}:5.0.3", "flux-system:podinfo-policy"),
        Change("4.0.6", "5.0.3", "flux-system:podinfo-policy:tag"),
    )
    return result


def test_default_pr_body() -> None:
    result = design_result()
    state = PullRequestState("podinfo-update", change_set_id(result))
    body = compose_body(render_pr_body(data_for(result), body_template=None), state)
    assert body.startswith(DESIGN_BLOCK + "\n")
    assert "| `flux-system:podinfo-policy:tag` | `4.0.6` | `5.0.3` |" in body
    assert f"| `podinfo-policy` | `{PODINFO}` | `5.0.3` |" in body
    assert body.endswith(state.block() + "\n")
    assert PullRequestState.parse(body) == state


def test_default_pr_body_escapes_table_cells() -> None:
    result = Result()
    result.add_change("a.yaml", ObjectId(), Change("x|`y`", "z", "ns:p"))
    body = render_pr_body(data_for(result), body_template=None)
    assert "| `ns:p` | `x\\|'y'` | `z` |" in body


def test_custom_body_template_keeps_the_state_block() -> None:
    state = PullRequestState("a", "sha256:1", head="c0ffee")
    text = render_pr_body(data_for(design_result()), body_template="Hi {{ Repository }}")
    assert compose_body(text, state) == f"Hi org/fleet\n\n{state.block()}\n"
    with pytest.raises(TemplateError, match="^pullRequest.bodyTemplate:1: "):
        render_pr_body(data_for(design_result()), body_template="{{ x.y }}")


def test_a_body_too_long_for_github_is_shortened_at_a_line_with_a_note() -> None:
    result = Result()
    for i in range(2000):
        result.add_change(
            f"apps/app-{i:04}.yaml", ObjectId(name=f"app-{i}"), Change("a:1", "a:2", "ns:p")
        )
    text = render_pr_body(data_for(result), body_template=None)
    assert len(text) > MAX_BODY_CHARS
    state = PullRequestState("a", change_set_id(result))
    body = compose_body(text, state)
    assert len(body) <= MAX_BODY_CHARS
    assert too_long(text, state)
    kept, note = body.split("\n\n… ", 1)
    assert text.startswith(kept + "\n")
    hidden = len(text.splitlines()) - len(kept.splitlines())
    assert f"{hidden} more line(s) are left out" in note
    assert PullRequestState.parse(body) == state


def test_state_block_cannot_be_closed_by_values() -> None:
    state = PullRequestState("a --> <!-- b", "x", latest={"p": {"tag": "<!--"}})
    block = state.block()
    assert block.count("-->") == 1 and block.endswith(" -->")
    assert PullRequestState.parse(f"text\n{block}\n") == state


def test_a_version_1_block_without_version_or_head_is_read() -> None:
    body = '<!-- image-automation-bot:state {"automation":"a","changeSet":"sha256:1"} -->'
    assert PullRequestState.parse(body) == PullRequestState("a", "sha256:1", version=1)


@pytest.mark.parametrize(
    "body",
    [
        None,
        "",
        "no block",
        "<!-- image-automation-bot:state {broken -->",
        "<!-- image-automation-bot:state [1] -->",
        '<!-- image-automation-bot:state {"automation": 1, "changeSet": "x"} -->',
    ],
)
def test_parse_state_block_without_a_valid_block(body) -> None:
    assert PullRequestState.parse(body) is None


def test_parse_state_block_takes_the_last_block() -> None:
    first, second = PullRequestState("a", "1"), PullRequestState("a", "2")
    body = f"{first.block()}\nedited by a human\n{second.block()}"
    assert PullRequestState.parse(body) == second
