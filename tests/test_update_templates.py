"""Templates (design §4, flux-behaviour §5.4): Flux's documented examples in Jinja2, the sandbox,
its limits (issue 8 §1), the default PR body and the hidden state block."""

import hashlib
import re
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jinja2 import Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from bot.policy.model import LatestRef
from bot.update import templates
from bot.update.gotemplate import go_to_jinja
from bot.update.prbody import (
    DEFAULT_BODY_TEMPLATE,
    MAX_BODY_CHARS,
    MAX_RENDERED_BODY_CHARS,
    PullRequestState,
    change_set_id,
    compose_body,
    default_body,
    markdown_code,
    render_pr_body,
    too_long,
)
from bot.update.result import Change, ObjectId, Result
from bot.update.template_data import template_data
from bot.update.template_filters import sha256sum
from bot.update.template_limits import MAX_TEMPLATE_WORK, MAX_VALUE_SIZE
from bot.update.templates import (
    DEFAULT_COMMIT_MESSAGE,
    MAX_OUTPUT_CHARS,
    TemplateError,
    check_template,
    render_template,
)
from tests.datapaths import REPO

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


#: What Flux's Gitea one-liner prints for `docs_result`: one line per unique change.
GITEA_LINES = [
    "2.2.2 -> 5.0.3",
    "v1.0 -> 5.0.3",
    f"{PODINFO}:4.0.6 -> {PODINFO}:5.0.3",
    f"bar -> {PODINFO}",
    "4.0.6 -> 5.0.3",
]


def test_gitea_one_liner_and_values_examples() -> None:
    data = data_for(docs_result(), cluster="prod")
    gitea = "{% for change in Changed.Changes %}{{ change.OldValue }} -> {{ change.NewValue }}\n{% endfor %}"
    assert render_template(gitea, data, name="t").splitlines() == GITEA_LINES
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


# --- the limits: templates can't exhaust memory (issue 8 §1) ----------------------------------

S = '{% set s = "x" * 65536 %}'  # the longest text a template may make
L = S + "{% set l = [s] * 65536 %}"  # a list of 64 Ki references to it: 4 GiB as a text

