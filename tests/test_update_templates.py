"""Templates (design §4, flux-behaviour §5.4): Flux's documented examples in Jinja2, the sandbox,
the default PR body and the hidden state block."""

import hashlib

import pytest

from bot.policy.model import LatestRef
from bot.update.prbody import (
    change_set_id,
    default_pr_title,
    parse_state_block,
    render_pr_body,
    state_block,
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
    state = {"automation": "podinfo-update", "changeSet": change_set_id(result)}
    body = render_pr_body(data_for(result), body_template=None, state=state)
    assert body.startswith(DESIGN_BLOCK + "\n")
    assert "| `flux-system:podinfo-policy:tag` | `4.0.6` | `5.0.3` |" in body
    assert f"| `podinfo-policy` | `{PODINFO}` | `5.0.3` |" in body
    assert body.endswith(state_block(state) + "\n")
    assert parse_state_block(body) == state


def test_default_pr_body_escapes_table_cells() -> None:
    result = Result()
    result.add_change("a.yaml", ObjectId(), Change("x|`y`", "z", "ns:p"))
    body = render_pr_body(data_for(result), body_template=None, state={})
    assert "| `ns:p` | `x\\|'y'` | `z` |" in body


def test_custom_body_template_keeps_the_state_block() -> None:
    state = {"automation": "a", "changeSet": "sha256:1"}
    body = render_pr_body(
        data_for(design_result()), body_template="Hi {{ Repository }}", state=state
    )
    assert body == f"Hi org/fleet\n\n{state_block(state)}\n"
    with pytest.raises(TemplateError, match="^pullRequest.bodyTemplate:1: "):
        render_pr_body(data_for(design_result()), body_template="{{ x.y }}", state=state)


def test_state_block_cannot_be_closed_by_values() -> None:
    state = {"automation": "a --> <!-- b", "n": [1, 2]}
    block = state_block(state)
    assert block.count("-->") == 1 and block.endswith(" -->")
    assert parse_state_block(f"text\n{block}\n") == state


@pytest.mark.parametrize(
    "body",
    [
        None,
        "",
        "no block",
        "<!-- image-automation-bot:state {broken -->",
        "<!-- image-automation-bot:state [1] -->",
    ],
)
def test_parse_state_block_without_a_valid_block(body) -> None:
    assert parse_state_block(body) is None


def test_parse_state_block_takes_the_last_block() -> None:
    body = f"{state_block({'n': 1})}\nedited by a human\n{state_block({'n': 2})}"
    assert parse_state_block(body) == {"n": 2}


def test_change_set_id_is_stable_and_exact() -> None:
    a = design_result()
    b = Result()  # same changes, added in another order
    b.add_change(
        "podinfo-deployment.yaml",
        deployment("podinfo"),
        Change("4.0.6", "5.0.3", "flux-system:podinfo-policy:tag"),
        Change(f"{PODINFO}:4.0.6", f"{PODINFO}:5.0.3", "flux-system:podinfo-policy"),
    )
    assert change_set_id(a) == change_set_id(b)
    assert change_set_id(a).startswith("sha256:") and len(change_set_id(a)) == 71
    c = design_result()
    c.add_change("other.yaml", ObjectId(), Change("1", "2", "ns:p:tag"))
    d = Result()
    d.add_change(
        "podinfo-deployment.yaml",
        deployment("podinfo"),
        Change("4.0.6", "5.0.4", "flux-system:podinfo-policy:tag"),
    )
    assert len({change_set_id(a), change_set_id(c), change_set_id(d)}) == 3


def test_default_pr_title() -> None:
    assert default_pr_title("podinfo-update", design_result()) == (
        f"Update images to {PODINFO}:5.0.3 (podinfo-update)"
    )
    single = Result()
    single.add_change("a.yaml", ObjectId(), Change("1.0", "1.1", "ns:p:tag"))
    assert default_pr_title("x", single) == "Update 1.0 to 1.1"
    assert default_pr_title("x", docs_result()).endswith("(x)")
    long = Result()
    long.add_change("a.yaml", ObjectId(), Change("a", "b" * 400, "ns:p"))
    assert len(default_pr_title("x", long)) == 256


def test_cpu_bound_template_is_stopped_by_a_step_budget():
    """Loops that print nothing are bounded too, by steps (not by a clock)."""
    import sys

    from bot.update.templates import MAX_TEMPLATE_STEPS, TemplateError, render_template

    tracer_before = sys.gettrace()
    source = "{% set s = 'x' * 5000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}"
    with pytest.raises(TemplateError) as excinfo:
        render_template(source, {}, name="messageTemplate")
    assert f"more than {MAX_TEMPLATE_STEPS} steps" in str(excinfo.value)
    assert str(excinfo.value).startswith("messageTemplate:1:")
    assert sys.gettrace() is tracer_before  # the tracer is removed again
    # an ordinary loop stays well inside the budget
    assert render_template("{% for i in range(1000) %}{% endfor %}ok", {}, name="t") == "ok"
