"""Picture analysis: cuts inside clips, per-scene cues and emotion (valence/arousal)."""

from bridge.picture.analysis import Section, analyze_timeline

__all__ = ["Section", "analyze_timeline"]
