"""Parsing and grounding: every construct, every rejection, paraphrases, state, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ssomotion_ros.language.goal import Goal
from ssomotion_ros.language.instruction import (
    AgentState,
    GroundingConfig,
    normalise,
    parse_and_ground,
    parse_noun_phrase,
    split_address,
    split_clauses,
)
from ssomotion_ros.sso.types import Affordance, SceneInstance


def _targets(plan):
    return [g.target_id for g in plan.goals]


def _actions(plan):
    return [g.action for g in plan.goals]


# ---- pure text helpers ------------------------------------------------------------------


def test_normalise_and_address():
    assert normalise("  Walk to the Sofa!  ") == "walk to the sofa"
    assert split_address("alice: sit down") == ("alice", "sit down")
    assert split_address("bob, go to the door") == ("bob", "go to the door")
    # a verb or a filler before a comma is not a name
    assert split_address("stop, then turn left") == (None, "stop, then turn left")
    assert split_address("please, sit down") == (None, "please, sit down")
    assert normalise("walk 2,5 m & sit") == "walk 2.5 m and sit"


@pytest.mark.parametrize(
    "text,n",
    [
        ("walk to the door, then sit on the sofa", 2),
        ("walk to the door and then sit on the sofa", 2),
        ("walk to the door. after that, sit on the sofa", 2),
        ("walk to the door and sit down", 2),
        ("go to the chair between the sofa and the tv", 1),
        ("turn right, walk three metres forward, then turn left", 3),
        ("go and stand by the sink", 1),
    ],
)
def test_split_clauses(text, n):
    assert len(split_clauses(normalise(text))) == n


def test_noun_phrase_parts():
    p = parse_noun_phrase("the second chair from the left next to the desk")
    assert (p.head, p.ordinal, p.order_from, p.relation) == ("chair", 2, "left", "near")
    assert p.refs[0].head == "desk"
    p = parse_noun_phrase("the stool that is furthest away")
    assert (p.head, p.superlative) == ("stool", "farthest")
    p = parse_noun_phrase("the chair between the plant and the vase")
    assert p.relation == "between" and [r.head for r in p.refs] == ["plant", "vase"]
    assert parse_noun_phrase("a chair").indefinite
    assert parse_noun_phrase("it").pronoun
    assert parse_noun_phrase("the last box").ordinal == -1
    assert parse_noun_phrase("the 3rd box").ordinal == 3


# ---- actions and paraphrases ------------------------------------------------------------


@pytest.mark.parametrize(
    "text,action,target",
    [
        ("walk to the door", "walk", "door"),
        ("head over to the bookshelf", "walk", "bookshelf"),
        ("make your way to the lamp", "walk", "lamp"),
        ("sit on the sofa", "sit", "sofa"),
        ("take a seat on the couch", "sit", "sofa"),
        ("have a seat in the armchair", "sit", "armchair"),
        ("lie on the sofa", "lie", "sofa"),
        ("have a rest on the sofa", "lie", "sofa"),
        ("stretch out on the sofa", "lie", "sofa"),
        ("please walk to the coffee table", "walk", "table"),
        ("could you go to the television", "walk", "tv"),
    ],
)
def test_actions_and_paraphrases(run, key, text, action, target):
    plan = run(text)
    assert plan.ok, plan.describe()
    assert _actions(plan) == [action]
    assert _targets(plan) == [key("living", target)]


def test_head_over_to_the_fridge(run, key):
    plan = run("head over to the fridge", "kitchen")
    assert _targets(plan) == [key("kitchen", "fridge")]


@pytest.mark.parametrize("text", ["stand up", "get up", "stop", "halt", "freeze"])
def test_untargeted_actions(run, text):
    plan = run(text)
    assert plan.ok and plan.goals[0].target_id is None
    assert plan.goals[0].action in ("stand_up", "stop")


@pytest.mark.parametrize(
    "text,seconds",
    [("wait 5 seconds", 5), ("wait for ten seconds", 10), ("pause for 1.5 s", 1.5),
     ("wait a couple of seconds", 2), ("wait for one minute", 60), ("wait", 3.0)],
)  # fmt: skip
def test_wait(run, text, seconds):
    plan = run(text)
    assert _actions(plan) == ["wait"]
    assert plan.goals[0].duration_s == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text,yaw_deg,facing",
    [("turn left", 0, 90), ("turn right", 90, 0), ("turn around", 45, -135),
     ("turn 45 degrees to the left", 0, 45), ("turn right by 30 degrees", 0, -30),
     ("face the bookshelf", 0, math.degrees(math.atan2(3.0, 0.5))),
     ("turn towards the tv", 30, 180), ("turn to your left", 0, 90),
     ("turn to the right", 0, -90), ("rotate 180 degrees", 0, 180), ("look left", 10, 100),
     ("turn 90 degrees clockwise", 0, -90)],
)  # fmt: skip
def test_turn(run, text, yaw_deg, facing):
    plan = run(text, yaw_deg=yaw_deg)
    assert _actions(plan) == ["turn"]
    diff = (math.degrees(plan.goals[0].facing) - facing + 180) % 360 - 180
    assert abs(diff) < 1e-6
    np.testing.assert_allclose(plan.goals[0].position[:2], [0, 0])


# ---- free targets (numbers as words, units, heading) ----------------------------------


@pytest.mark.parametrize(
    "text,yaw_deg,goal",
    [
        ("walk two metres forward", 0, (2, 0)),
        ("go 3 m to your left", 0, (0, 3)),
        ("move one metre back", 0, (-1, 0)),
        ("step to your right", 0, (0, -1)),
        ("walk 2.5 meters forward", 90, (0, 2.5)),
        ("go to your left", 180, (0, -1)),
        ("move half a metre to the right", 0, (0, -0.5)),
        ("walk fifty centimetres forward", 0, (0.5, 0)),
        ("take four steps forward", 0, (2.8, 0)),
        ("back up a metre", 0, (-1, 0)),
    ],
)
def test_free_targets(run, text, yaw_deg, goal):
    plan = run(text, x=1.0, y=-1.0, yaw_deg=yaw_deg)
    assert plan.ok, plan.describe()
    g = plan.goals[0]
    assert g.action == "walk" and g.target_id is None
    np.testing.assert_allclose(g.position[:2], np.array(goal) + [1.0, -1.0], atol=1e-9)


# ---- ordinals, superlatives, relations --------------------------------------------------


@pytest.mark.parametrize(
    "text,target",
    [
        ("sit on the nearest stool", "stool_2"),
        ("sit on the leftmost stool", "stool_3"),
        ("sit on the stool on the right", "stool_1"),
        ("sit on the second stool from the left", "stool_2"),
        ("sit on the first stool from the right", "stool_1"),
        ("sit on the second chair", "chair_e"),
        ("sit on the last chair", "chair_w"),
        ("sit on the farthest chair", "chair_w"),
        ("sit on the stool next to the sink", "stool_1"),
        ("sit on the chair closest to the door", "chair_w"),
        ("walk to the chair left of the table", "chair_n"),
        ("walk to the chair right of the table", "chair_s"),
        ("sit on a chair", "chair_n"),
        ("sit on one of the chairs", "chair_n"),
        ("sit on the stool in the middle", "stool_2"),
        ("sit on the middle stool", "stool_2"),
        ("go to the stool nearest the sink", "stool_1"),
    ],
)
def test_kitchen_references(run, key, text, target):
    plan = run(text, "kitchen")
    assert plan.ok, plan.describe()
    assert _targets(plan)[-1] == key("kitchen", target)


def test_front_behind_relative_to_agent(run, key):
    # agent north of the table looking south: "in front of" = the side facing the agent
    kw = dict(scene="kitchen", x=-1.2, y=1.0, yaw_deg=-90)
    assert _targets(run("sit on the chair in front of the table", **kw)) == [
        key("kitchen", "chair_n")
    ]
    assert _targets(run("sit on the chair behind the table", **kw)) == [key("kitchen", "chair_s")]
    assert _targets(run("sit on the chair to the left of the table", **kw)) == [
        key("kitchen", "chair_e")
    ]
    assert _targets(run("sit on the chair to the right of the table", **kw)) == [
        key("kitchen", "chair_w")
    ]


def test_between_and_nested(run, key):
    assert _targets(run("walk to the chair between the plant and the vase", "hall")) == [
        key("hall", "chair_mid")
    ]
    assert _targets(run("walk to the chair behind the left box", "hall")) == [
        key("hall", "chair_mid")
    ]
    plan = run("walk between the two boxes", "hall")
    np.testing.assert_allclose(plan.goals[0].position[:2], [2.0, 0.0])
    plan = run("walk between the sofa and the tv")
    assert plan.goals[0].target_id is None
    np.testing.assert_allclose(plan.goals[0].position[:2], [0.75, 0.0])


def test_sit_at_desk_uses_nearby_seat(run, key):
    assert _targets(run("sit at the desk", "office")) == [key("office", "chair_desk")]


# ---- sequences and addressing -----------------------------------------------------------


def test_sequence_state_and_implicit_target(run, key):
    plan = run("alice: walk to the sofa and sit down, wait 3 seconds, then stand up")
    assert plan.agent == "alice"
    assert _actions(plan) == ["walk", "sit", "wait", "stand_up"]
    sofa = key("living", "sofa")
    assert _targets(plan)[:2] == [sofa, sofa]
    walk, sit, wait, stand = plan.goals
    # walk goal just outside the sofa's box on the agent's side, facing it
    assert walk.position[0] == pytest.approx(4.0 - 0.45 - 0.4)
    assert walk.facing == pytest.approx(0.0)
    # sit: seat point, facing the sofa's front; hint = pelvis displacement (capped)
    np.testing.assert_allclose(sit.position, [4.0, 0.0, 0.45])
    assert sit.facing == pytest.approx(math.pi)
    ref = np.array([4.0 - walk.position[0], 0.0, 0.45 + 0.1 - 0.93])
    np.testing.assert_allclose(sit.direction_hint, ref / max(1.0, np.linalg.norm(ref)))
    # later steps start where the previous ended
    np.testing.assert_allclose(wait.position[:2], [4.0, 0.0])
    np.testing.assert_allclose(stand.direction_hint, [0, 0, 0.93 - 0.55])


def test_walk_direction_hint_capped(run):
    g = run("walk to the door").goals[0]
    assert np.linalg.norm(g.direction_hint) == pytest.approx(1.0)
    d = g.position[:2] / np.linalg.norm(g.position[:2])
    np.testing.assert_allclose(g.direction_hint[:2], d)
    g = run("walk half a metre forward").goals[0]
    np.testing.assert_allclose(g.direction_hint, [0.5, 0, 0])


def test_ellipsis_and_ordinal_after_turn(run, key):
    plan = run("go to the sink, then to the fridge", "kitchen")
    assert _targets(plan) == [key("kitchen", "sink"), key("kitchen", "fridge")]
    plan = run("turn right, walk three metres forward, then turn left", "hall")
    np.testing.assert_allclose(plan.goals[1].position[:2], [0, -3], atol=1e-9)
    assert plan.goals[2].facing == pytest.approx(0.0, abs=1e-9)


# ---- rejections ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,scene,code,words",
    [
        ("", "living", "empty", "empty"),
        ("alice:", "living", "empty", "empty"),
        ("walk to the piano", "living", "unknown_target", "no 'piano' here; nearest matches:"),
        ("sit on the stool", "kitchen", "ambiguous", "3 stools match"),
        ("walk to the nearest box", "hall", "ambiguous", "2 boxes match"),
        ("sit on the table", "living", "impossible", "can't sit on the table"),
        ("lie on the chair", "living", "impossible", "things to lie on here: sofa"),
        ("sit on the box", "hall", "impossible", "box"),
        ("sit on the fifth chair", "kitchen", "out_of_range", "only 4 chairs"),
        ("walk to the middle box", "hall", "out_of_range", "at least 3 boxes"),
        ("turn", "living", "not_understood", "turn which way"),
        ("wait for the bus", "living", "not_understood", "how long"),
        ("go to the door and leave", "living", "not_understood", "door and leave"),
        ("walk between the chairs", "kitchen", "ambiguous", "4 chairs here"),
        ("sing a song", "living", "not_understood", "didn't understand"),
        ("walk to the chair behind the lamp", "living", "no_match", "no chair is behind"),
        ("walk to the door, then sit on the table", "living", "impossible", "step 2"),
    ],
)
def test_rejections(run, text, scene, code, words):
    plan = run(text, scene)
    assert not plan.ok and plan.goals == []
    assert plan.rejection.code == code, plan.rejection.reason
    assert words in plan.rejection.reason


def test_ambiguity_suggestions_disambiguate(run, key):
    plan = run("walk to the chair", "kitchen")
    rej = plan.rejection
    assert rej.code == "ambiguous" and len(rej.candidates) == 4
    assert "the nearest chair" in rej.candidates
    assert len(set(rej.candidate_ids)) == 4
    # each suggestion, said back, grounds to the instance it was offered for
    for phrase, iid in zip(rej.candidates, rej.candidate_ids):
        if "(" in phrase:
            continue
        plan = run(f"walk to {phrase}", "kitchen")
        assert plan.ok, (phrase, plan.describe())
        assert plan.goals[0].target_id == iid


def test_unknown_lists_close_labels(run):
    rej = run("walk to the piano", "office").rejection
    assert len(rej.candidates) == 2 and all(isinstance(c, str) for c in rej.candidates)


# ---- inputs, determinism, describe ---------------------------------------------------------


def test_bad_inputs(encoder, scenes):
    insts, _ = scenes["living"]
    with pytest.raises(ValueError, match="agent_state"):
        parse_and_ground("stop", insts, (0, 0), encoder)
    with pytest.raises(ValueError, match="finite"):
        parse_and_ground("stop", insts, (0, float("nan"), 0), encoder)
    with pytest.raises(ValueError, match="string"):
        parse_and_ground(None, insts, (0, 0, 0), encoder)
    with pytest.raises(ValueError, match="SceneInstance"):
        parse_and_ground("stop", [{"name": "sofa"}], (0, 0, 0), encoder)
    assert AgentState.coerce(np.array([1.0, 2.0, 0.5])) == AgentState(1.0, 2.0, 0.5)


def test_empty_scene(encoder):
    plan = parse_and_ground("walk to the sofa", [], (0, 0, 0), encoder)
    assert plan.rejection.code == "unknown_target"
    assert parse_and_ground("turn left", [], (0, 0, 0), encoder).ok


def test_deterministic_and_describe(run):
    a = run("walk to the door, then sit on the armchair").to_dict()
    b = run("walk to the door, then sit on the armchair").to_dict()
    assert a == b
    plan = run("walk to the door, then sit on the armchair")
    text = plan.describe()
    assert "walk to door" in text and "sit on armchair" in text
    assert all(0.0 < g.confidence <= 1.0 for g in plan.goals)
    assert run("wait 2 seconds").goals[0].describe() == "wait 2 s"


def test_goal_validates_action():
    with pytest.raises(ValueError, match="unknown action"):
        Goal("dance", None, None, np.zeros(3), 0.2, None, np.zeros(3), 1.0, "dance")


def test_custom_affordance_and_config(encoder):
    """A stool-like crate with a sit affordance becomes sittable; thresholds configurable."""
    crate = SceneInstance(
        instance_id=7, label=0, name="crate", centroid=np.array([2.0, 0.0, 0.2]),
        bbox_min=np.array([1.8, -0.2, 0.0]), bbox_max=np.array([2.2, 0.2, 0.4]),
        affordances=[Affordance("sit", np.array([2.0, 0.0, 0.4]), facing=math.pi)],
    )  # fmt: skip
    plan = parse_and_ground("sit on the crate", [crate], (0, 0, 0), encoder)
    assert plan.ok and plan.goals[0].target_id == 7
    strict = GroundingConfig(match_threshold=0.99)
    plan = parse_and_ground("sit on the wooden box", [crate], (0, 0, 0), encoder, strict)
    assert plan.rejection.code == "unknown_target"


def test_label_name_styles(encoder):
    """Mapper vocabularies write names as 'night_stand' or 'Dining-Table'."""

    def box(iid, name, x):
        return SceneInstance(
            instance_id=iid, label=iid, name=name, centroid=np.array([x, 0.0, 0.3]),
            bbox_min=np.array([x - 0.2, -0.2, 0.0]), bbox_max=np.array([x + 0.2, 0.2, 0.6]),
        )  # fmt: skip

    insts = [box(1, "night_stand", 2.0), box(2, "Dining-Table", -2.0)]
    plan = parse_and_ground(
        "go to the night stand, then to the dining table", insts, (0, 0, 0), encoder
    )
    assert [g.target_id for g in plan.goals] == [1, 2]
    assert plan.goals[0].target_name == "night_stand"
