"""The reactions a listener may send while a space is live."""

EMOJI = ("👏", "❤️", "😂", "🔥", "😮", "💯", "🙏", "👍")
"""The emoji offered on the listener page and accepted by `POST …/reactions`, in that order."""

REACTION_NAMES = {
    "👏": "Applause",
    "❤️": "Love",
    "😂": "Laugh",
    "🔥": "Fire",
    "😮": "Wow",
    "💯": "Hundred",
    "🙏": "Thanks",
    "👍": "Thumbs up",
}
"""What each reaction is called for screen readers (its button's label on the pages)."""