#: Templates that made `serve` allocate hundreds of MB to GBs (each measured against the
#: unbounded sandbox), and the start of what the refusal says. The bomb is on line 2.
BOMBS = [
    pytest.param(L + "{{ l | join }}", "the join filter would make a text", id="join"),
    pytest.param(L + '{{ l | join(",") }}', "the join filter would make a text", id="join-sep"),
    pytest.param(S + "{{ (s|list) | join(s) }}", "the join filter would make", id="join-long-sep"),
    pytest.param(L + '{{ "".join(l) }}', "str.join would make a text", id="str.join"),
    pytest.param(S + '{{ s | replace("x", s) }}', "the replace filter would make", id="replace"),
    pytest.param(S + '{{ s.replace("x", s) }}', "str.replace would make", id="str.replace"),
    pytest.param(
        S + '{{ (s|safe).replace("x", "<" * 30000) }}', "Markup.replace would make", id="markup"
    ),
    pytest.param('{{ "%2000000000d" % 1 }}', "'%' would make a text", id="percent-width"),
    pytest.param('{{ "%.2000000000d" % 1 }}', "'%' would make a text", id="percent-precision"),
    pytest.param('{{ "%.2000000000f" % 1.5 }}', "'%' would make a text", id="percent-float"),
    pytest.param('{{ "%*d" % (2000000000, 1) }}', "'%' would make a text", id="percent-star"),
    pytest.param(
        '{{ "%(a(b))2000000000s" % {"a(b)": 1} }}', "'%' would make a text", id="percent-key"
    ),
    pytest.param(L + '{{ "%s" % (l,) }}', "'%' would make a text", id="percent-list"),
    pytest.param(
        S + '{{ ("%s" * 3000) % ((s,) * 3000) }}', "'%' would make a text", id="percent-many"
    ),
    pytest.param('{{ "%2000000000d".encode() % 1 }}', "'%' would make", id="percent-bytes"),
    pytest.param('{{ "%2000000000d" | format(1) }}', "the format filter would", id="format"),
    pytest.param(L + '{{ "%s" | format(l) }}', "the format filter would", id="format-list"),
    pytest.param('{{ "x" | center(2000000000) }}', "the center filter would", id="center"),
    pytest.param('{{ "x".center(2000000000) }}', "str.center would make", id="str.center"),
    pytest.param('{{ "x".ljust(2000000000) }}', "str.ljust would make", id="str.ljust"),
    pytest.param('{{ "x".rjust(2000000000, "y") }}', "str.rjust would make", id="str.rjust"),
    pytest.param('{{ "1".zfill(2000000000) }}', "str.zfill would make", id="str.zfill"),
    pytest.param('{{ ("\\t" * 60000).expandtabs(60000) }}', "str.expandtabs", id="expandtabs"),
    pytest.param('{{ "x".encode().center(2000000000) }}', "bytes.center", id="bytes.center"),
    pytest.param("{{ '{:>999999999}'.format(1) }}", "str.format would make", id="str.format"),
    pytest.param("{{ '{:>{}}'.format(1, 999999999) }}", "str.format would", id="format-nested"),
    pytest.param("{{ '{:.999999999f}'.format(1.5) }}", "str.format would", id="format-precision"),
    pytest.param(
        "{{ '{a:>999999999}'.format_map({'a': 1}) }}", "str.format would", id="format_map"
    ),
    pytest.param(L + "{{ '{}'.format(l) }}", "str.format would make", id="format-list-field"),
    pytest.param(L + "{{ '{!r}'.format(l) }}", "str.format would make", id="format-repr"),
    pytest.param(S + '{{ ("{0}" * 3000).format(s) }}', "str.format would", id="format-many"),
    pytest.param("{% set l = [1] * 100000000 %}", "'*' would make at least", id="list-times"),
    pytest.param("{% set l = (1,) * 100000000 %}", "'*' would make at least", id="tuple-times"),
    pytest.param('{{ "x" * 100000000 }}', "'*' would make a text", id="str-times"),
    pytest.param(
        "{% set a = [1] * 60000 %}{% set b = [a] * 60000 %}{{ b }}",
        "printing this value would make",
        id="print-nested-list",
    ),
    pytest.param(L + '{{ l ~ "" }}', "'~' would make a text", id="tilde-list"),
    pytest.param(
        '{% set ns = namespace(a="x" * 1000) %}{% for i in range(30) %}'
        "{% set ns.a = ns.a ~ ns.a %}{% endfor %}",
        "'~' would make a text",
        id="tilde-doubling-loop",
    ),
    pytest.param(S + '{{ ("x\\n" * 30000) | indent(s) }}', "the indent filter", id="indent"),
    pytest.param('{{ ("x\\n" * 30000) | indent(60000) }}', "the indent filter", id="indent-int"),
    pytest.param(
        S + '{{ ("a " * 30000) | wordwrap(1, wrapstring=s) }}', "the wordwrap filter", id="wordwrap"
    ),
    pytest.param("{{ [1] | batch(2000000000, 0) | list }}", "the batch filter would", id="batch"),
    pytest.param("{{ [] | slice(2000000000) | list }}", "the slice filter would", id="slice"),
    pytest.param(L + "{{ l | string }}", "the string filter would make", id="string"),
    pytest.param(L + "{{ l | list | string }}", "the string filter would make", id="list-string"),
    pytest.param(S + "{{ s.translate({120: s}) }}", "str.translate would", id="translate"),
    pytest.param(
        S + '{{ ("x" * 60000).translate([s] * 200) }}', "str.translate would", id="translate-list"
    ),
    pytest.param(L + "{{ dict(a=l, b=l) }}", "printing this value would", id="dict"),
    pytest.param(L + "{{ dict.fromkeys(range(10000), l) }}", "printing this", id="dict.fromkeys"),
    pytest.param(
        L + "{{ dict(a=l).items() | list | string }}", "the string filter", id="dict-items"
    ),
    pytest.param(L + "{{ l | tojson }}", "the tojson filter would make", id="tojson"),
    pytest.param("{{ [[[[1]]]] | tojson(2000000000) }}", "the tojson filter: an indent", id="json"),
    pytest.param(S + "{{ [1, 2] | tojson(s) }}", "the tojson filter: an indent", id="tojson-str"),
    pytest.param(L + "{{ l | pprint }}", "the pprint filter would make", id="pprint"),
    pytest.param(
        S + "{% set b %}{% for i in range(10000) %}{{ s }}{% endfor %}{% endset %}",
        "a block's output would make",
        id="set-block",
    ),
    pytest.param(
        S + "{% macro m() %}{% for i in range(10000) %}{{ s }}{% endfor %}{% endmacro %}{{ m() }}",
        "a block's output would make",
        id="macro",
    ),
    pytest.param(
        S + "{% filter upper %}{% for i in range(10000) %}{{ s }}{% endfor %}{% endfilter %}",
        "a block's output would make",
        id="filter-block",
    ),
    pytest.param(
        S + "{% macro m() %}{{ caller() }}{% endmacro %}"
        "{% call m() %}{% for i in range(10000) %}{{ s }}{% endfor %}{% endcall %}",
        "a block's output would make",
        id="call-block",
    ),
    pytest.param(
        S + "{% for x in [[1]] recursive %}{% for i in range(10000) %}{{ s }}{% endfor %}"
        "{% endfor %}",
        "a block's output would make",
        id="recursive-loop",
    ),
    pytest.param(
        "{{ ([[1] * 60000] * 60000) | sum(start=[]) }}", "the sum filter would make", id="sum"
    ),
    pytest.param("{{ 2 ** 100000000 }}", "'**' would make a number", id="power"),
    pytest.param(
        "{% set ns = namespace(a=2 ** 64) %}{% for i in range(40) %}"
        "{% set ns.a = ns.a * ns.a %}{% endfor %}",
        "'*' would make a number",
        id="squaring-loop",
    ),
    pytest.param('{{ (1).to_bytes(2000000000, "big") }}', "int.to_bytes would", id="to_bytes"),
    pytest.param(
        S + '{{ ("www.a.com " * 6000) | urlize(target=s) }}', "the urlize filter", id="urlize"
    ),
    pytest.param(L + '{{ {"a": l} | xmlattr }}', "the xmlattr filter would", id="xmlattr"),
    pytest.param(L + '{{ {"a": l} | urlencode }}', "the urlencode filter", id="urlencode"),
    pytest.param(L + "{{ l | sha256sum }}", "the sha256sum filter would", id="sha256sum"),
    pytest.param(L + "{{ l | md_code }}", "the md_code filter would", id="md_code"),
    pytest.param(
        S + "{% set m = (s|safe).upper %}{{ ([m] * 60000) | join }}",
        "the join filter would make",
        id="bound-method-repr",
    ),
    # Many values, each within the limit: the render's work runs out.
    pytest.param(
        '{{ range(10000) | map("center", 60000) | join }}', "characters and items in all", id="map"
    ),
    pytest.param(
        '{{ "".join(range(10000) | map("center", 60000)) }}', "characters and items", id="gen-join"
    ),
    pytest.param(
        '{{ range(10000) | map("center", 60000) | list | length }}', "items in all", id="map-list"
    ),
    pytest.param(
        S + "{% for i in range(10000) %}{{ s | upper | length }}{% endfor %}",
        "characters and items in all",
        id="many-filters",
    ),
    pytest.param(
        S + "{% for i in range(10000) %}{% for j in range(100) %}{% set t = s[1:] %}"
        "{% endfor %}{% endfor %}",
        "characters and items in all",
        id="slice-copies",
    ),
    pytest.param("{% for i in range(2000000000) %}{% endfor %}", "range() is limited", id="range"),
    pytest.param(
        "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}",
        "ran more than 1000000 steps",
        id="for-nesting",
    ),
]


