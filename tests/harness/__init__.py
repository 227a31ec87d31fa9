"""What the tests and the benchmarks start and wait for, done one way for both.

- `ports`: free ports of 127.0.0.1, and ports that stay free for a restart.
- `polling`: waiting for a condition with a deadline (`wait_until`, `eventually`).
- `processes`: child processes with their output in a log, stopped politely then by force.
- `causerie_process`: `causerie serve` / `demo` as a process of its own, restartable.
- `in_process`: a node in the test's event loop, served by the shipped server's uvicorn.
- `redis_server`: a real redis-server, throwaway or durable (AOF) and restartable.
- `edges`: nginx and Varnish edges as `causerie edge-config` writes them; a plain nginx.

The benchmarks import it too (`python -m bench.NAME` from the repository's root).
"""
