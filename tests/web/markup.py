"""A small HTML tree for tests that check what a page's markup says (which element holds which,
which attributes), built with the standard library's parser: no dependency for so little."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


@dataclass(eq=False)
class Element:
    tag: str
    attrs: dict
    parent: Element | None = None
    children: list = field(default_factory=list)  # Elements and strings

    def iter(self):
        yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.iter()

    def find_all(self, tag=None, **attrs):
        """Elements by tag and attribute values (``class_`` for class: one of its names)."""
        for element in self.iter():
            if tag is not None and element.tag != tag:
                continue
            if all(element.has(name.rstrip("_"), value) for name, value in attrs.items()):
                yield element

    def has(self, name, value=True) -> bool:
        if name not in self.attrs:
            return False
        if value is True:
            return True
        if name == "class":
            return value in (self.attrs[name] or "").split()
        return self.attrs[name] == value

    def ancestors(self):
        node = self.parent
        while node is not None:
            yield node
            node = node.parent

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.children)


class _TreeBuilder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.current = self.root

    def handle_starttag(self, tag, attrs):
        element = Element(tag, dict(attrs), parent=self.current)
        self.current.children.append(element)
        if tag not in VOID:
            self.current = element

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Element(tag, dict(attrs), parent=self.current))

    def handle_endtag(self, tag):
        node = self.current
        while node is not self.root and node.tag != tag:
            node = node.parent
        if node is not self.root:
            self.current = node.parent

    def handle_data(self, data):
        self.current.children.append(data)


def parse(html: str | bytes) -> Element:
    builder = _TreeBuilder()
    builder.feed(html.decode() if isinstance(html, bytes) else html)
    builder.close()
    return builder.root


def urls(root: Element):
    """Every URL the page names in an attribute that loads or links something."""
    for element in root.iter():
        for name in ("src", "href", "action", "poster", "data", "srcset"):
            if element.attrs.get(name):
                yield element.tag, name, element.attrs[name]
