"""A small deterministic parser from a room description to classes and counts.

Grammar (case-insensitive, punctuation ignored)::

    [a|an|the] [small|large|...] [ROOM TYPE] [room] [of W x D m] [with|containing]
        ITEM {, ITEM} [and ITEM]
    ITEM := [COUNT] CLASS | COUNT random objects | cluttered

* COUNT: digits, ``a``/``an``/``one`` .. ``twelve``, ``a pair of``, ``a couple of``,
  ``a few`` (3), ``several`` (3), ``some`` (2).
* CLASS: a library class (``sofa``, ``dining table``, ...), its plural, or a synonym
  (``couch`` -> sofa, ``fridge`` -> refrigerator, ``tv`` -> tv stand, ...).
* ROOM TYPE: living room, bedroom, kitchen, bathroom, office, dining room, room.
  A room type without listed objects gets that type's default furniture.
* ``N random objects`` / ``cluttered`` add a clutter of N (default 8) random objects.
* ``L-shaped`` makes an L-shaped room (one corner of the rectangle is solid wall).

Any other word raises ValueError naming it and listing the known classes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ssomotion_ros.scenes.objects import LIBRARY

NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "single": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "pair of": 2,
    "a pair of": 2,
    "couple of": 2,
    "a couple of": 2,
    "a few": 3,
    "few": 3,
    "several": 3,
    "some": 2,
}

#: Synonyms (and multi-word variants) -> library class.
SYNONYMS = {
    "couch": "sofa",
    "settee": "sofa",
    "loveseat": "sofa",
    "love seat": "sofa",
    "arm chair": "armchair",
    "easy chair": "armchair",
    "recliner": "armchair",
    "office chair": "chair",
    "dining chair": "chair",
    "seat": "chair",
    "bar stool": "stool",
    "barstool": "stool",
    "ottoman": "stool",
    "table": "dining table",
    "kitchen table": "dining table",
    "dinner table": "dining table",
    "tea table": "coffee table",
    "side table": "coffee table",
    "writing desk": "desk",
    "computer desk": "desk",
    "double bed": "bed",
    "single bed": "bed",
    "night stand": "nightstand",
    "bedside table": "nightstand",
    "nightstands": "nightstand",
    "closet": "wardrobe",
    "armoire": "wardrobe",
    "bookcase": "bookshelf",
    "shelf": "bookshelf",
    "shelves": "bookshelf",
    "bookshelves": "bookshelf",
    "cupboard": "cabinet",
    "dresser": "cabinet",
    "sideboard": "cabinet",
    "chest of drawers": "cabinet",
    "tv": "tv stand",
    "tvs": "tv stand",
    "television": "tv stand",
    "tv cabinet": "tv stand",
    "fridge": "refrigerator",
    "counter": "kitchen counter",
    "countertop": "kitchen counter",
    "worktop": "kitchen counter",
    "basin": "sink",
    "washbasin": "sink",
    "wc": "toilet",
    "tub": "bathtub",
    "bath": "bathtub",
    "potted plant": "plant",
    "houseplant": "plant",
    "floor lamp": "lamp",
    "standing lamp": "lamp",
    "cardboard box": "box",
    "crate": "box",
    "bin": "trash can",
    "trash bin": "trash can",
    "wastebasket": "trash can",
    "garbage can": "trash can",
}

_IRREGULAR_PLURALS = {
    "shelves": "shelf",
    "benches": "bench",
    "couches": "couch",
    "boxes": "box",
    "cupboards": "cupboard",
    "wardrobes": "wardrobe",
    "bookshelves": "bookshelf",
    "tables": "table",
    "sofas": "sofa",
    "settees": "settee",
    "dressers": "dresser",
    "bathtubs": "bathtub",
    "tubs": "tub",
    "baths": "bath",
}

#: Room types -> default furniture (class, count) when the prompt lists none.
ROOM_DEFAULTS: dict[str, list[tuple[str, int]]] = {
    "living room": [("sofa", 1), ("armchair", 1), ("coffee table", 1), ("tv stand", 1),
                    ("plant", 1), ("lamp", 1)],
    "bedroom": [("bed", 1), ("nightstand", 2), ("wardrobe", 1), ("chair", 1), ("lamp", 1)],
    "kitchen": [("kitchen counter", 1), ("refrigerator", 1), ("sink", 1), ("dining table", 1),
                ("chair", 3)],
    "bathroom": [("toilet", 1), ("bathtub", 1), ("sink", 1), ("trash can", 1)],
    "office": [("desk", 1), ("chair", 1), ("bookshelf", 2), ("cabinet", 1), ("plant", 1)],
    "dining room": [("dining table", 1), ("chair", 4), ("cabinet", 1), ("plant", 1)],
    "room": [],
}  # fmt: skip

ROOM_SYNONYMS = {
    "living room": "living room",
    "livingroom": "living room",
    "lounge": "living room",
    "sitting room": "living room",
    "bedroom": "bedroom",
    "bed room": "bedroom",
    "kitchen": "kitchen",
    "bathroom": "bathroom",
    "washroom": "bathroom",
    "office": "office",
    "study": "office",
    "dining room": "dining room",
    "room": "room",
    "apartment": "room",
    "space": "room",
}

#: Size words -> room size scale factor.
SIZE_WORDS = {"small": 0.8, "tiny": 0.7, "compact": 0.85, "medium": 1.0, "large": 1.3,
              "big": 1.3, "spacious": 1.4, "huge": 1.6}  # fmt: skip

_STOP = {"a", "an", "the", "with", "and", "containing", "contains", "has", "have", "having",
         "there", "is", "are", "in", "of", "plus", "also", "its", "it", "which", "that",
         "furnished", "including", "some", "m", "metre", "metres", "meter", "meters"}  # fmt: skip
_CLUTTER_WORDS = {"cluttered", "messy", "crowded"}
_FILLER_ADJ = {"empty", "tidy", "modern", "cozy", "cosy", "simple", "typical", "indoor"}

#: Default clutter size for ``cluttered`` without a count.
DEFAULT_CLUTTER = 8


@dataclass
class ParsedPrompt:
    """The result of :func:`parse_prompt`.

    room_type: one of :data:`ROOM_DEFAULTS`.
    objects: (class, count) in prompt order (counts of repeated classes summed); the
        room type's defaults when the prompt lists no objects.
    size_scale: room size factor from size words (1.0 if none).
    room_size: explicit (width x, depth y) in metres, or None.
    clutter: number of extra random clutter objects.
    shape: ``"rect"`` or ``"L"`` (an L-shaped room: one corner is solid wall).
    """

    room_type: str = "room"
    objects: list[tuple[str, int]] = field(default_factory=list)
    size_scale: float = 1.0
    room_size: tuple[float, float] | None = None
    clutter: int = 0
    shape: str = "rect"


def _singular(word: str) -> str:
    if word in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[word]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def _class_of(phrase: str) -> str | None:
    for cand in (phrase, _singular_phrase(phrase)):
        if cand in LIBRARY:
            return cand
        if cand in SYNONYMS:
            return SYNONYMS[cand]
    return None


def _singular_phrase(phrase: str) -> str:
    words = phrase.split(" ")
    words[-1] = _singular(words[-1])
    return " ".join(words)


def known_words_help() -> str:
    """One line listing the known classes (used in error messages)."""
    return "known object classes: " + ", ".join(sorted(LIBRARY))


def parse_prompt(prompt: str) -> ParsedPrompt:
    """Parse a room description (see the module docstring for the grammar).

    prompt: e.g. ``"a living room with a sofa, two armchairs and a coffee table"``.
    Returns a :class:`ParsedPrompt`. Raises ValueError for an empty prompt, an unknown
    word (the message names it and lists the known classes), a count with no class
    after it, or a non-positive count.
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("empty scene prompt; describe a room, e.g. 'a bedroom with a bed'")
    text = prompt.lower()
    out = ParsedPrompt()
    m = re.search(
        r"(\d+(?:\.\d+)?)\s*(?:m\s*)?(?:x|by|\*)\s*(\d+(?:\.\d+)?)\s*(?:m\b|meters?|metres?)?", text
    )  # noqa: E501
    if m:
        out.room_size = (float(m.group(1)), float(m.group(2)))
        if not (1.5 <= out.room_size[0] <= 30 and 1.5 <= out.room_size[1] <= 30):
            raise ValueError(f"room size {out.room_size} m is out of range (1.5 .. 30 m per side)")
        text = text[: m.start()] + " " + text[m.end() :]
    text = re.sub(r"[^a-z0-9 ]+", " ", text.replace("-", " "))
    tokens = text.split()
    counts: dict[str, int] = {}
    pending: int | None = None
    cluttered = False
    i = 0
    while i < len(tokens):
        matched = False
        for n in (4, 3, 2, 1):
            if i + n > len(tokens):
                continue
            phrase = " ".join(tokens[i : i + n])
            # counts first (so "a few" beats "a"), then classes, then room types
            if phrase in NUMBERS and not (n == 1 and phrase in ("a", "an", "some") and
                                          _next_is_room(tokens, i + 1)):  # fmt: skip
                pending = NUMBERS[phrase]
            elif phrase.isdigit():
                pending = int(phrase)
                if pending <= 0:
                    raise ValueError(f"object count must be positive, got {phrase!r}")
            elif _class_of(phrase) is not None:
                cls = _class_of(phrase)
                counts[cls] = counts.get(cls, 0) + (pending if pending is not None else 1)
                pending = None
            elif phrase in ROOM_SYNONYMS:
                out.room_type = ROOM_SYNONYMS[phrase]
                pending = None
            elif phrase in ("random object", "random objects", "objects", "object",
                            "clutter objects", "clutter", "items", "random items",
                            "things"):  # fmt: skip
                out.clutter += pending if pending is not None else DEFAULT_CLUTTER
                pending = None
            elif phrase in ("l shaped", "lshaped", "l shape"):
                out.shape = "L"
            elif n == 1 and phrase in ("rectangular", "square"):
                out.shape = "rect"
            elif n == 1 and phrase in SIZE_WORDS:
                out.size_scale *= SIZE_WORDS[phrase]
            elif n == 1 and phrase in _CLUTTER_WORDS:
                cluttered = True
            elif n == 1 and (phrase in _STOP or phrase in _FILLER_ADJ):
                pass
            else:
                continue
            i += n
            matched = True
            break
        if not matched:
            raise ValueError(
                f"unknown word {tokens[i]!r} in scene prompt {prompt!r}; {known_words_help()}; "
                f"room types: {', '.join(ROOM_DEFAULTS)}"
            )
    if pending is not None and pending > 1:
        raise ValueError(f"count {pending} at the end of {prompt!r} has no object class after it")
    if cluttered and out.clutter == 0:
        out.clutter = DEFAULT_CLUTTER
    out.objects = list(counts.items())
    if not out.objects and not out.clutter:
        out.objects = list(ROOM_DEFAULTS[out.room_type])
    return out


def _next_is_room(tokens: list[str], j: int) -> bool:
    """True if tokens[j:] start with (size words and) a room type ("a small bedroom")."""
    while j < len(tokens) and (tokens[j] in SIZE_WORDS or tokens[j] in _FILLER_ADJ
                               or tokens[j] in _CLUTTER_WORDS
                               or tokens[j] in ("l", "shaped", "lshaped", "shape")):  # fmt: skip
        j += 1
    for n in (2, 1):
        if " ".join(tokens[j : j + n]) in ROOM_SYNONYMS:
            return True
    return False