def peak_bytes(function) -> int:
    """The most memory Python held while ``function`` ran (above what it held before)."""
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(("bomb", "refusal"), BOMBS)
def test_templates_that_would_exhaust_memory_are_refused_before_allocating(bomb, refusal) -> None:
    failure: list[TemplateError] = []

    def render() -> None:
        with pytest.raises(TemplateError) as info:
            render_template("Images:\n" + bomb, data_for(docs_result()), name="messageTemplate")
        failure.append(info.value)

    assert peak_bytes(render) < 10 * 2**20
    (error,) = failure
    assert (error.name, error.line) == ("messageTemplate", 2)
    assert error.message.startswith("not allowed: ") and refusal in error.message, error.message


@pytest.mark.parametrize(("bomb", "refusal"), BOMBS)
def test_checking_a_template_never_runs_it(bomb, refusal) -> None:
    # check-config compiles; with every filter taking the context, Jinja folds none of them.
    assert peak_bytes(lambda: check_template(bomb, name="messageTemplate")) < 10 * 2**20


E = "\U0001f600"  # four bytes a character, and 80 a one-character text
HOARD = "{% set ns = namespace(l=[]) %}{% for i in range(10000) %}{% set ns.l = ns.l + [X] %}"


@pytest.mark.parametrize(
    "value",
    [
        f'("{E}" * 60000) ~ i',
        f'("{E}" * 60000) | list',
        f'("{E}" * 60000) | batch(1) | list',
        f'("{E}" * 60000) | slice(60000) | list',
        f'("{E}," * 30000).split(",")',
        "dict.fromkeys(range(10000), 1) | dictsort",
        "range(i, i + 10000) | list",
    ],
)
def test_what_a_render_can_hold_is_bounded_by_its_work(value) -> None:
    # Values each within the limits, all kept: the allowance runs out near 5 bytes a unit.
    def render() -> None:
        with pytest.raises(TemplateError, match="characters and items in all"):
            render_template(HOARD.replace("X", value) + "{% endfor %}", {}, name="t")

    assert peak_bytes(render) < 64 * 2**20


