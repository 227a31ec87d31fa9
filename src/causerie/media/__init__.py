"""The media plane: mixing speakers, AAC encoding, CMAF/LL-HLS packaging, the live pipeline.

One module per concept: ``mixer``, ``encoder``, ``fmp4``, ``playlist``, ``packager`` (pure, no
I/O) and ``pipeline`` (the asyncio loop that drives them on a wall-clock schedule).
"""
