"""Captions: speech recognition of a live space's program audio, off the media loop, and what
is made of it (live caption lines, the replay's WebVTT transcript, full-text search).

Pure pieces (no I/O): `utterances` (where an utterance ends), `lines` (a caption line and its
media time), `webvtt` (rendering), `transcript` (lines placed on the recording's timeline),
`query` (a search text made safe for FTS5). Engines on top: `recognizer` (the worker process),
`worker` (one space's feed to it), `service` (the node's captions), `search` (the index).
"""