def test_refusals_give_the_size_the_operation_would_have_made() -> None:
    with pytest.raises(TemplateError) as info:
        render_template(S + "{{ s | replace('x', s) }}", {}, name="t")
    assert info.value.message == (
        "not allowed: the replace filter would make a text of at least 4,294,967,296 characters"
        " (the limit is 65,536)"
    )


def test_values_up_to_the_limit_still_work() -> None:
    template = (
        '{{ ("x" * 65536) | length }} {{ ([1] * 65536) | length }} {{ ("%60000s" % "") | length }}'
        " {{ '{:>60000}'.format(1) | length }} {{ 'x'.center(65536) | length }}"
        " {{ (2 ** 4000) > 0 }} {{ ('ab\\n' * 10000) | indent(2) | length }}"
    )
    assert render_template(template, {}, name="t") == "65536 65536 60000 60000 65536 True 49998"


def test_the_work_allowance_is_per_render() -> None:
    # About 60 % of the allowance: fine once, and fine again (nothing carries over).
    template = (
        '{% set s = "x" * 60000 %}{% for i in range(80) %}{{ (s ~ i) | length }},{% endfor %}'
    )
    for _ in range(2):
        out = render_template(template, {}, name="t")
        assert out.count("6000") == 80
    assert MAX_TEMPLATE_WORK == 8 * 2**20 and MAX_VALUE_SIZE == 65536


def reference_render(source: str, data: dict, *, max_chars: int = MAX_OUTPUT_CHARS) -> str:
    """``source`` rendered by Jinja2's plain sandbox, set up as ours but without the limits."""
    env = ImmutableSandboxedEnvironment(
        undefined=templates._Undefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=lambda v: v if isinstance(v, Undefined) or not callable(v) else "",
    )
    env.globals = {"range": range, "dict": dict, "namespace": env.globals["namespace"]}
    env.filters["sha256sum"] = sha256sum
    env.filters["md_code"] = markdown_code
    out = env.from_string(source).render(data)
    assert len(out) <= max_chars
    return out


DOCS_TEMPLATES = re.findall(r"```jinja\n(.*?)```", (REPO / "docs/templates.md").read_text(), re.S)

