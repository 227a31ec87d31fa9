vcl 4.1;
# causerie caching edge: Varnish (7.1 or later).
# Written by `{{command}}`.
# Origins: {{origins}}
#
# Start:  {{varnishd}}
# Check:  varnishd -C -f THIS_FILE -n DIR
#
# What it does (docs/edges.md explains the numbers):
# - LL-HLS parts, segments and init sections are cached as the origin says (immutable, a year);
#   blocking playlist reloads (?_HLS_msn=N&_HLS_part=P) are cached under their full URL, query
#   string included (sorted), for the origin's max-age (6 s); the plain playlist for
#   {{playlist_ttl}}, about half a part, whatever the origin says.
# - LL-DASH: the manifest for half a second; init sections and segments as the
#   origin says (immutable). A segment is asked for while it is being made: the origin sends
#   it chunk by chunk (chunked transfer) and this edge streams it, as it comes, to every
#   listener that asks meanwhile: one origin request per segment, however many listeners.
# - Concurrent misses for one object wait for a single origin request (Varnish's waiting list)
#   and are released as soon as its headers arrive; the body is streamed to all of them as it
#   comes (do_stream). Each response being streamed holds a worker thread, and a listener
#   page streams two at once (the LL-DASH segment and the window of live events):
#   -p thread_pool_max x thread_pools must exceed twice the listeners.
# - Space details (GET /api/spaces/{id}) are cached, served stale for 30 s while revalidating,
#   and for up to a day while the origin is down (health probes) or failing (grace, restart).
# - Joins and every other POST/PUT/PATCH/DELETE and WHIP are passed to the origin, live events
#   (SSE) are piped (no buffering, no timeout but the origin's keep-alive pings); a request
#   with Authorization is never cached, except the public objects above, which do not depend
#   on who asks (the header is not forwarded for them).
# - CORS: the origins' Access-Control-* headers are cached and sent with each object as they
#   came (`*`, the same for every origin: no Vary); preflights (OPTIONS) are passed to the
#   origin, never cached. Players and embedded players on other sites need them (docs/embed.md).

import directors;
import std;

probe causerie_health {
    .url = "/healthz";
    .interval = 1s;
    .timeout = 2s;
    .window = 3;
    .threshold = 2;
    .initial = 2;
}

{{backends}}
sub vcl_init {
    # The API and the pages: any node.
    new causerie_api = directors.round_robin();
{{api_adds}}    # A live space's media (and its speakers' WHIP sessions) is made on one node, its owner:
    # requests for one space always go to the same origin, chosen by its id (any node forwards
    # them to the owner; the same one keeps the edge's connections few). A sick origin (health
    # probe) is skipped; one that refuses the connection is retried on the next (vcl_backend_error).
    new causerie_media = directors.shard();
{{media_adds}}    causerie_media.reconfigure();
}

sub vcl_recv {
    # One Host for the origins, whatever the client sent: what is cached is shared by
    # everyone, so it must not depend on a header any client chooses (cache poisoning).
    set req.http.Host = "{{public_host}}";

    # A percent-encoded unreserved character (RFC 3986 §2.3, §6.2.2.2: A-Z a-z 0-9 - . _ ~)
    # means the character itself, so the origin reads /%6detrics as /metrics, while the rules
    # below match the raw text: no client needs to send one in a path, so it is refused.
    if (req.url ~ "^[^?]*%(2[DEde]|3[0-9]|4[1-9A-Fa-f]|5[0-9AFaf]|6[1-9A-Fa-f]|7[0-9AEae])") {
        return (synth(400, "Bad Request"));
    }

    if (req.url ~ "^/(hls|dash|whip)/[A-Za-z0-9_-]+") {
        set req.backend_hint = causerie_media.backend(
            by=KEY,
            key=causerie_media.key(regsub(req.url, "^/(?:hls|dash|whip)/([A-Za-z0-9_-]+).*$", "\1")));
    } else {
        set req.backend_hint = causerie_api.backend();
    }
    # Per-node numbers: scrape each node directly, not through an edge.
    if (req.url ~ "^/metrics(\?|$)") {
        return (synth(404, "Not Found"));
    }
    # Joins, every other write, WHIP: to the origin, never cached.
    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }
    # Live events (Server-Sent Events): a plain TCP relay for the stream's whole life.
    if (req.url ~ "^/api/spaces/[A-Za-z0-9_-]+/events(\?|$)") {
        return (pipe);
    }
    if (req.url ~ "^/feed/") {
        # The audience's live events in windows: the same bytes for every listener, streamed
        # while the window is open (one origin request per window per edge), then immutable.
        unset req.http.Authorization;
        unset req.http.Cookie;
        return (hash);
    }
    # The node's clock, for players (UTCTiming): never cached.
    if (req.url ~ "^/time(\?|$)") {
        return (pass);
    }
    # LL-HLS and LL-DASH: public, the same for everyone.
    if (req.url ~ "^/(hls|dash)/") {
        unset req.http.Authorization;
        unset req.http.Cookie;
        set req.url = std.querysort(req.url);
        return (hash);
    }
    # Space details and the list of spaces: public, the same for everyone.
    if (req.url ~ "^/api/spaces(/[A-Za-z0-9_-]+)?$") {
        unset req.http.Authorization;
        unset req.http.Cookie;
        if (req.restarts == 0 && std.healthy(req.backend_hint)) {
            # Origin up: stale-while-revalidate=30.
            set req.grace = 30s;
        } else {
            # Origin down, or it just failed us: any copy up to a day old (stale-if-error).
            set req.grace = 24h;
        }
        return (hash);
    }
    # Everything else: Varnish's built-in rules (Authorization or Cookie: not cached).
}

