"""Scoring one edit: the stages composed (pipeline), the draw's notes made into parts (compose),
and a live session's update that keeps what did not change (live).

    from bridge.score import score, load_model     # score(input, out) -> (manifest, path)

compose is a stage the renderers use (its ScoreNote is what they read); the pipeline drives the
renderers. So the package's names come from the pipeline only when asked for: importing
bridge.score.compose must not load the pipeline, and with it every stage.
"""

_PIPELINE = ("load_model", "score", "summary")


def __getattr__(name):
    if name in _PIPELINE:
        from bridge.score import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'bridge.score' has no attribute {name!r}")


__all__ = list(_PIPELINE)
