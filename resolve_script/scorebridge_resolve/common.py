"""What every module of the Resolve script shares: its names, timings and the one error
the user hears about."""

VERSION = "0.1.0"
TAG = "scorebridge"              # customData of every marker ScoreBridge places
TRACK_PREFIX = "ScoreBridge"     # our audio track is named "ScoreBridge <cue>"
STEM_PREFIX = "ScoreBridge stem"  # with SCOREBRIDGE_RESOLVE_STEMS=1, each stem on "ScoreBridge stem <role>"
BIN_NAME = "ScoreBridge"         # media pool bin for the WAVs
MARKER_COLOR = "Cream"
INSTALLED_CLI = None             # `scorebridge install resolve` writes its own command here
RETRIES = 3                      # tries of a Resolve call that answers None/False
RETRY_SLEEP = 0.5                # seconds between them (dialogs and autosave pass)
POLL_SECONDS = 1.5               # live mode: how often the edit is looked at
SETTLE_SECONDS = 2.0             # live mode: how long an edit must rest before it is sent


class Failure(Exception):
    """Something the user must hear about in one sentence (never a traceback)."""
