"""YAML for rule and config files: YAML 1.2 booleans, and the line of any node for errors.

PyYAML implements YAML 1.1, where the bare words `on`, `off`, `yes` and `no` are
booleans. A rule's `on: firing` would arrive as `{True: "firing"}`. `RuleYamlLoader` keeps
those words as strings, as YAML 1.2 does; only `true` and `false` are booleans. A boolean field
given `yes` still validates, because pydantic accepts "yes"/"no"/"on"/"off" for bool fields.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = ["RuleYamlLoader", "YamlDocument", "parse_yaml"]

_BOOL_TAG: Final = "tag:yaml.org,2002:bool"


class RuleYamlLoader(yaml.SafeLoader):
    """SafeLoader whose only booleans are true/false (any case), as in YAML 1.2."""


RuleYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
RuleYamlLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """A parsed document: the plain data, and the node tree it came from (None if empty)."""

    data: Any
    root: Node | None

    def line_of(self, loc: Sequence[str | int]) -> int:
        """1-based line of the node at `loc` (mapping keys, sequence indices).

        Mapping entries report the line of their key. Where `loc` leaves the document (a
        missing key, a path inside a scalar) the nearest existing parent is used.
        """
        if self.root is None:
            return 1
        line = self.root.start_mark.line + 1
        node: Node = self.root
        for part in loc:
            found = _child(node, part)
            if found is None:
                break
            anchor, node = found
            line = anchor.start_mark.line + 1
        return line

    def duplicate_keys(self) -> list[tuple[int, str]]:
        """(line, key) of every key repeated in its mapping; PyYAML silently keeps the last."""
        found: list[tuple[int, str]] = []
        for mapping in _mappings(self.root):
            seen: set[str] = set()
            for key, _value in mapping.value:
                if isinstance(key, ScalarNode) and key.value in seen:
                    found.append((key.start_mark.line + 1, key.value))
                elif isinstance(key, ScalarNode):
                    seen.add(key.value)
        return found


def parse_yaml(text: str) -> YamlDocument:
    """Parse one YAML document, keeping the node tree; raises yaml.YAMLError with a mark."""
    loader = RuleYamlLoader(text)
    try:
        root = loader.get_single_node()
        data = None if root is None else loader.construct_document(root)
    finally:
        loader.dispose()
    return YamlDocument(data=data, root=root)


def _child(node: Node, part: str | int) -> tuple[Node, Node] | None:
    """(node whose line to report, node to descend into) for one step of a location."""
    if isinstance(node, MappingNode):
        matches = [
            (key, value)
            for key, value in node.value
            if isinstance(key, ScalarNode) and key.value == str(part)
        ]
        return matches[-1] if matches else None  # the last one wins, as in the loaded data
    if isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        item: Node = node.value[part]
        return item, item
    return None


def _mappings(root: Node | None) -> Iterator[MappingNode]:
    """Every mapping node once; aliases can make the tree a graph, so track visits."""
    stack = [root] if root is not None else []
    visited: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        if isinstance(node, MappingNode):
            yield node
            stack.extend(value for pair in node.value for value in pair)
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)
