"""The reactions a listener may send while a space is live."""

EMOJI = ("👏", "❤️", "😂", "🔥", "😮", "💯", "🙏", "👍")
"""The emoji offered on the listener page and accepted by `POST …/reactions`, in that order."""
