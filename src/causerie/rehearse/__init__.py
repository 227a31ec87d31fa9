"""The load rehearsal: Locust listeners, their figures and the report (docs/rehearse.md).

Nothing here imports Locust except `listener`, `run` and `locustfile`: Locust monkey-patches the
standard library with gevent, which must never happen in a server process.
"""
