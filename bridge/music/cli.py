"""`scorebridge train …` and `scorebridge eval …`."""


def register(sub) -> None:
    """Add this concern's sub-commands to the top-level parser."""
