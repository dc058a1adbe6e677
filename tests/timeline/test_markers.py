"""The marker syntax: names (or comments) -> kind and emotion."""

import pytest

from bridge.timeline.markers import MOODS, parse_marker


@pytest.mark.parametrize("name", ["hit", "HIT", " Hit ", "hit: door slam", "Hit:boom", "hit :x"])
def test_hit(name):
    assert parse_marker(name)["kind"] == "hit"


@pytest.mark.parametrize("name", ["hitman", "hits", "a hit", "hit me"])
def test_words_that_only_start_like_hit_are_notes(name):
    assert parse_marker(name)["kind"] == "note"


def test_mood_ekman_uses_emsync_means():
    expected = {
        "anger": (-0.51, 0.59),
        "disgust": (-0.60, 0.35),
        "fear": (-0.64, 0.60),
        "joy": (0.76, 0.48),
        "sadness": (-0.63, -0.27),
        "surprise": (0.40, 0.67),
        "neutral": (0.0, 0.0),
    }
    for word, (valence, arousal) in expected.items():
        parsed = parse_marker(f"mood: {word}")
        assert parsed == {"kind": "mood", "mood": word, "valence": valence, "arousal": arousal, "warning": None}


@pytest.mark.parametrize(
    "name, word",
    [("Mood: Tense", "tense"), ("MOOD :   calm", "calm"), ("mood:happy", "happy"), ("mood: Epic!", "epic")],
)
def test_mood_is_case_and_space_tolerant(name, word):
    parsed = parse_marker(name)
    assert parsed["kind"] == "mood" and parsed["mood"] == word
    assert (parsed["valence"], parsed["arousal"]) == MOODS[word]


def test_synonyms_share_their_emotion():
    assert MOODS["happy"] == MOODS["joy"]
    assert MOODS["sad"] == MOODS["sadness"]
    assert MOODS["scared"] == MOODS["afraid"] == MOODS["fear"]
    assert MOODS["angry"] == MOODS["anger"]
    assert MOODS["surprised"] == MOODS["surprise"]


def test_film_words_sit_where_a_composer_expects():
    for word in ("tense", "suspense", "ominous", "eerie", "dark"):
        assert MOODS[word][0] < 0 < MOODS[word][1], word  # unpleasant, aroused
    for word in ("calm", "peaceful", "tender", "dreamy", "romantic"):
        assert MOODS[word][0] > 0 > MOODS[word][1], word  # pleasant, at rest
    for word in ("heroic", "epic", "triumphant", "playful", "energetic"):
        assert MOODS[word][0] > 0 and MOODS[word][1] > 0, word
    assert MOODS["melancholy"][0] < 0 and MOODS["melancholy"][1] < 0
    assert MOODS["action"][1] > 0.8


def test_mood_table_stays_in_range():
    assert len(MOODS) > 40
    for word, (valence, arousal) in MOODS.items():
        assert -1 <= valence <= 1 and -1 <= arousal <= 1, word
        assert word == word.lower().strip()


def test_unknown_mood_word_is_a_note_with_a_warning():
    parsed = parse_marker("mood: grumpy-ish")
    assert parsed["kind"] == "note"
    assert parsed["valence"] is None
    assert "grumpy-ish" in parsed["warning"]


@pytest.mark.parametrize(
    "name, va",
    [
        ("va: 0.4, -0.2", (0.4, -0.2)),
        ("VA:0.4 -0.2", (0.4, -0.2)),
        ("va : -1, 1", (-1.0, 1.0)),
        ("va: .5,+.25", (0.5, 0.25)),
        ("va: 0 0", (0.0, 0.0)),
    ],
)
def test_va(name, va):
    parsed = parse_marker(name)
    assert parsed["kind"] == "va" and parsed["mood"] is None and parsed["warning"] is None
    assert (parsed["valence"], parsed["arousal"]) == va


@pytest.mark.parametrize("name", ["va: 1.5, 0", "va: 0, -2", "va: 3 3"])
def test_va_out_of_range_is_ignored_with_a_warning(name):
    parsed = parse_marker(name)
    assert parsed["kind"] == "note" and parsed["valence"] is None
    assert "[-1, 1]" in parsed["warning"]


def test_va_unreadable_is_a_note_with_a_warning():
    parsed = parse_marker("va: high, low")
    assert parsed["kind"] == "note" and "va: V, A" in parsed["warning"]


@pytest.mark.parametrize("name", ["tacet", "TACET", "tacet: dialogue"])
def test_tacet(name):
    assert parse_marker(name)["kind"] == "tacet"


@pytest.mark.parametrize("name", ["music", "Music", "end tacet", "End  Tacet", "music: back in"])
def test_music_ends_a_tacet(name):
    assert parse_marker(name)["kind"] == "music"


@pytest.mark.parametrize("name", ["", "Marker 1", "fix the colour here", "moody", "SB: hit"])
def test_anything_else_is_a_note(name):
    assert parse_marker(name) == {"kind": "note", "mood": None, "valence": None, "arousal": None, "warning": None}


def test_comment_is_read_when_the_name_is_no_instruction():
    assert parse_marker("Marker 3", "hit")["kind"] == "hit"
    parsed = parse_marker("", "Mood: Melancholy")
    assert parsed["kind"] == "mood" and parsed["mood"] == "melancholy"
    assert parse_marker("Marker 4", "just a note")["kind"] == "note"


def test_name_wins_over_comment():
    assert parse_marker("tacet", "hit")["kind"] == "tacet"


def test_mood_auto_hands_back_to_the_picture():
    for text in ("mood: auto", "Mood: Picture", "mood:off"):
        parsed = parse_marker(text)
        assert parsed["kind"] == "mood" and parsed["mood"] == "auto"
        assert parsed["valence"] is None and parsed["arousal"] is None and parsed["warning"] is None


def test_tacet_spans_rule():
    from bridge.timeline.markers import tacet_spans
    from bridge.timeline import Marker

    markers = [
        Marker(30, "tacet", kind="tacet", duration=10),
        Marker(35, "music", kind="music"),
        Marker(80, "tacet", kind="tacet"),
        Marker(90, "music", kind="music"),
        Marker(150, "tacet", kind="tacet"),
    ]
    # own duration wins over a music marker inside it; no duration runs to the next music
    # marker, else to the end; spans are clipped to the timeline
    assert tacet_spans(markers, 200) == [(30, 40), (80, 90), (150, 200)]
    assert tacet_spans([Marker(190, "tacet", kind="tacet", duration=50)], 200) == [(190, 200)]
