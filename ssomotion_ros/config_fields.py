"""Documented config fields: the bridge between config dataclasses and ROS parameters.

Config dataclasses keep one documented field per parameter. Write the doc either as
``field(default=..., metadata={"doc": "..."})`` (see :func:`doc_field`) or as a ``#:``
comment / bare string right above or below the field; :func:`field_docs` reads both, so
the ROS layer can declare every field as a parameter with its description.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from functools import cache
from typing import Any


def doc_field(default: Any, doc: str, **metadata: Any) -> Any:
    """A dataclass field with a one-line description (and optional ``units``/``choices``)."""
    md = {"doc": doc, **metadata}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=md)
    return dataclasses.field(default=default, metadata=md)


@cache
def field_docs(cls: type) -> dict[str, str]:
    """Map each field of dataclass ``cls`` to its one-line description ("" if none)."""
    if not dataclasses.is_dataclass(cls):
        raise ValueError(f"{cls!r} is not a dataclass")
    docs: dict[str, str] = {}
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):
        lines = []
    names = {f.name for f in dataclasses.fields(cls)}
    pending: list[str] = []
    for i, line in enumerate(lines):
        s = line.strip()
        m = re.match(r"#:\s?(.*)", s)
        if m:
            pending.append(m.group(1))
            continue
        fm = re.match(r"(\w+)\s*:", s)
        if fm and fm.group(1) in names:
            name = fm.group(1)
            doc = " ".join(pending)
            if not doc and i + 1 < len(lines):
                nxt = lines[i + 1].strip()
                dm = re.match(r'^[rbu]?("""|\'\'\'|"|\')(.*?)(\1)?$', nxt)
                if dm:
                    doc = dm.group(2).strip()
            if not doc and "#" in s:
                doc = s.split("#", 1)[1].strip()
            docs[name] = doc
        pending = [] if not m else pending
    for f in dataclasses.fields(cls):
        if "doc" in f.metadata:
            docs[f.name] = f.metadata["doc"]
        docs.setdefault(f.name, "")
    return docs
