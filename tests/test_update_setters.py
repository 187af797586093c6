"""Which scalars the setters replace, and that only their bytes change (§4.2, §4.5, design §3)."""

import difflib

import pytest
from ruamel.yaml import YAML

from bot.policy.model import LatestRef
from bot.update import (
    UpdateError,
    apply_setters,
    build_setters,
    candidate_paths,
    normalise_update_path,
    update_files,
)
from bot.update.result import Change, ObjectId

M = '# {"$imagepolicy": "ns:p"}'
TAG = '# {"$imagepolicy": "ns:p:tag"}'
NAME = '# {"$imagepolicy": "ns:p:name"}'
DIGEST = '# {"$imagepolicy": "ns:p:digest"}'
SETTERS = {
    "ns:p": "new/app:v2",
    "ns:p:tag": "v2",
    "ns:p:name": "new/app",
    "ns:p:digest": "sha256:abc",
}


def run(text: str, setters: dict[str, str] = SETTERS) -> tuple[str | None, list]:
    update = apply_setters("f.yaml", text.encode(), setters)
    assert update.warnings == []
    return (None if update.content is None else update.content.decode()), update.changes


def values(changes: list) -> list[tuple[str, str, str]]:
    return [(c.old_value, c.new_value, c.setter) for _obj, c in changes]


# --- where markers are honoured --------------------------------------------------------------


def test_block_mapping_value_line_comment() -> None:
    out, changes = run(f"image: old/app:v1 {M}\n")
    assert out == f"image: new/app:v2 {M}\n"
    assert values(changes) == [("old/app:v1", "new/app:v2", "ns:p")]


def test_block_sequence_item_line_comment_and_head_comment() -> None:
    src = f"args:\n  - old/app:v1 {M}\n  {TAG}\n  - v1\n  - untouched\n"
    out, changes = run(src)
    assert out == f"args:\n  - new/app:v2 {M}\n  {TAG}\n  - v2\n  - untouched\n"
    assert values(changes) == [("old/app:v1", "new/app:v2", "ns:p"), ("v1", "v2", "ns:p:tag")]


@pytest.mark.parametrize(
    "src",
    [
        f"{M}\nimage: old/app:v1\n",  # comment above `key: value` belongs to the key
        f"image: {M}\n  old/app:v1\n",  # `key: # marker` with the value on the next line
        f"image: # {M}\n",  # no value at all
        f"images: [old/app:v1] {M}\n",  # belongs to the flow collection
        f"spec: {M}\n  image: old/app:v1\n",  # on a key whose value is a mapping
        f"list: {M}\n  - old/app:v1\n",  # on a key whose value is a sequence
        f"image: |  {M}\n  old/app:v1\n",  # block scalars are never touched
        f"image: >\n  old/app:v1 {M}\n",
        f"image: old/app:v1 {M} trailing\n",
        f"args:\n  # note\n  {M}\n  - old/app:v1\n",  # a two-line head comment is no JSON
        'image: old/app:v1 # {"$imagepolicy": "ns:unknown"}\n',
        'image: old/app:v1 # {"$imagepolicy": "other:p"}\n',
        f"key:\n  - |\n    {M}\n  - old/app:v1\n",  # text inside a block scalar is no comment
    ],
)
def test_markers_not_honoured(src: str) -> None:
    out, changes = run(src)
    assert (out, changes) == (None, [])


def test_non_marker_line_comment_hides_head_comment() -> None:
    src = f"args:\n  {M}\n  - old/app:v1 # just a note\n"
    assert run(src) == (None, [])


def test_flow_collection_element_comment() -> None:
    src = f"images: [old/app:v1, {M}\n  other]\nm: {{image: old/app:v1, {M}\n  x: y}}\n"
    out, changes = run(src)
    assert out == src.replace("old/app:v1", "new/app:v2")
    assert len(changes) == 2


def test_whole_scalar_replaced_never_a_substring() -> None:
    out, _ = run(f'args: ["--image=old/app:v1", {M}\n  x]\nflag: "--image=old:v1" {M}\n')
    assert out == f'args: ["new/app:v2", {M}\n  x]\nflag: "new/app:v2" {M}\n'


def test_equal_values_record_nothing_and_leave_file_alone() -> None:
    assert run(f"image: new/app:v2 {M}\ntag: v2 {TAG}\n") == (None, [])


def test_digest_setter_with_empty_digest_writes_empty_string() -> None:
    out, changes = run(f"digest: sha256:old {DIGEST}\n", {**SETTERS, "ns:p:digest": ""})
    assert out == f'digest: "" {DIGEST}\n'
    assert values(changes) == [("sha256:old", "", "ns:p:digest")]


def test_duplicate_keys_first_wins() -> None:
    src = f"image: a:v1 {M}\nimage: b:v1 {M}\n"
    out, changes = run(src)
    assert out == f"image: new/app:v2 {M}\nimage: b:v1 {M}\n"
    assert len(changes) == 1


