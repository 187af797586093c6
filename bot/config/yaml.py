"""Reading untrusted YAML into position-carrying nodes, safely.

The config file comes from any repository that installs the App, so this never
constructs Python objects from it: ruamel.yaml's round-trip composer gives a
node graph (each node has its line and column), and the rest of `bot.config`
validates that graph field by field. Guards: a size limit, UTF-8 only, one
document (Flux manifests: several), and a budget on alias expansion ("billion laughs") and recursive aliases.
"""

from __future__ import annotations

import warnings

from ruamel.yaml import YAML, tokens
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode
from ruamel.yaml.reader import ReaderError

from bot.problems import Problem, error

#: Real configs are a few KiB; ruamel.yaml needs ~40 us per value, so this bounds a
#: hostile file to a few seconds.
MAX_CONFIG_BYTES = 128 * 1024
#: One Flux manifest file: it may hold other objects too, so more than a config.
MAX_MANIFEST_BYTES = 512 * 1024
#: Nodes after expanding aliases; more than a file of this size can hold without aliases.
MAX_EXPANDED_NODES = 200_000
#: A config is about 7 levels deep; ruamel.yaml's scanner is quadratic in flow nesting.
MAX_DEPTH = 50

_OPENING = (
    tokens.BlockMappingStartToken,
    tokens.BlockSequenceStartToken,
    tokens.FlowMappingStartToken,
    tokens.FlowSequenceStartToken,
)
_CLOSING = (tokens.BlockEndToken, tokens.FlowMappingEndToken, tokens.FlowSequenceEndToken)


def compose_yaml(data: str | bytes, path: str) -> tuple[Node | None, Problem | None]:
    """The file's single document as a node graph, or the one problem that stops reading it.

    ``data`` may be the file's raw bytes: they must be UTF-8 (a BOM is fine).
    """
    documents, problem = _compose(data, path, MAX_CONFIG_BYTES, several=False)
    if problem is not None:
        return None, problem
    if not documents:
        return None, error(path, 1, 1, "the file is empty; start it with 'version: 1'")
    return documents[0], None


def compose_yaml_documents(data: str | bytes, path: str) -> tuple[list[Node], Problem | None]:
    """Every document of a file (Kubernetes manifests hold several), or the one problem."""
    return _compose(data, path, MAX_MANIFEST_BYTES, several=True)


def _compose(
    data: str | bytes, path: str, limit: int, *, several: bool
) -> tuple[list[Node], Problem | None]:
    size = len(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    if size > limit:
        what = "Flux objects to read" if several else "a config"
        return [], error(
            path,
            1,
            1,
            f"the file is {size} bytes; the limit is {limit} bytes "
            f"(a file this large is not {what}; shorten it)",
        )
    if isinstance(data, bytes):
        text, problem = _decode(data, path)
        if problem is not None:
            return [], problem
    else:
        text = data.removeprefix("\ufeff")
    try:
        problem = _depth_problem(text, path)
        if problem is not None:
            return [], problem
        with warnings.catch_warnings():  # e.g. a reused anchor: fine, and not for our logs
            warnings.simplefilter("ignore")
            yaml = YAML(typ="rt")
            if several:
                documents = [node for node in yaml.compose_all(text) if node is not None]
            else:
                node = yaml.compose(text)
                documents = [] if node is None else [node]
    except MarkedYAMLError as err:
        return [], _marked_problem(err, path)
    except ReaderError as err:
        line, column = _position(text, err.position)
        return [], error(path, line, column, f"invalid YAML: {_reader_message(err)}")
    except RecursionError:
        return [], error(path, 1, 1, "invalid YAML: the file is nested too deeply")
    except YAMLError as err:
        return [], error(path, 1, 1, f"invalid YAML: {str(err).splitlines()[0]}")
    for node in documents:
        problem = _alias_problem(node, path)
        if problem is not None:
            return [], problem
    return documents, None


def _depth_problem(text: str, path: str) -> Problem | None:
    """Stop at the first collection nested deeper than MAX_DEPTH, before it gets slow."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return None  # flow nesting cannot get that deep; block nesting is cheap
    depth = 0
    for token in YAML(typ="rt").scan(text):
        if isinstance(token, _OPENING):
            depth += 1
            if depth > MAX_DEPTH:
                mark = token.start_mark
                return error(
                    path,
                    mark.line + 1,
                    mark.column + 1,
                    f"the file is nested more than {MAX_DEPTH} levels deep; flatten it",
                )
        elif isinstance(token, _CLOSING):
            depth -= 1
    return None


def _decode(data: bytes, path: str) -> tuple[str, Problem | None]:
    """UTF-8 text, or a problem at the line and column (in bytes) of the first bad byte."""
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as err:
        before = data[: err.start]
        line = before.count(b"\n") + 1
        column = err.start - (before.rfind(b"\n") + 1) + 1
        byte = data[err.start]
        return "", error(
            path, line, column, f"the file is not UTF-8 text (byte 0x{byte:02x}); save it as UTF-8"
        )


def _marked_problem(err: MarkedYAMLError, path: str) -> Problem:
    mark = err.problem_mark or err.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    what = err.problem or err.context or "could not parse the file"
    if err.context and err.problem:
        what = f"{err.problem} ({err.context})"
    return error(path, line, column, f"invalid YAML: {what}")


def _reader_message(err: ReaderError) -> str:
    code = err.character if isinstance(err.character, int) else ord(err.character)
    return f"character #x{code:04x} is not allowed in YAML; remove it"


def _position(text: str, index: int) -> tuple[int, int]:
    before = text[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [child for pair in node.value for child in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def _alias_problem(root: Node, path: str) -> Problem | None:
    """Count nodes as if aliases were expanded; refuse cycles and huge expansions.

    An alias is the anchored node object itself, so sizes are memoised per node:
    linear in the file even for a billion-laughs file.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    cycle = "an alias refers to a value that contains it; remove it"
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            size = 1 + sum(sizes[id(child)] for child in _children(node))
            if size > MAX_EXPANDED_NODES:
                return _problem_at(
                    node,
                    path,
                    f"aliases here expand to more than {MAX_EXPANDED_NODES} values; "
                    "write the values out instead of nesting aliases",
                )
            sizes[key] = size
            continue
        if key in sizes:
            continue
        if key in on_path:
            return _problem_at(node, path, cycle)
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in on_path:
                return _problem_at(child, path, cycle)
            if id(child) not in sizes:
                stack.append((child, False))
    return None


def _problem_at(node: Node, path: str, message: str) -> Problem:
    return error(path, node.start_mark.line + 1, node.start_mark.column + 1, message)
