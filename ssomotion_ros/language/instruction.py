"""Instruction text -> grounded goals in the live scene (rule-based parse + encoder).

Pipeline (deterministic; no LLM):

1. normalise the text; read an address prefix ("alice: ...", "Alice, ...");
2. split into clauses at sequence connectors ("then", "and then", "after that",
   "afterwards", commas, semicolons, full stops, and "and" before a verb);
3. read each clause's action from a verb lexicon (with paraphrases), then its argument:
   a free target ("two metres forward", "to your left"), a side of an object ("behind
   the sofa", "between the sofa and the tv"), a turn ("left", "45 degrees right",
   "towards the door") or a duration ("5 seconds");
4. parse noun phrases: determiners, ordinals ("second", "2nd", "last", "... from the
   left"), superlatives (nearest/closest/farthest/furthest, leftmost/rightmost,
   "on the left", biggest/smallest), spatial relations (next to/near/beside/by/at,
   closest to, farthest from, left/right of, in front of, behind, between X and Y)
   and pronouns ("it", "there");
5. ground noun phrases against ``instances``: the head noun's similarity to each label
   name through the shared :class:`TextEncoder` (a label that ends the noun phrase
   word for word counts as a perfect match: "coffee table" -> table), then relations,
   superlatives and ordinals on the geometry. Near-ties within the margins of
   :class:`GroundingConfig` are ambiguous and rejected with suggestions.

Conventions (documented in docs/language.md): "left/right/front/behind" are relative to
the agent's heading at that step (left = +90 deg from the heading; "in front of X" =
the side of X facing the agent). Ordinals count by distance from the agent ("the
first chair" = the nearest) unless "from the left/right" is given. "a chair"/"any
chair" takes the nearest one. Sitting/lying need a "sit"/"lie" affordance on the
object: "sit on the table" is rejected as impossible; "sit at the desk" sits on the
seat nearest the desk. "sit down" without an object uses the object just walked to if
it is a seat, else the nearest seat. Steps of a sequence are grounded from the state
the previous step ends in.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field

import numpy as np

from ssomotion_ros.language.goal import Goal, Plan, Rejection
from ssomotion_ros.sso.types import SceneInstance

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GroundingConfig:
    """Thresholds and body constants of parsing and grounding."""

    #: Minimum encoder cosine similarity of a noun phrase to a label name to match it.
    match_threshold: float = 0.65
    #: Labels within this similarity of the best label match too (e.g. sofa/couch).
    class_margin: float = 0.08
    #: Superlatives/ordinals: candidates whose keys differ by less are a tie (metres).
    superlative_margin_m: float = 0.1
    #: Relations: candidates whose distances to the reference differ by less tie (metres).
    relation_margin_m: float = 0.3
    #: "sit at the desk": seats within this distance of the object qualify (metres).
    near_radius_m: float = 1.5
    #: Half-angle of the cone that counts as left/right/front/behind (degrees).
    direction_cone_deg: float = 60.0
    #: Walk goals stop this far outside an object's bounding box (metres).
    approach_clearance_m: float = 0.4
    #: Goal radius of walk steps (metres; the success metric uses 0.2).
    walk_radius_m: float = 0.2
    #: Goal radius of sit/lie steps and in-place steps (metres).
    use_radius_m: float = 0.15
    #: Distance of a free walk without a number ("step to your left"), metres.
    default_step_m: float = 1.0
    #: Length of one "step" when distances are given in steps, metres.
    step_length_m: float = 0.7
    #: Duration of "wait" without a number, seconds.
    default_wait_s: float = 3.0
    #: Pelvis height of a standing adult, metres above the floor.
    standing_pelvis_m: float = 0.93
    #: Pelvis height above a seat surface when sitting, metres.
    sitting_pelvis_above_seat_m: float = 0.1
    #: Pelvis height above a lying surface when lying, metres.
    lying_pelvis_above_surface_m: float = 0.12


@dataclass(frozen=True)
class AgentState:
    """Where the agent is: x, y in metres (map frame), yaw in radians (map frame)."""

    x: float
    y: float
    yaw: float

    @staticmethod
    def coerce(state) -> AgentState:
        """Accept an AgentState, a (3,) sequence/array (x, y, yaw) or an object with
        ``x``, ``y``, ``yaw`` attributes; raise ValueError otherwise."""
        if isinstance(state, AgentState):
            vals = (state.x, state.y, state.yaw)
        elif hasattr(state, "x") and hasattr(state, "y") and hasattr(state, "yaw"):
            vals = (state.x, state.y, state.yaw)
        else:
            arr = np.asarray(state, dtype=np.float64).reshape(-1)
            if arr.shape != (3,):
                raise ValueError(
                    f"agent_state must be (x, y, yaw) in metres/radians, map frame; "
                    f"got shape {arr.shape}"
                )
            vals = tuple(arr)
        vals = tuple(float(v) for v in vals)
        if not all(math.isfinite(v) for v in vals):
            raise ValueError(f"agent_state must be finite (x, y, yaw); got {vals}")
        return AgentState(*vals)


# ---------------------------------------------------------------------------------------
# Lexicon
# ---------------------------------------------------------------------------------------

_NUM_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40,
    "forty-five": 45, "fifty": 50, "sixty": 60, "ninety": 90, "a hundred": 100,
    "a": 1, "an": 1, "a single": 1, "half a": 0.5, "half an": 0.5, "a half": 0.5,
    "one and a half": 1.5, "a couple of": 2, "a couple": 2, "couple of": 2,
    "a few": 3, "few": 3, "several": 3,
}  # fmt: skip
_NUM = (
    r"(?:\d+(?:\.\d+)?|"
    + "|".join(sorted((re.escape(k) for k in _NUM_WORDS), key=len, reverse=True))
    + r")"
)
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6,
    "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10, "last": -1,
    "second to last": -2, "second last": -2, "next to last": -2, "penultimate": -2,
}  # fmt: skip
_SUPERLATIVES = {
    "nearest": "nearest", "closest": "nearest", "farthest": "farthest",
    "furthest": "farthest", "most distant": "farthest", "leftmost": "leftmost",
    "left-most": "leftmost", "rightmost": "rightmost", "right-most": "rightmost",
    "left": "leftmost", "right": "rightmost", "biggest": "biggest", "largest": "biggest",
    "smallest": "smallest", "tiniest": "smallest", "middle": "middle", "center": "middle",
    "centre": "middle", "central": "middle",
}  # fmt: skip
_DIST_UNITS = {
    "metres": 1.0, "metre": 1.0, "meters": 1.0, "meter": 1.0, "m": 1.0,
    "centimetres": 0.01, "centimeters": 0.01, "cm": 0.01, "feet": 0.3048,
    "foot": 0.3048, "ft": 0.3048, "steps": None, "step": None, "paces": None, "pace": None,
}  # fmt: skip
_TIME_UNITS = {
    "seconds": 1.0, "second": 1.0, "secs": 1.0, "sec": 1.0, "s": 1.0,
    "minutes": 60.0, "minute": 60.0, "mins": 60.0, "min": 60.0,
}  # fmt: skip

# Verb phrases per action, longest first inside each alternation.
_STOP = (
    r"stop moving|stop walking|stop everything|stop|halt|freeze|stand still|stay still|"
    r"stay put|don'?t move|do not move|cancel"
)
_WAIT = r"wait|pause|hold on|hold still|hold|stay there|stay here|stay|remain|idle|rest"
_STAND = r"stand back up|stand up|get up|get off|rise|stand"
_TURN = (
    r"turn around|turn round|turn back|spin around|spin round|turn to face|turn|rotate|"
    r"spin|face|look at|look towards|look toward|look"
)
_SIT = (
    r"take a seat|have a seat|grab a seat|take your seat|be seated|sit yourself down|"
    r"sit back down|sit down|sit|seat yourself|plop down|plop yourself down|perch"
)
_LIE = (
    r"lie down|lay down|lie|lay|have a rest|take a rest|have a nap|take a nap|nap|"
    r"go to sleep|sleep|stretch out|recline|rest"
)
_WALK = (
    r"make your way|head over|head back|walk over|walk back|walk up|go over|go back|"
    r"come back|come over|back up|walk|go|move|head|run|jog|step|navigate|proceed|come|"
    r"approach|get|stroll|wander|travel|visit|take"
)
_ACTION_PATTERNS: list[tuple[str, re.Pattern]] = [
    (name, re.compile(rf"^(?P<verb>{pat})\b\s*(?P<rest>.*)$"))
    for name, pat in (
        ("stop", _STOP),
        ("wait", _WAIT),
        ("stand_up", _STAND),
        ("turn", _TURN),
        ("sit", _SIT),
        ("lie", _LIE),
        ("walk", _WALK),
    )
]
_ANY_VERB = "|".join([_STOP, _WAIT, _STAND, _TURN, _SIT, _LIE, _WALK])
_FILLERS = re.compile(
    r"^(?:(?:please|kindly|now|just|first|firstly|ok|okay|so|and|also|then|hey|"
    r"could you|can you|would you|will you|would you please|i want you to|"
    r"i'd like you to|i would like you to|you should|go ahead and|slowly|quickly)\b[\s,]*)+"
)
_TRAILING = re.compile(
    r"(?:\s+(?:please|now|for me|again|right now|too|as well|slowly|quickly|carefully))+$"
)
_CONNECTORS = re.compile(
    r"\b(?:and then|and after that|and afterwards|and finally|after that|afterwards|"
    r"after which|then|finally|once there|when you get there|when done)\b"
)
_SPATIAL_START = re.compile(
    r"^(?:next to|near|beside|by|close to|in front of|behind|between|at|to the left of|"
    r"to the right of|left of|right of|on the left of|on the right of)\b"
)
_DETERMINERS = {"the", "a", "an", "any", "some", "that", "this", "your", "my", "one"}
_INDEFINITE = {"a", "an", "any", "some"}
_PRONOUNS = {"it", "there", "that", "that one", "this", "this one", "here"}
_ADDRESS_STOPWORDS = {
    "ok", "okay", "now", "then", "so", "first", "yes", "no", "and", "hey", "please", "hi",
    "hello", "well", "right", "alright", "also", "next", "finally", "kindly", "sorry",
}  # fmt: skip

# Relation phrases (longest first); "near" family compares centroid distances.
_RELATIONS: list[tuple[str, str]] = [
    ("to the left of", "left_of"), ("on the left of", "left_of"),
    ("to the right of", "right_of"), ("on the right of", "right_of"),
    ("in front of", "front_of"), ("in back of", "behind"),
    ("farthest from", "far_from"), ("furthest from", "far_from"),
    ("far from", "far_from"), ("away from", "far_from"),
    ("nearest to", "near"), ("closest to", "near"), ("next to", "near"),
    ("close to", "near"), ("left of", "left_of"), ("right of", "right_of"),
    ("between", "between"), ("behind", "behind"), ("beside", "near"), ("near", "near"),
    ("by", "near"), ("at", "near"),
]  # fmt: skip


# ---------------------------------------------------------------------------------------
# Parsed structures
# ---------------------------------------------------------------------------------------


@dataclass
class NounPhrase:
    """A parsed object reference (before grounding)."""

    text: str
    head: str = ""
    indefinite: bool = False
    ordinal: int | None = None
    order_from: str | None = None  # "left" | "right" | None (by distance)
    superlative: str | None = None
    relation: str | None = None
    refs: list[NounPhrase] = field(default_factory=list)
    pronoun: bool = False

    @property
    def qualified(self) -> bool:
        return bool(self.ordinal or self.superlative or self.relation)


class _Reject(Exception):
    def __init__(self, code: str, reason: str, candidates=(), candidate_ids=()):
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.candidates = list(candidates)
        self.candidate_ids = [int(i) for i in candidate_ids]


def _num(text: str) -> float:
    text = text.strip()
    if text in _NUM_WORDS:
        return float(_NUM_WORDS[text])
    return float(text)


def _wrap(angle: float) -> float:
    """Angle wrapped to (-pi, pi]."""
    a = math.atan2(math.sin(angle), math.cos(angle))
    return math.pi if a <= -math.pi + 1e-12 else a


def normalise(text: str) -> str:
    """Lower-case, plain quotes/dashes, single spaces, no trailing ``.!?``."""
    t = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u2014", ",")
    t = t.replace("\u2013", "-").replace("!", ".").replace("?", ".")
    t = re.sub(r"(\d),(\d)", r"\1.\2", t)  # decimal comma: "2,5 metres"
    t = t.replace("&", " and ").replace("+", " and ")
    t = re.sub(r"\s+", " ", t).strip().lower()
    return t.rstrip(". ")


def split_address(text: str) -> tuple[str | None, str]:
    """("alice", rest) for "alice: rest" / "Alice, rest"; (None, text) otherwise."""
    m = re.match(r"^\s*(?:hey\s+)?([a-z][\w\-]*)\s*:\s*(.*)$", text)
    if m:
        return m.group(1), m.group(2)
    m = re.match(r"^\s*(?:hey\s+)?([a-z][\w\-]*)\s*,\s*(.*)$", text)
    if m:
        word = m.group(1)
        is_verb = re.match(rf"^(?:{_ANY_VERB})$", word) is not None
        if not is_verb and word not in _ADDRESS_STOPWORDS and word not in _NUM_WORDS:
            return word, m.group(2)
    return None, text


def split_clauses(text: str) -> list[str]:
    """Split a normalised instruction into clauses at sequence connectors."""
    # "go and stand by the sink", "come and sit down": the bare motion verb is no step
    t = re.sub(r"\b(?:go|come)\s+and\s+(?=(?:stand|sit|lie|lay|have|take|wait)\b)", "", text)
    t = _CONNECTORS.sub("|", t)
    t = re.sub(r"[,;]|\.(?=\s|$)", "|", t)
    t = re.sub(rf"\band\s+(?=(?:{_ANY_VERB})\b)", "|", t)
    out = []
    for piece in t.split("|"):
        piece = _FILLERS.sub("", piece.strip()).strip()
        piece = _TRAILING.sub("", piece).strip()
        if piece and piece not in ("and", "first"):
            out.append(piece)
    return out


def _parse_distance(rest: str, cfg: GroundingConfig) -> tuple[float | None, str]:
    """Find "<number> <unit>" (or "a bit", "a little") in ``rest``; (metres, rest without it)."""
    units = "|".join(sorted(_DIST_UNITS, key=len, reverse=True))
    m = re.search(rf"(?:\bfor\s+)?(?:\babout\s+)?\b({_NUM})\s*({units})\b", rest)
    if m:
        value = _num(m.group(1))
        scale = _DIST_UNITS[m.group(2)]
        metres = value * (cfg.step_length_m if scale is None else scale)
        return metres, (rest[: m.start()] + " " + rest[m.end() :]).strip()
    m = re.search(r"\b(?:a (?:little )?bit|a little|slightly)\b", rest)
    if m:
        return 0.5, (rest[: m.start()] + " " + rest[m.end() :]).strip()
    m = re.search(r"\b(a step|one step)\b", rest)
    if m:
        return cfg.step_length_m, (rest[: m.start()] + " " + rest[m.end() :]).strip()
    return None, rest


_FREE_DIRS = [
    (r"straight ahead|straight on|straight|forwards?|ahead|on", (1.0, 0.0)),
    (r"backwards?|back", (-1.0, 0.0)),
    (r"(?:to |towards |toward |on )?(?:your |the )?left(?: side)?|leftwards?", (0.0, 1.0)),
    (r"(?:to |towards |toward |on )?(?:your |the )?right(?: side)?|rightwards?", (0.0, -1.0)),
]


def _parse_free(rest: str, verb: str, cfg: GroundingConfig):
    """A free target relative to the agent, or None. Returns (forward, left) metres."""
    dist, remaining = _parse_distance(rest, cfg)
    remaining = re.sub(r"\b(?:for|about|around|roughly|more|further)\b", " ", remaining)
    remaining = re.sub(r"\s+", " ", remaining).strip()
    if verb == "back up" or (verb.endswith(" back") and remaining == ""):
        # "back up a metre", "go back one metre" (but "go back to the door" is a target)
        direction = (-1.0, 0.0)
        if remaining:
            return None
    else:
        direction = None
        for pat, vec in _FREE_DIRS:
            if re.fullmatch(pat, remaining):
                direction = vec
                break
        if direction is None:
            if remaining == "" and dist is not None:
                direction = (1.0, 0.0)
            else:
                return None
    d = cfg.default_step_m if dist is None else dist
    return direction[0] * d, direction[1] * d


def _between_parts(ref_part: str) -> list[str]:
    """The two reference phrases of "between A and B"; a single plural phrase ("the two
    boxes", "the boxes") is used for both sides (any two distinct instances)."""
    parts = re.split(r"\s+and\s+", ref_part, maxsplit=1)
    if len(parts) == 2:
        return parts
    plural = re.sub(r"\b(?:two|both)\s+", "", ref_part).strip()
    if re.search(r"s$", plural):
        return [plural, plural]
    raise _Reject(
        "not_understood",
        f"'between' needs two objects ('between the sofa and the tv'); got '{ref_part}'",
    )


def parse_noun_phrase(text: str) -> NounPhrase:
    """Parse an object reference such as "the second chair from the left next to the desk"."""
    t = text.strip()
    t = re.sub(r"\b(?:that is|that's|which is|who is)\b", " ", t)
    t = re.sub(r"\s+", " ", t).strip()
    np_ = NounPhrase(text=text.strip())
    m = re.match(r"^(?:one|any|either|some) of (?:the|those|these|your)\s+(.*)$", t)
    if m:  # "one of the chairs": any of them
        np_.indefinite = True
        t = m.group(1)
    if t in _PRONOUNS:
        np_.pronoun = True
        return np_
    # agent-relative superlatives: "closest to you", "furthest away", "nearest to me"
    m = re.search(
        r"\b(nearest|closest|farthest|furthest)\s*(?:to you|from you|to me|from me|"
        r"from here|to here|away)?\s*$",
        t,
    )
    if m and t[: m.start()].strip():
        np_.superlative = _SUPERLATIVES[m.group(1)]
        t = t[: m.start()].strip()
    m = re.search(r"\s(?:in|at) the (?:middle|center|centre)$", t)
    if m:
        np_.superlative = "middle"
        t = t[: m.start()].strip()
    m = re.search(r"\s(?:on|to) (?:the|your) (left|right)(?: side)?$", t)
    if m:
        np_.superlative = "leftmost" if m.group(1) == "left" else "rightmost"
        t = t[: m.start()].strip()
    m = re.search(r"\sfrom the (left|right)\b", t)
    if m:
        np_.order_from = m.group(1)
        t = (t[: m.start()] + t[m.end() :]).strip()
    # relation: first relation keyword after at least one word
    words = t.split(" ")
    for i in range(1, len(words)):
        tail = " ".join(words[i:])
        relations = list(_RELATIONS)
        if re.match(r"^(?:nearest|closest) (?:the|a|an|your)\b", tail):
            relations += [("nearest", "near"), ("closest", "near")]  # "nearest the sink"
        for phrase, rel in relations:
            if tail.startswith(phrase + " "):
                head_part = " ".join(words[:i])
                ref_part = tail[len(phrase) + 1 :]
                np_.relation = rel
                if rel == "between":
                    # "between the sofa and the tv", or one plural: "between the (two) boxes"
                    parts = _between_parts(ref_part)
                    np_.refs = [parse_noun_phrase(p) for p in parts]
                else:
                    np_.refs = [parse_noun_phrase(ref_part)]
                t = head_part
                break
        if np_.relation:
            break
    # pre-head modifiers
    t = " " + t + " "
    for phrase in sorted(_ORDINALS, key=len, reverse=True):
        if f" {phrase} " in t:
            np_.ordinal = _ORDINALS[phrase]
            t = t.replace(f" {phrase} ", " ", 1)
            break
    m = re.search(r"\s(\d+)(?:st|nd|rd|th)\s", t)
    if m and np_.ordinal is None:
        np_.ordinal = int(m.group(1))
        t = t[: m.start()] + " " + t[m.end() :]
    for phrase in sorted(_SUPERLATIVES, key=len, reverse=True):
        if f" {phrase} " in t and np_.superlative is None:
            np_.superlative = _SUPERLATIVES[phrase]
            t = t.replace(f" {phrase} ", " ", 1)
            break
    toks = [w for w in t.split() if w]
    while toks and toks[0] in _DETERMINERS:
        if toks[0] in _INDEFINITE:
            np_.indefinite = True
        toks = toks[1:]
    if toks and toks[-1] == "one" and len(toks) > 1:
        toks = toks[:-1]
    np_.head = " ".join(toks)
    if re.search(r"\band\b", np_.head):
        raise _Reject(
            "not_understood",
            f"didn't understand '{np_.head}'; name one object per step and join steps "
            "with 'then' (e.g. 'walk to the door, then turn left')",
        )
    if not np_.head and not np_.qualified:
        np_.pronoun = t.strip() in _PRONOUNS or not t.strip()
    return np_


# ---------------------------------------------------------------------------------------
# Grounding
# ---------------------------------------------------------------------------------------


class _Scene:
    """Instances with the arrays grounding needs (built once per call)."""

    def __init__(self, instances: list[SceneInstance], encoder):
        if not isinstance(instances, (list, tuple)):
            raise ValueError("instances must be a list of SceneInstance")
        for inst in instances:
            if not isinstance(inst, SceneInstance):
                raise ValueError(
                    f"instances must hold SceneInstance objects; got {type(inst).__name__}"
                )
        self.instances = list(instances)
        self.encoder = encoder
        n = len(self.instances)
        if n:
            c = np.array([np.asarray(i.centroid, np.float64).reshape(3) for i in self.instances])
            lo = np.array([np.asarray(i.bbox_min, np.float64).reshape(3) for i in self.instances])
            hi = np.array([np.asarray(i.bbox_max, np.float64).reshape(3) for i in self.instances])
        else:
            c = lo = hi = np.zeros((0, 3))
        bad = ~(np.isfinite(c).all(1) & np.isfinite(lo).all(1) & np.isfinite(hi).all(1))
        if bad.any():
            inst = self.instances[int(np.argmax(bad))]
            raise ValueError(f"instance {inst.instance_id} ({inst.name}) has non-finite geometry")
        self.xy = c[:, :2].copy()
        self.half = np.maximum((hi[:, :2] - lo[:, :2]) / 2.0, 0.0)
        self.zmin = lo[:, 2].copy()
        self.volumes = np.prod(np.maximum(hi - lo, 0.0), axis=1)
        #: lower-cased class name per instance, and class name -> instance indices
        # "night_stand" / "Night-Stand" -> "night stand" (vocabularies differ in style)
        self.keys = [re.sub(r"[\s_\-]+", " ", inst.name).strip().lower() for inst in self.instances]
        self.by_class: dict[str, list[int]] = {}
        for i, k in enumerate(self.keys):
            self.by_class.setdefault(k, []).append(i)
        self.names = sorted(self.by_class)
        self._name_vecs = encoder.encode(self.names) if self.names else None

    def volume(self, i: int) -> float:
        """Bounding-box volume of instance ``i`` (cubic metres)."""
        return float(self.volumes[i])

    def class_scores(self, head: str) -> dict[str, float]:
        """Similarity of ``head`` to each label name (1.0 when the name ends ``head``)."""
        if not self.names:
            return {}
        v = self.encoder.encode([head])[0]
        sims = self._name_vecs @ v
        out = {}
        for name, s in zip(self.names, sims):
            for form in (name, name + "s", name + "es"):  # "chairs", "benches"
                if head == form or head.endswith(" " + form):
                    s = 1.0
            out[name] = float(s)
        return out

    def of_class(self, names: set[str]) -> list[int]:
        return sorted(i for name in names for i in self.by_class.get(name, ()))

    def affordances(self, i: int, kind: str):
        return [a for a in self.instances[i].affordances if a.kind == kind]


def _plural(name: str, n: int) -> str:
    if n == 1:
        return name
    if name.endswith(("s", "sh", "ch", "x")):
        return name + "es"
    return name + "s"


class Grounder:
    """Grounds the clauses of one instruction against one scene."""

    def __init__(self, scene: _Scene, cfg: GroundingConfig):
        self.scene = scene
        self.cfg = cfg

    # -- geometry helpers ---------------------------------------------------------------
    def _agent_frame(self, st, xy: np.ndarray) -> tuple[float, float]:
        """(forward, left) of a map-frame (2,) offset in the agent's heading frame."""
        c, s = math.cos(st["yaw"]), math.sin(st["yaw"])
        return float(c * xy[0] + s * xy[1]), float(-s * xy[0] + c * xy[1])

    def _dist_agent(self, st, i: int) -> float:
        return float(math.hypot(self.scene.xy[i, 0] - st["x"], self.scene.xy[i, 1] - st["y"]))

    def _in_cone(self, vec: np.ndarray, direction: np.ndarray) -> bool:
        n = float(np.linalg.norm(vec))
        if n < 1e-6:
            return False
        cosang = float(vec @ direction) / n
        return cosang >= math.cos(math.radians(self.cfg.direction_cone_deg))

    def _side_dir(self, st, ref_i: int, side: str) -> np.ndarray:
        """Map-frame unit (2,) vector of the given side of instance ``ref_i``."""
        c, s = math.cos(st["yaw"]), math.sin(st["yaw"])
        if side == "left_of":
            return np.array([-s, c])
        if side == "right_of":
            return np.array([s, -c])
        to_agent = np.array([st["x"], st["y"]]) - self.scene.xy[ref_i]
        n = float(np.linalg.norm(to_agent))
        to_agent = to_agent / n if n > 1e-6 else np.array([c, s]) * -1.0
        return to_agent if side == "front_of" else -to_agent

    # -- noun phrases -------------------------------------------------------------------
    def ground(self, np_: NounPhrase, st) -> tuple[int, float]:
        """(instance index, confidence) for a noun phrase; raises _Reject."""
        cands, sim = self.candidates(np_, st)
        if len(cands) == 1:
            return cands[0], sim
        if np_.indefinite:
            best = min(
                cands, key=lambda i: (self._dist_agent(st, i), self.scene.instances[i].instance_id)
            )
            return best, sim * 0.9
        raise self._ambiguous(np_, cands, st)

    def candidates(self, np_: NounPhrase, st) -> tuple[list[int], float]:
        """Instances matching the phrase after all qualifiers (may be several)."""
        if np_.pronoun:
            if st.get("prev_target") is None:
                raise _Reject(
                    "not_understood",
                    f"'{np_.text or 'it'}' refers to nothing yet; name the object "
                    "(e.g. 'the sofa')",
                )
            return [st["prev_target"]], 1.0
        if not np_.head:
            raise _Reject(
                "not_understood",
                f"which object is '{np_.text}'? name it, e.g. 'the nearest chair'",
            )
        scores = self.scene.class_scores(np_.head)
        if not scores:
            raise _Reject("unknown_target", f"no '{np_.head}' here; the scene has no objects")
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
        best = ranked[0][1]
        if best < self.cfg.match_threshold:
            near = [name for name, _ in ranked[:2]]
            raise _Reject(
                "unknown_target",
                f"no '{np_.head}' here; nearest matches: {', '.join(near)}",
                candidates=near,
            )
        names = {
            n
            for n, s in ranked
            if s >= best - self.cfg.class_margin and s >= self.cfg.match_threshold
        }
        cands = self.scene.of_class(names)
        sim = best
        label = ranked[0][0]
        if np_.relation:
            cands, factor = self._relation(np_, cands, st, label)
            sim *= factor
        if np_.superlative:
            cands, factor = self._superlative(np_, cands, st, label)
            sim *= factor
        if np_.ordinal:
            cands, factor = self._ordinal(np_, cands, st, label)
            sim *= factor
        return cands, float(min(max(sim, 0.0), 1.0))

    def _ground_refs(self, ref: NounPhrase, st) -> list[int]:
        """Reference objects of a relation: all matching instances unless qualified."""
        if ref.qualified or ref.pronoun:
            i, _ = self.ground(ref, st)
            return [i]
        cands, _ = self.candidates(ref, st)
        return cands

    def _relation(self, np_: NounPhrase, cands: list[int], st, label: str):
        cfg = self.cfg
        rel = np_.relation
        xy = self.scene.xy
        scores: dict[int, float] = {}
        if rel == "between":
            a_set = self._ground_refs(np_.refs[0], st)
            b_set = self._ground_refs(np_.refs[1], st)
            for i in cands:
                best = None
                for a in a_set:
                    for b in b_set:
                        if a == b or i in (a, b):
                            continue
                        ab = xy[b] - xy[a]
                        length = float(np.linalg.norm(ab))
                        if length < 1e-6:
                            continue
                        t = float((xy[i] - xy[a]) @ ab) / length**2
                        off = xy[i] - xy[a]
                        perp = abs(float(ab[0] * off[1] - ab[1] * off[0])) / length
                        if 0.1 < t < 0.9 and perp <= 0.4 * length:
                            s = float(np.linalg.norm(xy[i] - (xy[a] + xy[b]) / 2))
                            best = s if best is None else min(best, s)
                if best is not None:
                    scores[i] = best
        else:
            refs = self._ground_refs(np_.refs[0], st)
            for i in cands:
                vals = []
                for r in refs:
                    if r == i:
                        continue
                    off = xy[i] - xy[r]
                    d = float(np.linalg.norm(off))
                    if rel == "near":
                        vals.append(d)
                    elif rel == "far_from":
                        vals.append(-d)
                    elif self._in_cone(off, self._side_dir(st, r, rel)):
                        vals.append(d)
                if vals:
                    scores[i] = min(vals)
        if not scores:
            ref_text = " and ".join(r.text for r in np_.refs)
            words = {"near": "near", "far_from": "away from", "left_of": "left of",
                     "right_of": "right of", "front_of": "in front of", "behind": "behind",
                     "between": "between"}  # fmt: skip
            raise _Reject(
                "no_match",
                f"no {label} is {words[rel]} {ref_text} (left/right/front are seen from "
                "where the agent stands)",
            )
        ordered = sorted(scores, key=lambda i: (scores[i], self.scene.instances[i].instance_id))
        if np_.superlative or np_.ordinal:
            # the relation filters; the superlative/ordinal picks
            if rel == "near":
                keep = [
                    i
                    for i in ordered
                    if scores[i]
                    <= max(cfg.near_radius_m, scores[ordered[0]] + cfg.relation_margin_m)
                ]
                return keep, 1.0
            return ordered, 1.0
        tied = [i for i in ordered if scores[i] - scores[ordered[0]] < cfg.relation_margin_m]
        if len(tied) > 1:
            return tied, 1.0
        gap = scores[ordered[1]] - scores[ordered[0]] if len(ordered) > 1 else 10.0
        return [ordered[0]], min(1.0, 0.6 + 0.4 * gap / (2 * cfg.relation_margin_m))

    def _superlative_key(self, kind: str, st, i: int) -> float:
        if kind == "nearest":
            return self._dist_agent(st, i)
        if kind == "farthest":
            return -self._dist_agent(st, i)
        off = self.scene.xy[i] - np.array([st["x"], st["y"]])
        _, left = self._agent_frame(st, off)
        if kind == "leftmost":
            return -left
        if kind == "rightmost":
            return left
        if kind == "biggest":
            return -self.scene.volume(i)
        return self.scene.volume(i)

    def _superlative(self, np_: NounPhrase, cands: list[int], st, label: str):
        kind = np_.superlative
        if kind == "middle":
            # the median of the candidates ordered left to right (seen by the agent)
            keys = {i: self._superlative_key("leftmost", st, i) for i in cands}
            ordered = sorted(cands, key=lambda i: (keys[i], self.scene.instances[i].instance_id))
            n = len(ordered)
            if n < 3:
                raise _Reject(
                    "out_of_range",
                    f"'{np_.text}': a middle one needs at least 3 {_plural(label, 3)}; "
                    f"there {'is' if n == 1 else 'are'} {n}",
                )
            if n % 2 == 0:
                return ordered[n // 2 - 1 : n // 2 + 1], 1.0
            mid = ordered[n // 2]
            m = self.cfg.superlative_margin_m
            tied = [i for i in ordered if abs(keys[i] - keys[mid]) < m]
            return (tied, 1.0) if len(tied) > 1 else ([mid], 1.0)
        keys = {i: self._superlative_key(kind, st, i) for i in cands}
        ordered = sorted(cands, key=lambda i: (keys[i], self.scene.instances[i].instance_id))
        if kind in ("biggest", "smallest"):
            margin = 0.1 * abs(keys[ordered[0]]) + 1e-6
        else:
            margin = self.cfg.superlative_margin_m
        tied = [i for i in ordered if keys[i] - keys[ordered[0]] < margin]
        if len(tied) > 1:
            return tied, 1.0
        gap = keys[ordered[1]] - keys[ordered[0]] if len(ordered) > 1 else 10 * margin
        return [ordered[0]], min(1.0, 0.6 + 0.4 * gap / (2 * margin))

    def _ordinal(self, np_: NounPhrase, cands: list[int], st, label: str):
        k = np_.ordinal
        n = len(cands)
        if np_.order_from:
            kind = "leftmost" if np_.order_from == "left" else "rightmost"
        else:
            kind = "nearest"
        keys = {i: self._superlative_key(kind, st, i) for i in cands}
        ordered = sorted(cands, key=lambda i: (keys[i], self.scene.instances[i].instance_id))
        idx = k - 1 if k > 0 else n + k
        if idx < 0 or idx >= n:
            raise _Reject(
                "out_of_range",
                f"there {'is' if n == 1 else 'are'} only {n} {_plural(label, n)} here; "
                f"'{np_.text}' does not exist",
                candidate_ids=[self.scene.instances[i].instance_id for i in ordered],
            )
        m = self.cfg.superlative_margin_m
        tied = [i for i in ordered if abs(keys[i] - keys[ordered[idx]]) < m]
        if len(tied) > 1:
            return tied, 1.0
        return [ordered[idx]], 1.0

    def _ambiguous(self, np_: NounPhrase, cands: list[int], st) -> _Reject:
        label = self.scene.instances[cands[0]].name
        phrases: list[str] = []
        ids: list[int] = []
        cset = set(cands)
        others = [i for i in range(len(self.scene.instances)) if i not in cset]
        for i in cands[:4]:
            phrases.append(self._describe_uniquely(i, cands, others, st, label))
            ids.append(self.scene.instances[i].instance_id)
        n = len(cands)
        more = ", ..." if n > 4 else ""
        return _Reject(
            "ambiguous",
            f"{n} {_plural(label, n)} match '{np_.text}' \u2014 say which: "
            f"{', '.join(phrases)}{more}",
            candidates=phrases,
            candidate_ids=ids,
        )

    def _describe_uniquely(self, i, cands, others, st, label) -> str:
        m = self.cfg.superlative_margin_m
        for kind, words in (
            ("nearest", f"the nearest {label}"),
            ("farthest", f"the farthest {label}"),
            ("leftmost", f"the {label} on the left"),
            ("rightmost", f"the {label} on the right"),
        ):
            keys = {j: self._superlative_key(kind, st, j) for j in cands}
            best = min(keys.values())
            if keys[i] == best and sorted(keys.values())[1] - best >= m:
                return words
        xy = self.scene.xy
        singles = [o for o in others if len(self.scene.by_class[self.scene.keys[o]]) == 1]
        # "the chair next to the <object>": the three closest uniquely named objects
        near = sorted(singles, key=lambda o: float(np.linalg.norm(xy[o] - xy[i])))[:3]
        for o in near:
            name = self.scene.instances[o].name
            d = {j: float(np.linalg.norm(xy[j] - xy[o])) for j in cands}
            rest = sorted(v for j, v in d.items() if j != i)
            if rest and rest[0] - d[i] >= self.cfg.relation_margin_m:
                return f"the {label} next to the {name}"
        x, y = xy[i]
        return f"the {label} at ({x:.1f}, {y:.1f})"

    # -- goals --------------------------------------------------------------------------
    def approach_point(self, st, i: int, direction: np.ndarray | None = None) -> np.ndarray:
        """Floor point just outside instance ``i``'s box, towards ``direction`` (map, (2,))
        or towards the agent when None; an "approach" affordance wins when present."""
        sc = self.scene
        if direction is None:
            appr = sc.affordances(i, "approach")
            if appr:
                a = min(
                    appr, key=lambda a: math.hypot(a.position[0] - st["x"], a.position[1] - st["y"])
                )
                return np.asarray(a.position, dtype=np.float64).reshape(3).copy()
            d = np.array([st["x"], st["y"]]) - sc.xy[i]
            n = float(np.linalg.norm(d))
            if n < 1e-6:
                yaw = sc.instances[i].yaw
                d, n = np.array([math.cos(yaw), math.sin(yaw)]), 1.0
            direction = d / n
        direction = direction / max(float(np.linalg.norm(direction)), 1e-9)
        h = sc.half[i]
        with np.errstate(divide="ignore"):
            t = np.min(np.where(np.abs(direction) > 1e-9, h / np.abs(direction), np.inf))
        p = sc.xy[i] + direction * (float(t) + self.cfg.approach_clearance_m)
        return np.array([p[0], p[1], sc.zmin[i]])


def _hint(st, end_xyz) -> np.ndarray:
    d = np.array([end_xyz[0] - st["x"], end_xyz[1] - st["y"], end_xyz[2] - st["pelvis"]])
    n = float(np.linalg.norm(d))
    return d / n if n > 1.0 else d


def _parse_duration(rest: str, cfg: GroundingConfig) -> float | None:
    rest = re.sub(r"\b(?:here|there|for|about|around|a while longer)\b", " ", rest)
    rest = re.sub(r"\s+", " ", rest).strip()
    if rest == "":
        return cfg.default_wait_s
    units = "|".join(sorted(_TIME_UNITS, key=len, reverse=True))
    m = re.fullmatch(rf"({_NUM})\s*({units})", rest)
    if m:
        return _num(m.group(1)) * _TIME_UNITS[m.group(2)]
    if re.fullmatch(r"a (?:moment|second|bit|while|sec)|a little( while)?", rest):
        return cfg.default_wait_s
    return None


class _ClauseParser:
    """Parses and grounds one clause; updates the running agent state."""

    def __init__(self, grounder: Grounder, cfg: GroundingConfig):
        self.g = grounder
        self.cfg = cfg

    def run(self, clause: str, st: dict, prev_action: str | None) -> Goal:
        action, verb, rest = self._action(clause, prev_action)
        return getattr(self, f"_do_{action}")(clause, verb, rest, st)

    def _action(self, clause: str, prev_action: str | None):
        c = clause
        m = re.match(r"^go to (?:bed|sleep)$", c)
        if m:
            return "lie", "go to bed", "on the bed" if c.endswith("bed") else ""
        for name, pat in _ACTION_PATTERNS:
            m = pat.match(c)
            if not m:
                continue
            verb, rest = m.group("verb"), m.group("rest").strip()
            if name == "walk" and re.match(rf"^(?:and\s+)?(?:{_ANY_VERB})\b", rest):
                # "go lie down on the bed", "go and stand by the sink"
                inner = re.sub(r"^and\s+", "", rest)
                a2, v2, r2 = self._action(inner, prev_action)
                if a2 != "walk" or inner.split(" ")[0] in ("stand",):
                    return a2, v2, r2
            if name == "wait" and _parse_duration(rest, self.cfg) is None:
                if verb == "rest":
                    continue  # "rest on the bed" -> lie
                if verb in ("stay", "remain", "stay here", "stay there") and _SPATIAL_START.match(
                    rest
                ):
                    return "walk", verb, rest
                raise _Reject(
                    "not_understood",
                    f"how long should I {verb}? say e.g. '{verb} 5 seconds'",
                )
            if name == "stand_up" and verb == "stand" and rest and _SPATIAL_START.match(rest):
                return "walk", verb, rest  # "stand by the sink"
            if (
                name == "stand_up"
                and verb == "stand"
                and rest
                and not re.match(r"^(?:up|from)\b", rest)
            ):
                continue
            return name, verb, rest
        # ellipsis: "then to the fridge" reuses the previous action
        if prev_action in ("walk", "sit", "lie") and re.match(
            r"^(?:to|on|onto|towards?|into|over to)\b", c
        ):
            return prev_action, "", c
        raise _Reject(
            "not_understood",
            f"didn't understand '{clause}'; I can walk, sit, lie down, stand up, turn, "
            "wait and stop, e.g. 'walk to the sofa, then sit down'",
        )

    # -- actions --------------------------------------------------------------------
    def _in_place(self, action, clause, st, facing=None, target=None, duration=None, conf=1.0):
        pos = np.array([st["x"], st["y"], 0.0])
        inst = self.g.scene.instances[target] if target is not None else None
        return Goal(
            action=action,
            target_id=None if inst is None else inst.instance_id,
            target_name=None if inst is None else inst.name,
            position=pos,
            radius=self.cfg.use_radius_m,
            facing=st["yaw"] if facing is None else facing,
            direction_hint=np.zeros(3),
            confidence=conf,
            span=clause,
            duration_s=duration,
        )

    def _do_stop(self, clause, verb, rest, st):
        return self._in_place("stop", clause, st)

    def _do_wait(self, clause, verb, rest, st):
        dur = _parse_duration(rest, self.cfg)
        if dur is None or dur <= 0:
            raise _Reject("not_understood", f"how long should I wait? got '{rest}'")
        return self._in_place("wait", clause, st, duration=float(dur))

    def _do_stand_up(self, clause, verb, rest, st):
        goal = self._in_place("stand_up", clause, st)
        goal.direction_hint = _hint(st, (st["x"], st["y"], self.cfg.standing_pelvis_m))
        st["pelvis"] = self.cfg.standing_pelvis_m
        return goal

    def _do_turn(self, clause, verb, rest, st):
        yaw = st["yaw"]
        rest = rest.strip()
        if verb in ("turn around", "turn round", "spin around", "spin round", "turn back"):
            if not rest:
                st["yaw"] = _wrap(yaw + math.pi)
                return self._in_place("turn", clause, st)
        # "left", "to your left", "45 degrees to the left", "right by 30 degrees",
        # "180 degrees" (no side: counter-clockwise, the REP-103 positive yaw)
        m = re.fullmatch(
            rf"(?:by\s+)?(?:({_NUM})\s*(?:degrees?|deg)\s*)?"
            rf"(?:(?:to|towards|toward)\s+(?:the|your)\s+)?"
            rf"(left|right|clockwise|counter-?clockwise|anti-?clockwise)?"
            rf"(?:\s+(?:by\s+)?({_NUM})\s*(?:degrees?|deg))?",
            rest,
        )
        if m and rest and (m.group(2) or m.group(1) or m.group(3)):
            deg = m.group(1) or m.group(3)
            angle = math.radians(_num(deg)) if deg else math.pi / 2
            sign = -1.0 if m.group(2) in ("right", "clockwise") else 1.0
            st["yaw"] = _wrap(yaw + sign * angle)
            return self._in_place("turn", clause, st)
        r = re.sub(r"^(?:to face|to look at|to|towards|toward|at)\s+", "", rest).strip()
        if re.fullmatch(r"around|round|back", r):
            st["yaw"] = _wrap(yaw + math.pi)
            return self._in_place("turn", clause, st)
        if not r:
            raise _Reject(
                "not_understood",
                "turn which way? say 'turn left', 'turn around' or 'turn towards the door'",
            )
        np_ = parse_noun_phrase(r)
        i, conf = self.g.ground(np_, st)
        d = self.g.scene.xy[i] - np.array([st["x"], st["y"]])
        st["yaw"] = _wrap(math.atan2(d[1], d[0])) if np.linalg.norm(d) > 1e-6 else yaw
        st["prev_target"] = i
        return self._in_place("turn", clause, st, target=i, conf=conf)

    def _use_target(self, kind, clause, rest, st) -> tuple[int, float]:
        """Instance to sit/lie on; raises impossible when it has no such affordance."""
        g = self.g
        sc = g.scene
        rest = rest.strip()
        at_like = re.match(r"^(?:at|by|next to|near|beside|close to)\s+(.*)$", rest)
        obj = re.sub(r"^(?:down\s+)?(?:on|onto|in|into|upon|on top of|across)\s+", "", rest).strip()
        if rest in ("", "down", "here", "there", "down here", "down there"):
            prev = st.get("prev_target")
            if prev is not None and sc.affordances(prev, kind):
                return prev, 1.0
            usable = [i for i in range(len(sc.instances)) if sc.affordances(i, kind)]
            if not usable:
                raise _Reject(
                    "impossible", f"nothing to {kind} on here (no object offers a {kind} surface)"
                )
            best = min(usable, key=lambda i: (g._dist_agent(st, i), sc.instances[i].instance_id))
            return best, 0.8
        if at_like:
            ref_np = parse_noun_phrase(at_like.group(1))
            r, conf = g.ground(ref_np, st)
            if sc.affordances(r, kind):
                return r, conf
            near = [
                i
                for i in range(len(sc.instances))
                if sc.affordances(i, kind)
                and float(np.linalg.norm(sc.xy[i] - sc.xy[r])) <= self.cfg.near_radius_m
            ]
            if not near:
                raise _Reject("impossible", f"nothing to {kind} on near the {sc.instances[r].name}")
            near.sort(
                key=lambda i: (
                    float(np.linalg.norm(sc.xy[i] - sc.xy[r])),
                    sc.instances[i].instance_id,
                )
            )
            if len(near) > 1:
                d0 = float(np.linalg.norm(sc.xy[near[0]] - sc.xy[r]))
                d1 = float(np.linalg.norm(sc.xy[near[1]] - sc.xy[r]))
                if d1 - d0 < self.cfg.relation_margin_m:
                    raise g._ambiguous(ref_np, near, st)
            return near[0], conf
        np_ = parse_noun_phrase(obj)
        verb = "sit on" if kind == "sit" else "lie on"

        def impossible(name: str) -> _Reject:
            usable = sorted(
                {sc.instances[j].name for j in range(len(sc.instances)) if sc.affordances(j, kind)}
            )
            tail = (
                f"things to {verb} here: {', '.join(usable)}"
                if usable
                else f"nothing here to {verb}"
            )
            return _Reject(
                "impossible",
                f"can't {verb} the {name}: it has no {kind} surface; {tail}",
                candidates=usable,
            )

        # a class none of whose instances offers the surface is impossible, whichever
        # instance was meant (checked before ambiguity: "sit on the box" with two boxes)
        cands, _ = (
            g.candidates(NounPhrase(text=np_.text, head=np_.head), st)
            if (np_.head and not np_.pronoun)
            else ([], 0.0)
        )
        if cands and not any(sc.affordances(j, kind) for j in cands):
            raise impossible(sc.instances[cands[0]].name)
        i, conf = g.ground(np_, st)
        if not sc.affordances(i, kind):
            raise impossible(sc.instances[i].name)
        return i, conf

    def _do_use(self, kind, clause, rest, st):
        i, conf = self._use_target(kind, clause, rest, st)
        sc = self.g.scene
        affs = sc.affordances(i, kind)
        a = min(affs, key=lambda a: math.hypot(a.position[0] - st["x"], a.position[1] - st["y"]))
        pos = np.asarray(a.position, dtype=np.float64).reshape(3)
        above = (
            self.cfg.sitting_pelvis_above_seat_m
            if kind == "sit"
            else self.cfg.lying_pelvis_above_surface_m
        )
        end = (pos[0], pos[1], pos[2] + above)
        goal = Goal(
            action=kind,
            target_id=sc.instances[i].instance_id,
            target_name=sc.instances[i].name,
            position=pos,
            radius=self.cfg.use_radius_m,
            facing=_wrap(float(a.facing)),
            direction_hint=_hint(st, end),
            confidence=conf,
            span=clause,
        )
        st.update(
            x=float(pos[0]),
            y=float(pos[1]),
            yaw=_wrap(float(a.facing)),
            pelvis=end[2],
            prev_target=i,
        )
        return goal

    def _do_sit(self, clause, verb, rest, st):
        return self._do_use("sit", clause, rest, st)

    def _do_lie(self, clause, verb, rest, st):
        return self._do_use("lie", clause, rest, st)

    def _do_walk(self, clause, verb, rest, st):
        g = self.g
        cfg = self.cfg
        rest = re.sub(r"^(?:over|back|on over|right)\s+(?=to\b|towards?\b|up\b)", "", rest).strip()
        free = _parse_free(rest, verb, cfg)
        if free is not None:
            fwd, left = free
            c, s = math.cos(st["yaw"]), math.sin(st["yaw"])
            gx = st["x"] + c * fwd - s * left
            gy = st["y"] + s * fwd + c * left
            end = (gx, gy, st["pelvis"])
            goal = Goal(
                action="walk", target_id=None, target_name=None,
                position=np.array([gx, gy, 0.0]), radius=cfg.walk_radius_m, facing=None,
                direction_hint=_hint(st, end), confidence=1.0, span=clause,
            )  # fmt: skip
            st.update(x=gx, y=gy)
            return goal
        facing = None
        m = re.match(
            r"^(?:to\s+)?(?:the\s+)?(between|behind|in front of|to the left of|to the right of|"
            r"left of|right of|on the left of|on the right of)\s+(.*)$",
            rest,
        )
        if m:
            rel = {"between": "between", "behind": "behind", "in front of": "front_of"}.get(
                m.group(1), "left_of" if "left" in m.group(1) else "right_of"
            )
            if rel == "between":
                parts = _between_parts(m.group(2))
                if parts[0] == parts[1]:  # "between the two boxes": exactly two needed
                    pair, ca = g.candidates(parse_noun_phrase(parts[0]), st)
                    if len(pair) != 2:
                        name = g.scene.instances[pair[0]].name
                        raise _Reject(
                            "ambiguous",
                            f"{len(pair)} {_plural(name, len(pair))} here; say between which "
                            "two (e.g. 'between the sofa and the tv')",
                        )
                    (a, b), cb = pair, ca
                else:
                    a, ca = g.ground(parse_noun_phrase(parts[0]), st)
                    b, cb = g.ground(parse_noun_phrase(parts[1]), st)
                mid = (g.scene.xy[a] + g.scene.xy[b]) / 2.0
                z = float(min(g.scene.zmin[a], g.scene.zmin[b]))
                pos = np.array([mid[0], mid[1], z])
                target, conf = None, min(ca, cb)
            else:
                target, conf = g.ground(parse_noun_phrase(m.group(2)), st)
                pos = g.approach_point(st, target, g._side_dir(st, target, rel))
        else:
            obj = re.sub(
                r"^(?:up to|over to|on to|onto|into|in to|to|towards|toward|near|next to|"
                r"beside|by|close to|closer to|at|until|as far as|over|up)\s+",
                "",
                rest,
            ).strip()
            if not obj:
                raise _Reject(
                    "not_understood",
                    f"{verb or 'go'} where? say e.g. '{verb or 'walk'} to the door' or "
                    f"'{verb or 'walk'} two metres forward'",
                )
            target, conf = g.ground(parse_noun_phrase(obj), st)
            pos = g.approach_point(st, target)
        if target is not None:
            d = g.scene.xy[target] - pos[:2]
            if float(np.linalg.norm(d)) > 1e-6:
                facing = _wrap(math.atan2(d[1], d[0]))
        inst = g.scene.instances[target] if target is not None else None
        goal = Goal(
            action="walk",
            target_id=None if inst is None else inst.instance_id,
            target_name=None if inst is None else inst.name,
            position=pos,
            radius=cfg.walk_radius_m,
            facing=facing,
            direction_hint=_hint(st, (pos[0], pos[1], st["pelvis"])),
            confidence=conf,
            span=clause,
        )
        st.update(x=float(pos[0]), y=float(pos[1]))
        if facing is not None:
            st["yaw"] = facing
        if target is not None:
            st["prev_target"] = target
        return goal


_NP_GUESS = re.compile(r"\b(?:the|a|an|any)\s+(.+)$")


def _prefetch(clauses: list[str], encoder) -> None:
    """Encode the likely noun-phrase heads of all clauses in one batch (one encoder
    forward instead of one per phrase). Only a speed-up: grounding encodes whatever
    this misses, and extra phrases cost nothing but cache space."""
    heads: set[str] = set()

    def collect(np_: NounPhrase) -> None:
        if np_.head:
            heads.add(np_.head)
        for r in np_.refs:
            collect(r)

    for clause in clauses:
        m = _NP_GUESS.search(clause)
        if not m:
            continue
        for part in re.split(r"\s+and\s+(?=the\b|a\b|an\b)", m.group(1)):
            try:
                collect(parse_noun_phrase(part))
            except _Reject:
                continue
    if heads:
        encoder.encode(sorted(heads))


def parse_and_ground(
    text: str,
    instances: list[SceneInstance],
    agent_state,
    encoder=None,
    config: GroundingConfig | None = None,
) -> Plan:
    """Turn an instruction into a grounded :class:`~ssomotion_ros.language.goal.Plan`.

    text: the instruction ("alice: walk to the sofa, then sit down").
    instances: the scene's objects (map frame, metres), e.g. ``SceneModel.instances()``.
    agent_state: (x, y, yaw): metres, metres, radians, map frame (tuple, (3,) array,
        :class:`AgentState` or any object with ``x``, ``y``, ``yaw``); the agent is
        assumed standing.
    encoder: a :class:`~ssomotion_ros.language.encoders.TextEncoder`; default: the
        process-wide one from :func:`get_text_encoder` (label names are encoded once and
        cached by the encoder).
    config: thresholds; default :class:`GroundingConfig`.

    Returns a Plan whose ``goals`` are the steps in order, or whose ``rejection`` says
    what to change. Raises ValueError only for malformed inputs (not for bad text).
    Deterministic for equal inputs.
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a string; got {type(text).__name__}")
    cfg = config or GroundingConfig()
    state = AgentState.coerce(agent_state)
    if encoder is None:
        from ssomotion_ros.language.encoders import get_text_encoder

        encoder = get_text_encoder()
    scene = _Scene(list(instances), encoder)
    norm = normalise(text)
    agent, body = split_address(norm)
    plan = Plan(text=text, agent=agent)
    if not body.strip(" .,;:"):
        plan.rejection = Rejection(
            "empty",
            "empty instruction; say what to do, e.g. 'walk to the sofa, then sit down'",
            span=text,
        )
        return plan
    clauses = split_clauses(body)
    if not clauses:
        plan.rejection = Rejection(
            "not_understood",
            f"didn't understand '{body}'; say what to do, e.g. 'walk to the sofa, then sit down'",
            span=body,
        )
        return plan
    _prefetch(clauses, encoder)
    grounder = Grounder(scene, cfg)
    cp = _ClauseParser(grounder, cfg)
    st = {
        "x": state.x, "y": state.y, "yaw": _wrap(state.yaw),
        "pelvis": cfg.standing_pelvis_m, "prev_target": None,
    }  # fmt: skip
    prev_action = None
    goals = []
    for k, clause in enumerate(clauses):
        try:
            goal = cp.run(clause, st, prev_action)
        except _Reject as rej:
            prefix = f"step {k + 1} ('{clause}'): " if len(clauses) > 1 else ""
            plan.rejection = Rejection(
                rej.code, prefix + rej.reason, span=clause, candidates=rej.candidates,
                candidate_ids=rej.candidate_ids, step=k,
            )  # fmt: skip
            log.info("rejected %r: %s", text, plan.rejection.reason)
            return plan
        goals.append(goal)
        prev_action = goal.action
    plan.goals = goals
    return plan