def test_long_ref_form() -> None:
    src = 'image: old:v1 # {"$ref": "#/definitions/io.k8s.cli.setters.ns:p"}\n'
    out, changes = run(src)
    assert out == src.replace("old:v1", "new/app:v2")


# --- objects, documents, file kinds ---------------------------------------------------------

WORKLOADS = f"""\
# leading comment
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  namespace: default
spec:
  template:
    spec:
      containers:
        - name: app
          image: old/app:v1 {M}


---
apiVersion: batch/v1
kind: CronJob
metadata: {{name: job}}
spec:
  image: "old/app:v1"   {M}
...
---
# comment-only document
"""


def test_multi_document_objects_and_document_order() -> None:
    out, changes = run(WORKLOADS)
    assert out == WORKLOADS.replace("old/app:v1", "new/app:v2")
    assert [obj for obj, _ in changes] == [
        ObjectId("apps/v1", "Deployment", "default", "podinfo"),
        ObjectId("batch/v1", "CronJob", "", "job"),
    ]


def test_helm_values_with_repository_tag_digest() -> None:
    src = f"image:\n  repository: old/app {NAME}\n  tag: '1.0' {TAG}\n  digest: \"\" {DIGEST}\n"
    out, changes = run(src)
    assert out == (
        f"image:\n  repository: new/app {NAME}\n  tag: 'v2' {TAG}\n  digest: \"sha256:abc\" {DIGEST}\n"
    )
    assert {obj for obj, _ in changes} == {ObjectId()}


def test_kustomization_images() -> None:
    src = (
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n"
        f"- name: app\n  newName: old/app {NAME}\n  newTag: v1 {TAG}\n  digest: sha256:x {DIGEST}\n"
    )
    out, changes = run(src)
    assert out == src.replace("old/app ", "new/app ").replace("v1 ", "v2 ").replace(
        "sha256:x", "sha256:abc"
    )
    assert values(changes)[1] == ("v1", "v2", "ns:p:tag")


def test_compose_file() -> None:
    src = f'services:\n  web:\n    image: "old/app:v1" {M}\n    ports: ["80:80"]\n'
    out, _ = run(src)
    assert out == src.replace("old/app:v1", "new/app:v2")


def test_anchor_value_replaced_anchor_and_alias_kept() -> None:
    src = f"base: &img  !!str old/app:v1 {M}\nother: *img\nmore:\n  <<: *img\n"
    out, changes = run(src)
    assert out == src.replace("old/app:v1", "new/app:v2")
    assert len(changes) == 1


def test_kind_list_items_report_their_own_objects() -> None:
    src = (
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: apps/v1\n  kind: Deployment\n"
        f"  metadata: {{name: a, namespace: n}}\n  spec: {{image: old:v1, {M}\n    }}\n"
    )
    out, changes = run(src)
    assert out == src.replace("old:v1", "new/app:v2")
    assert [obj for obj, _ in changes] == [ObjectId("apps/v1", "Deployment", "n", "a")]


# --- byte preservation and quoting -----------------------------------------------------------


def test_crlf_bom_blank_lines_and_non_ascii_survive() -> None:
    src = "\ufeff# café ✓\r\n\r\nkey: 'é'\r\nimage:   old/app:v1   " + M + "\r\n\r\n---\r\nx: y\r\n"
    update = apply_setters("f.yaml", src.encode("utf-8"), SETTERS)
    assert update.content == src.replace("old/app:v1", "new/app:v2").encode("utf-8")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("5", "6", '"6"'),
        ("v1", "1.10", '"1.10"'),
        ("v1", "yes", '"yes"'),
        ("v1", "true", '"true"'),
        ("v1", "null", '"null"'),
        ("v1", "~", '"~"'),
        ("v1", "0x1F", '"0x1F"'),
        ("v1", "1e3", '"1e3"'),
        ("v1", "", '""'),
        ("v1", "a: b", '"a: b"'),
        ("v1", "a #b", '"a #b"'),
        ("v1", "*alias", '"*alias"'),
        ("v1", "- x", '"- x"'),
        ('"v1"', 'say "hi" \\ ok', '"say \\"hi\\" \\\\ ok"'),
        ("v1", "v2.0.0-rc.1", "v2.0.0-rc.1"),
        ("'v1'", "it's", "'it''s'"),
        ("'v1'", "6", "'6'"),
        ('"v1"', "6", '"6"'),
        ('"v1"', "tab\there", '"tab\\there"'),
        ("'v1'", "line\nbreak", '"line\\nbreak"'),
    ],
)
def test_quoting(old: str, new: str, expected: str) -> None:
    src = f"tag: {old} {TAG}\nnext: 1\n"
    out, changes = run(src, {"ns:p:tag": new})
    assert out == f"tag: {expected} {TAG}\nnext: 1\n"
    assert YAML(typ="safe", pure=True).load(out)["tag"] == new


