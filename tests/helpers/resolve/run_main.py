"""Run main() of the script on the fake Resolve and print its report as JSON.

For running under the oldest Python Resolve may pick (3.6): no OTIO there, so the edit is
built from the timeline's items. Usage: python run_main.py (environment as for the tests).
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # tests/

from helpers.resolve.fake import Resolve  # noqa: E402
from helpers.resolve.helpers import FAST, load_script  # noqa: E402

sb = load_script()
resolve = Resolve(rate="29.97 DF", start=107892, export_otio=False)
tl = resolve.timeline
tl.add_clip("a", 0, 120, path="/nowhere/a.mov")
tl.add_clip("b", 120, 150, path="/nowhere/b.mov")
tl.add_clip("c", 270, 90, path="/nowhere/c.mov")
tl.user_marker(200, "hit: door")
report = sb.main(resolve, options=FAST)
placed = [(i.start, i.length) for t in tl.audio if t["name"].startswith("ScoreBridge") for i in t["items"]]
ours = sorted(f for f, m in tl.markers.items() if m["customData"] == "scorebridge")
print(
    json.dumps(
        {
            "python": list(sys.version_info[:2]),
            "ok": report["ok"],
            "message": report["message"],
            "placed": placed,
            "markers": ours,
        }
    )
)
