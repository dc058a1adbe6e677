"""The cue plan: what the music must do over an edit, decided before a note is generated.

Plain data in (hits and sections in frames at the timeline rate), plain data out (frozen
dataclasses). The plan says which hits the music marks and how much each weighs in the tempo
fit, the tempo map, a key and mode per section, loudness and note density from arousal,
which instruments play, and where the music is silent.

    cue      CuePlan, SectionPlan, PlannedHit; make_plan, describe
    key      the home key and the tempo target, from the mood and the edit
    roles    the orchestration by mood, roles and track names
    tempo    the tempo map fitted so the hits land on beats; bars
"""

from bridge.plan.cue import HIT_WEIGHTS, CuePlan, PlannedHit, SectionPlan, describe, make_plan
from bridge.plan.key import BPM_HI, BPM_LO, KEYS, MODE_DEADBAND, choose_key, target_bpm
from bridge.plan.roles import PALETTES, PART_FAMILIES, PERCUSSION, PROGRAM_NAMES, ROLES, palette_for

__all__ = [
    "BPM_HI",
    "BPM_LO",
    "HIT_WEIGHTS",
    "KEYS",
    "MODE_DEADBAND",
    "PALETTES",
    "PART_FAMILIES",
    "PERCUSSION",
    "PROGRAM_NAMES",
    "ROLES",
    "CuePlan",
    "PlannedHit",
    "SectionPlan",
    "choose_key",
    "describe",
    "make_plan",
    "palette_for",
    "target_bpm",
]
