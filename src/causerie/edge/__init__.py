"""Caching edges (nginx, Varnish) in front of causerie origins: their configurations."""

from .config import KINDS, EdgeOptions, Origin, render, render_nginx, render_varnish

__all__ = ["KINDS", "EdgeOptions", "Origin", "render", "render_nginx", "render_varnish"]
