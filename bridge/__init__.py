"""ScoreBridge: editable MIDI scores for video edits, in sync with the cuts and the mood."""

__version__ = "0.1.0"