sub vcl_hash {
    # One site: the URL alone, query string included, whatever the Host.
    hash_data(req.url);
    return (lookup);
}

sub vcl_backend_fetch {
    if (bereq.retries > 0 && bereq.url ~ "^/(hls|dash|whip)/[A-Za-z0-9_-]+") {
        # The space's usual origin failed (e.g. killed, not yet marked sick): the next one.
        set bereq.backend = causerie_media.backend(
            by=KEY,
            key=causerie_media.key(regsub(bereq.url, "^/(?:hls|dash|whip)/([A-Za-z0-9_-]+).*$", "\1")),
            alt=bereq.retries);
    }
}

sub vcl_backend_response {
    if (bereq.url ~ "^/feed/") {
        # A window of live events in progress streams for seconds, like a DASH segment.
        set beresp.do_stream = true;
        set beresp.grace = 0s;
        if (beresp.status != 200) {
            set beresp.ttl = 0s;
            set beresp.uncacheable = true;
        }
        return (deliver);
    }
    if (bereq.url ~ "^/(hls|dash)/") {
        # A DASH segment in progress comes chunk by chunk for seconds: every listener waiting
        # for it gets each chunk as it arrives (and so do those asking meanwhile).
        set beresp.do_stream = true;
        set beresp.grace = 0s;
        if (beresp.status != 200) {
            # Not on the air here, a part asked for too early, a blocking reload that timed
            # out: never cached, and not remembered either (no hit-for-miss for the URL).
            set beresp.ttl = 0s;
            set beresp.uncacheable = true;
            return (deliver);
        }
        if (bereq.url ~ "^/hls/[^/]+/index\.m3u8$") {
            # The plain playlist changes every part: about half a part.
            set beresp.ttl = {{playlist_ttl}};
        }
        if (bereq.url ~ "^/dash/[^/]+/manifest\.mpd$") {
            # The DASH manifest changes when the run does or ends; players reload it about a
            # second after the end (told so by the last chunk): keep it half of that.
            set beresp.ttl = 0.5s;
        }
        # Everything else as the origin says: blocking reloads max-age=6, media immutable.
        return (deliver);
    }
    if (bereq.url ~ "^/api/spaces(/[A-Za-z0-9_-]+)?$") {
        if (beresp.status >= 500) {
            # Keep the copy we have; a client waiting for this is served it (vcl_synth).
            return (abandon);
        }
        if (beresp.ttl > 0s) {
            # Kept a day past its max-age (stale-if-error=86400); vcl_recv limits it to
            # 30 s while the origin is up.
            set beresp.grace = 24h;
        }
    }
    # Everything else: Varnish's built-in rules (honour Cache-Control).
}

sub vcl_backend_error {
    if (bereq.url ~ "^/(hls|dash)/" && bereq.retries == 0) {
        # The origin did not answer at all (connection refused, reset): try the next origin.
        return (retry);
    }
    if (bereq.url ~ "^/api/spaces(/[A-Za-z0-9_-]+)?$") {
        return (abandon);
    }
}

sub vcl_synth {
    # The origin failed while fetching details: try once more, accepting a stale copy.
    if (resp.status == 503 && req.restarts == 0 && req.method == "GET" &&
        req.url ~ "^/api/spaces(/[A-Za-z0-9_-]+)?$") {
        return (restart);
    }
}

sub vcl_deliver {
    if (obj.uncacheable) {
        set resp.http.X-Cache = "PASS";
    } else if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}