#: Legitimate uses of every operation the limits watch, with small values.
EVERYDAY = [
    '{{ "%05.2f|%-6s|%x|%c%%|%*d|%.3s" % (3.14159, "ab", 255, 65, 5, 42, "abcdef") }}',
    '{{ "%(a)s-%(b)d" % {"a": "x", "b": 2} }} {{ "%s" % [1, "a"] }}',
    '{{ "{:>8}|{:<4}|{:^7.3f}|{!r}|{:,}".format("ab", 1, 2.5, "q", 1234567) }}',
    '{{ "{a}{b}".format_map({"a": 1, "b": 2}) }}',
    '{{ "x" | center(9) }}|{{ "ab\\ncd\\n\\nef" | indent(2, true) }}|{{ "a\\nb" | indent("> ") }}',
    '{{ "a b c d e f" | wordwrap(3) }}|{{ "aXbXc" | replace("X", "--", 1) }}',
    '{{ "%s=%s" | format("k", "v") }}|{{ "%(k)s" | format(k="v") }}',
    '{{ [1, 2, 3] | join(", ") }}|{{ Changed.Changes | join("; ", attribute="NewValue") }}',
    "{{ [[1], [2]] | sum(start=[]) }}|{{ [1, 2, 3] | sum }}|{{ Changed.Changes | length }}",
    "{{ range(5) | batch(2, 0) | list }}|{{ range(5) | slice(2) | list }}",
    '{{ {"b": 1, "a": [1, "x<"]} | tojson }}|{{ {"a": 1} | tojson(2) }}',
    '{{ [1, {"a": 2}] | pprint }}|{{ Values | pprint }}',
    '{{ "see https://example.com or www.a.com, mail x@y.com" | urlize(target="_blank") }}',
    '{{ "ab" * 3 }}|{{ [1] * 3 }}|{{ 3 * "c" }}|{{ "a" + "b" }}|{{ [1] + [2] }}|{{ 2 ** 10 }}',
    "{{ 7 % 3 }}|{{ -2 ** 3 }}|{{ 10 ** -2 }}|{{ (2 ** 64) * (2 ** 64) }}",
    '{{ "abcdef"[1:] }}|{{ "abc"[::-1] }}|{{ [1, 2, 3][:2] }}|{{ Repository[:3] }}',
    '{{ "x".ljust(3) }}|{{ "x".rjust(3, "*") }}|{{ "7".zfill(3) }}|{{ "a\\tb".expandtabs(4) }}',
    '{{ "-".join(["a", "b"]) }}|{{ "abc".translate({97: "AA", 98: none}) }}',
    '{{ (5).to_bytes(2, "big") }}|{{ "é".encode() }}|{{ "a,b".split(",") }}',
    '{{ AutomationObject ~ "|" ~ Changed.Changes[0] ~ 1 ~ none }}',
    "{{ Changed }}|{{ Changed.Changes }}|{{ ObservedPolicies | dictsort }}",
    '{{ "<b>" | e }}|{{ ("<a>" | safe) + "<b>" }}|{{ ("<a>" | safe).replace("a", "<") }}',
    '{{ ("%s" | safe) % "<" }}|{{ ("{}" | safe).format("<") }}|{{ ("<" | safe).join(["<", "b"]) }}',
    '{{ "Hello <i>World</i>  " | title | lower | upper | capitalize | trim | striptags }}',
    '{{ "one two" | wordcount }}|{{ {"a": "b c"} | urlencode }}|{{ {"id": "x"} | xmlattr }}',
    "{% set b %}x{{ 1 }}{% endset %}{{ b }}|{% macro m(a) %}[{{ a }}]{% endmacro %}"
    "{{ m(1) ~ m(2) }}|{% filter upper %}abc{% endfilter %}",
    "{% for x in [[1, [2]]] recursive %}<{{ x }}>{% endfor %}|{{ namespace(a=1).a }}|{{ dict(a=1) }}",
    '{{ range(3) | map("string") | join }}|{% for i in range(3) %}{{ loop.index }}'
    '{{ loop.cycle("a", "b") }}{% endfor %}|{{ Values.get("cluster") }}',
    "{% for i in range(5000) %}{{ i % 10 }}{% endfor %}",  # many small output chunks
    "{{ Changed.Changes | map(attribute='Setter') | unique | sort | list }}|{{ [3, 1] | max }}",
]


@pytest.mark.parametrize("template", DOCS_TEMPLATES + EVERYDAY)
def test_legitimate_templates_render_as_jinja_renders_them(template) -> None:
    data = data_for(docs_result(), cluster="prod")
    assert render_template(template, data, name="t") == reference_render(template, data)


def test_the_default_body_of_a_large_update_renders_as_jinja_renders_it() -> None:
    result = Result()
    for i in range(1500):
        result.add_change(
            f"apps/app-{i:04}.yaml", ObjectId(name=f"app-{i}"), Change(f"a:{i}", f"a:{i}.1", "ns:p")
        )
    data = data_for(result)
    rendered = render_template(
        DEFAULT_BODY_TEMPLATE, data, name="t", max_chars=MAX_RENDERED_BODY_CHARS
    )
    assert len(rendered) > MAX_BODY_CHARS
    assert rendered == reference_render(
        DEFAULT_BODY_TEMPLATE, data, max_chars=MAX_RENDERED_BODY_CHARS
    )


