"""Prompt parser: classes and counts, synonyms, plurals, room defaults, errors."""

from __future__ import annotations

import pytest

from ssomotion_ros.scenes.objects import LIBRARY
from ssomotion_ros.scenes.prompt import ROOM_DEFAULTS, parse_prompt


@pytest.mark.parametrize(
    "prompt, room, objects",
    [
        (
            "a living room with a sofa, two armchairs and a coffee table",
            "living room",
            {"sofa": 1, "armchair": 2, "coffee table": 1},
        ),
        ("A kitchen with a fridge, 3 bar stools and a counter.", "kitchen",
         {"refrigerator": 1, "stool": 3, "kitchen counter": 1}),
        ("a room with a couch and a TV", "room", {"sofa": 1, "tv stand": 1}),
        ("an office with two desks, a couple of office chairs and some bookcases", "office",
         {"desk": 2, "chair": 2, "bookshelf": 2}),
        ("a bathroom with a bath, a wc and a basin", "bathroom",
         {"bathtub": 1, "toilet": 1, "sink": 1}),
        ("a dining room with a table and six chairs and a chair", "dining room",
         {"dining table": 1, "chair": 7}),
        ("a bedroom with a double bed, two night stands and a closet", "bedroom",
         {"bed": 1, "nightstand": 2, "wardrobe": 1}),
        ("a room with 3 benches and 2 boxes", "room", {"bench": 3, "box": 2}),
    ],
)  # fmt: skip
def test_prompt_classes_and_counts(prompt, room, objects):
    p = parse_prompt(prompt)
    assert p.room_type == room
    assert dict(p.objects) == objects
    assert p.clutter == 0


def test_room_defaults_and_modifiers():
    p = parse_prompt("a small bedroom")
    assert dict(p.objects) == dict(ROOM_DEFAULTS["bedroom"])
    assert p.size_scale == pytest.approx(0.8)
    p = parse_prompt("a 6 x 5 m cluttered room with 12 random objects")
    assert p.room_size == (6.0, 5.0)
    assert p.clutter == 12 and p.objects == []
    assert parse_prompt("a cluttered room").clutter == 8
    assert parse_prompt("an L-shaped kitchen with a fridge").shape == "L"
    assert parse_prompt("a kitchen").shape == "rect"


def test_every_class_name_parses():
    for name in LIBRARY:
        assert dict(parse_prompt(f"a room with a {name}").objects) == {name: 1}


@pytest.mark.parametrize(
    "prompt, match",
    [
        ("a room with a unicorn", r"unknown word 'unicorn'.*known object classes: .*sofa"),
        ("", "empty scene prompt"),
        ("a room with two", "has no object class"),
        ("a 100 x 5 m room with a bed", "out of range"),
        ("a room with 0 chairs", "must be positive"),
    ],
)
def test_bad_prompts(prompt, match):
    with pytest.raises(ValueError, match=match):
        parse_prompt(prompt)