def test_multiline_plain_scalar_replaced_whole() -> None:
    src = f"key: old\n  continued {M}\nnext: 1\n"
    out, changes = run(src)
    assert out == f"key: new/app:v2 {M}\nnext: 1\n"
    assert values(changes) == [("old continued", "new/app:v2", "ns:p")]


def test_only_replaced_lines_differ_in_a_large_file() -> None:
    body = "".join(f"k{i}: v{i}  # comment {i}\n" for i in range(200))
    src = f"{body}image: old/app:v1 {M}\n{body}"
    out, _ = run(src)
    diff = [
        line
        for line in difflib.unified_diff(src.splitlines(), out.splitlines(), lineterm="", n=0)
        if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))
    ]
    assert diff == [f"-image: old/app:v1 {M}", f"+image: new/app:v2 {M}"]


# --- update_files, build_setters, candidate_paths ---------------------------------------------


def test_update_files_skips_unmarked_and_keys_results_by_path() -> None:
    files = {
        "b.yaml": f"image: old:v1 {M}\n".encode(),
        "a.yaml": b"image: old:v1 # no marker, and: [not yaml\n",
        "c.yaml": f"image: new/app:v2 {M}\n".encode(),
    }
    outcome = update_files(files, SETTERS)
    assert outcome.edited == {"b.yaml": f"image: new/app:v2 {M}\n".encode()}
    assert outcome.warnings == []
    assert outcome.result.files == {
        "b.yaml": {ObjectId(): [Change("old:v1", "new/app:v2", "ns:p")]}
    }


def test_build_setters() -> None:
    latest = {
        "app": LatestRef("ghcr.io/org/app", "v1.2.3", "sha256:" + "a" * 64),
        "plain": LatestRef("ghcr.io/org/plain", "1.0"),
    }
    assert build_setters("flux-system", latest) == {
        "flux-system:app": "ghcr.io/org/app:v1.2.3@sha256:" + "a" * 64,
        "flux-system:app:tag": "v1.2.3",
        "flux-system:app:name": "ghcr.io/org/app",
        "flux-system:app:digest": "sha256:" + "a" * 64,
        "flux-system:plain": "ghcr.io/org/plain:1.0",
        "flux-system:plain:tag": "1.0",
        "flux-system:plain:name": "ghcr.io/org/plain",
        "flux-system:plain:digest": "",
    }


def test_build_setters_rejects_invalid_image_ref() -> None:
    with pytest.raises(UpdateError, match=r'^encountered invalid image ref "ghcr.io/Org/App:1": '):
        build_setters("ns", {"ok": LatestRef("a/b", "1"), "bad": LatestRef("ghcr.io/Org/App", "1")})


TREE = [
    "README.md",
    "a.yaml",
    "b.yml",
    "c.YAML",
    "Kustomization",
    "kustomization.yaml",
    "sub/Kustomization",
    "sub/notKustomization",
    ".github/workflows/ci.yml",
    "clusters/prod/app.yaml",
    "clusters/prod/deep/x.yml",
    "clusters/production/y.yaml",
]


def test_candidate_paths_whole_tree() -> None:
    assert candidate_paths(TREE) == [
        (p, p)
        for p in sorted(
            [
                ".github/workflows/ci.yml",
                "Kustomization",
                "a.yaml",
                "b.yml",
                "clusters/prod/app.yaml",
                "clusters/prod/deep/x.yml",
                "clusters/production/y.yaml",
                "kustomization.yaml",
                "sub/Kustomization",
            ]
        )
    ]


@pytest.mark.parametrize(
    "path", ["./clusters/prod", "clusters/prod/", "clusters/./prod", "./clusters/prod/"]
)
def test_candidate_paths_subdirectory(path: str) -> None:
    assert candidate_paths(TREE, path) == [
        ("clusters/prod/app.yaml", "app.yaml"),
        ("clusters/prod/deep/x.yml", "deep/x.yml"),
    ]


def test_candidate_paths_single_file() -> None:
    assert candidate_paths(TREE, "./clusters/prod/app.yaml") == [
        ("clusters/prod/app.yaml", "app.yaml")
    ]
    assert candidate_paths(TREE, "nowhere") == []


@pytest.mark.parametrize("path", ["..", "../x", "a/../../x", "/etc", "/"])
def test_update_path_escaping_the_tree(path: str) -> None:
    with pytest.raises(UpdateError):
        candidate_paths(TREE, path)


def test_normalise_update_path() -> None:
    assert [normalise_update_path(p) for p in [".", "./", "", "a/b/", "./a/./b"]] == [
        "",
        "",
        "",
        "a/b",
        "a/b",
    ]
