"""causerie: live audio spaces for very large audiences (WebRTC in, Low-Latency HLS out)."""

__version__ = "0.1.0"
