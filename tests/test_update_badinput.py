"""Hostile or broken files: a clear warning for that file, never a crash, other files still update."""

import os
import time

import pytest

from bot.update import MAX_FILE_BYTES, update_files

M = '# {"$imagepolicy": "ns:p"}'
SETTERS = {"ns:p": "new/app:v2"}
GOOD = f"image: old/app:v1 {M}\n".encode()
GOOD_AFTER = f"image: new/app:v2 {M}\n".encode()

BILLION_LAUGHS = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n"
        for i in range(8)
    )
    + f"image: old/app:v1 {M}\n"
)


def run_with_good(name: str, content: bytes):
    outcome = update_files({name: content, "good.yaml": GOOD}, SETTERS)
    assert outcome.edited.get("good.yaml") == GOOD_AFTER
    return outcome


def test_billion_laughs_is_not_expanded() -> None:
    started = time.monotonic()
    outcome = update_files({"lol.yaml": BILLION_LAUGHS.encode()}, SETTERS)
    assert time.monotonic() - started < 2
    assert outcome.warnings == []
    assert outcome.edited["lol.yaml"] == BILLION_LAUGHS.replace("old/app:v1", "new/app:v2").encode()


def test_huge_file_is_skipped_quickly() -> None:
    content = GOOD + b"# padding\n" * (5 * 1024 * 1024)
    assert len(content) > 50_000_000 > MAX_FILE_BYTES
    started = time.monotonic()
    outcome = run_with_good("big.yaml", content)
    assert time.monotonic() - started < 5
    assert [str(w) for w in outcome.warnings] == ["big.yaml:1: skipped: file is larger than 2 MiB"]


def test_binary_garbage_with_the_marker_token() -> None:
    garbage = os.urandom(4096) + b'"$imagepolicy"' + os.urandom(4096)
    outcome = run_with_good("blob.yaml", garbage)
    (warning,) = outcome.warnings
    assert warning.path == "blob.yaml" and "skipped" in warning.message
    assert "blob.yaml" not in outcome.edited


def test_invalid_utf8_names_the_line() -> None:
    content = b"a: 1\nb: \xff\xfe\n" + GOOD
    outcome = run_with_good("latin.yaml", content)
    assert [str(w) for w in outcome.warnings] == ["latin.yaml:2: skipped: file is not valid UTF-8"]


@pytest.mark.parametrize(
    ("content", "warning"),
    [
        (
            f"a: [unclosed\nimage: x {M}\n",
            "broken.yaml:2: skipped: not a YAML file the setters can read: "
            "did not find expected ',' or ']'",
        ),
        (
            f"%YAML 1.1\n---\nimage: x {M}\n",
            "broken.yaml:1: skipped: not a YAML file the setters can read: "
            "%YAML/%TAG directives are not supported",
        ),
        (
            f"- image: x {M}\n",
            "broken.yaml:1: skipped: not a YAML file the setters can read: "
            "a document is a sequence, not a mapping",
        ),
        (
            f"a: 1\n---\njust text {M}\n",
            "broken.yaml:3: skipped: not a YAML file the setters can read: "
            "a document is a scalar, not a mapping",
        ),
        (
            f"a: *nowhere\nimage: x {M}\n",
            "broken.yaml:1: skipped: not a YAML file the setters can read: "
            "alias *nowhere has no anchor",
        ),
        (
            "a: " + "[" * 5000 + "]" * 5000 + f"\nimage: x {M}\n",
            "broken.yaml:1: skipped: not a YAML file the setters can read: "
            "nested more than 100 levels deep",
        ),
        (
            f"a: \x00\nimage: x {M}\n",
            "broken.yaml:1: skipped: not a YAML file the setters can read: character",
        ),
    ],
)
def test_unreadable_yaml_is_skipped_with_a_warning(content: str, warning: str) -> None:
    outcome = run_with_good("broken.yaml", content.encode())
    (got,) = outcome.warnings
    assert str(got).startswith(warning)
    assert "Traceback" not in got.message
    assert not outcome.result.files.get("broken.yaml")
    assert "broken.yaml" not in outcome.edited


def test_duplicate_keys_do_not_crash_and_first_wins() -> None:
    content = f"image: a:v1 {M}\nimage: b:v1 {M}\n".encode()
    outcome = run_with_good("dup.yaml", content)
    assert outcome.warnings == []
    assert outcome.edited["dup.yaml"] == f"image: new/app:v2 {M}\nimage: b:v1 {M}\n".encode()


def test_marker_with_trailing_text_is_ignored() -> None:
    content = f"image: a:v1 {M} please\n".encode()
    outcome = run_with_good("trailing.yaml", content)
    assert outcome.warnings == []
    assert "trailing.yaml" not in outcome.edited
    assert not outcome.result.files.get("trailing.yaml")