_cell = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a.yaml", "b/c.yaml", "we|ird`.yaml"]),
            st.sampled_from(["app", "api"]),
            _cell,
            _cell,
            st.sampled_from(["ns:p", "ns:p:tag", "n`s|x"]),
        ),
        max_size=6,
    ),
    st.dictionaries(
        _cell, st.fixed_dictionaries({"name": _cell, "tag": _cell, "digest": _cell}), max_size=3
    ),
)
def test_the_default_body_is_the_default_template_rendered(changes, observed) -> None:
    """`default_body` (Python, no Jinja2) says exactly what `DEFAULT_BODY_TEMPLATE` says."""
    result = Result()
    for path, name, old, new, setter in changes:
        result.add_change(path, ObjectId(name=name), Change(old, new, setter))
    data = {**data_for(result), "ObservedPolicies": observed}
    expected = reference_render(DEFAULT_BODY_TEMPLATE, data, max_chars=MAX_RENDERED_BODY_CHARS)
    assert default_body(data) == expected
    assert render_pr_body(data, body_template=None) == expected.rstrip()


def test_a_default_body_too_large_to_render_as_a_template_is_still_made() -> None:
    """20,000 changes: over the 1 MiB a template may render, and the body is cut to fit."""
    result = Result()
    for i in range(20_000):
        result.add_change(
            f"apps/{i}.yaml", ObjectId(name=f"a{i}"), Change(f"a:{i}", f"a:{i}.1", "ns:p")
        )
    body = render_pr_body(data_for(result), body_template=None)
    assert len(body) > MAX_RENDERED_BODY_CHARS
    assert body.startswith("Automation: ") and body.count("\n    - a:") == 20_000


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


# -- Flux's Go templates, as written in its documentation (issue 11 §1) ------------------------

FLUX_DOCS_GO_TEMPLATE = """\
Automated image update

Automation name: {{ .AutomationObject }}

Files:
{{ range $filename, $_ := .Changed.FileChanges -}}
- {{ $filename }}
{{ end -}}

Objects:
{{ range $resource, $changes := .Changed.Objects -}}
- {{ $resource.Kind }} {{ $resource.Name }}
  Changes:
{{- range $_, $change := $changes }}
    - {{ $change.OldValue }} -> {{ $change.NewValue }}
{{ end -}}
{{ end -}}
"""


def test_flux_docs_go_template_renders_what_flux_renders() -> None:
    translated = go_to_jinja(FLUX_DOCS_GO_TEMPLATE)
    assert translated is not None
    assert translated.count("\n") == FLUX_DOCS_GO_TEMPLATE.count("\n")  # lines kept
    out = render_template(translated, data_for(docs_result()), name="t")
    assert out == DOCS_OUTPUT.removesuffix("\n")


def test_flux_gitea_values_and_if_examples_translate() -> None:
    data = data_for(docs_result(), cluster="prod")
    gitea = go_to_jinja(
        "{{range .Changed.Changes}}{{print .OldValue}} -> {{println .NewValue}}{{end}}"
    )
    assert render_template(gitea, data, name="t").splitlines() == GITEA_LINES
    values = go_to_jinja("Automated image update by Flux for cluster {{ .Values.cluster }}.")
    assert render_template(values, data, name="t") == (
        "Automated image update by Flux for cluster prod."
    )
    branch = go_to_jinja(
        '{{/* one line per file */}}{{ range $f, $objects := .Changed.FileChanges }}'
        '{{ if $f }}{{ $f }}{{ else }}?{{ end }};{{ end }}'
    )
    assert render_template(branch, data, name="t") == "foo-deployment.yaml;podinfo-deployment.yaml;"


@pytest.mark.parametrize(
    "template",
    [
        '{{ printf "%s" .AutomationObject }}',  # functions: not translated
        "{{ .AutomationObject | lower }}",  # pipes
        "{{ range $i, $c := .Changed.Changes }}{{ $i }}{{ end }}",  # an index over a list
        "{{ .Updated.Files }}",  # removed from Flux's data
        "{{ range .Changed.Changes }}",  # no end
        "{{ $nope }}",
    ],
)
def test_other_go_templates_are_not_translated(template: str) -> None:
    assert go_to_jinja(template) is None
