"""What each audience number means, in words: the API and the report page show these
(docs/numbers.md has the exact definitions)."""

DEFINITIONS: dict[str, tuple[str, str]] = {
    "listening_now": (
        "Listening now",
        "Distinct listeners who joined or sent a heartbeat in the last 15–30 seconds.",
    ),
    "peak": (
        "Peak",
        "The most listeners listening at once, sampled every 15 seconds while live.",
    ),
    "average_minute_audience": (
        "Average minute audience",
        "The number of listeners in an average minute of the program.",
    ),
    "unique_listeners": (
        "Unique listeners",
        "Distinct listeners who joined or sent a heartbeat; joining again with a new token"
        " counts again.",
    ),
    "join_attempts": (
        "Joins attempted",
        "Requests to join that reached this space, admitted or not.",
    ),
    "joins": ("Joins admitted", "Listener tokens issued for this space."),
    "node_refused": (
        "Refused by overload",
        "Requests of any kind this node turned away with 503 since it started.",
    ),
    "replay_plays": (
        "Replay plays",
        "Distinct devices (address and browser) that opened the replay, once per day.",
    ),
    "minutes": ("Minutes", "Minutes of the program (from going live to the end)."),
}
"""Each number's short name and one-line definition: the API and the report page show these."""
