"""Deliverables out: MIDI, audio, scored OTIO, previews."""
