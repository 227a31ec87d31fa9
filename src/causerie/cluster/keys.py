"""Every Redis key causerie uses, in one place, all under one prefix (`causerie:` by default).

Several deployments (or test runs) can share a Redis by choosing different prefixes. Each
module that talks to Redis takes a `RedisKeys` and asks it for names; none writes a key by hand.

key (under the prefix)      type         what (module that writes it)
space:{space}               string       the space as JSON (store/redis.py)
spaces:{state}              zset         space ids per state, by sort time (store/redis.py);
                                         spaces:live is what owners supervise (ownership.py)
questions:{space}           hash         question id → JSON without votes (store/redis.py)
votes:{space}               hash         question id → vote count (store/redis.py)
voters:{space}:{question}   set          who voted (store/redis.py)
reactions:{space}           hash         emoji → total (store/redis.py)
events:{space}:seq          string       the last event id (bus/redis.py)
events:{space}              stream       the event backlog (bus/redis.py)
events:{space}:live         channel      new events, pub/sub (bus/redis.py)
presence:{space}:{bucket}   HyperLogLog  listeners seen in a window (redis_presence.py)
stats:{space}               hash         the audience numbers (counting/redis_stats.py)
stats:{space}:samples       zset         per-minute samples (counting/redis_stats.py)
line:{space}                hash         a capped space's waiting line (waiting/redis.py)
limit:{kind}:t|ip:{who}     hash         rate-limit buckets (ratelimit/redis.py)
owner:{space}               string+TTL   the lease on the space's media (ownership.py)
run:{space}                 string       the space's run counter (ownership.py)
secrets                     string       the signing secrets (security/shared_secrets.py)
invite:{id}                 string       an invite as JSON, by its code's hash (accounts/redis.py)
invites                     zset         invite ids by creation time (accounts/redis.py)
account:{id}                string       an account an invite made, as JSON (accounts/redis.py)
accounts                    zset         those account ids by creation time (accounts/redis.py)
revoked                     set          revoked account ids (accounts/redis.py)
nodes                       hash         node URL → its last status report (cluster/nodes.py)
report:{ref}                string       a report as JSON (store/redis_moderation.py)
reports:open                zset         open report refs, by time received
reports:all                 zset         every report ref, by time received
reports:target:{target}     zset         a target's open report refs, by time received
reports:dedupe              hash         reporter|target → the open report's ref
audit                       stream       the audit log: only ever XADDed to
bans                        set          banned accounts
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PREFIX = "causerie:"


@dataclass(frozen=True)
class RedisKeys:
    """The names of causerie's Redis keys under `prefix`."""

    prefix: str = DEFAULT_PREFIX

    # -- the store
    def space(self, space_id: str) -> str:
        return f"{self.prefix}space:{space_id}"

    def spaces_in(self, state: str) -> str:
        return f"{self.prefix}spaces:{state}"

    def questions(self, space_id: str) -> str:
        return f"{self.prefix}questions:{space_id}"

    def votes(self, space_id: str) -> str:
        return f"{self.prefix}votes:{space_id}"

    def voters(self, space_id: str, question_id: str) -> str:
        return f"{self.prefix}voters:{space_id}:{question_id}"

    def reactions(self, space_id: str) -> str:
        return f"{self.prefix}reactions:{space_id}"

    # -- the bus
    def event_seq(self, space_id: str) -> str:
        return f"{self.prefix}events:{space_id}:seq"

    def events(self, space_id: str) -> str:
        return f"{self.prefix}events:{space_id}"

    def events_channel(self, space_id: str) -> str:
        return f"{self.prefix}events:{space_id}:live"

    def space_of_events_channel(self, channel: str) -> str | None:
        """The space whose live-events channel `channel` is, or None."""
        head, tail = f"{self.prefix}events:", ":live"
        if channel.startswith(head) and channel.endswith(tail):
            return channel[len(head) : -len(tail)]
        return None

    # -- counting
    def presence(self, space_id: str, bucket: int) -> str:
        return f"{self.prefix}presence:{space_id}:{bucket}"

    def stats(self, space_id: str) -> str:
        return f"{self.prefix}stats:{space_id}"

    def stats_samples(self, space_id: str) -> str:
        return f"{self.prefix}stats:{space_id}:samples"

    # -- waiting rooms and rate limits
    def line(self, space_id: str) -> str:
        return f"{self.prefix}line:{space_id}"

    def limit(self, kind: str, subject: str, address: str) -> tuple[str, str]:
        """The two buckets of one kind of write: the token's, then the address's."""
        return f"{self.prefix}limit:{kind}:t:{subject}", f"{self.prefix}limit:{kind}:ip:{address}"

    # -- moderation (store/redis_moderation.py)
    def report(self, ref: str) -> str:
        return f"{self.prefix}report:{ref}"

    @property
    def open_reports(self) -> str:
        return f"{self.prefix}reports:open"

    @property
    def all_reports(self) -> str:
        return f"{self.prefix}reports:all"

    def target_reports(self, target_key: str) -> str:
        return f"{self.prefix}reports:target:{target_key}"

    @property
    def report_dedupe(self) -> str:
        return f"{self.prefix}reports:dedupe"

    @property
    def audit(self) -> str:
        return f"{self.prefix}audit"

    @property
    def bans(self) -> str:
        return f"{self.prefix}bans"

    # -- the cluster
    @property
    def owner_prefix(self) -> str:
        return f"{self.prefix}owner:"

    @property
    def run_prefix(self) -> str:
        return f"{self.prefix}run:"

    def owner(self, space_id: str) -> str:
        return f"{self.owner_prefix}{space_id}"

    def run(self, space_id: str) -> str:
        return f"{self.run_prefix}{space_id}"

    @property
    def live_spaces(self) -> str:
        return self.spaces_in("live")

    @property
    def secrets(self) -> str:
        return f"{self.prefix}secrets"

    @property
    def nodes(self) -> str:
        return f"{self.prefix}nodes"

    # -- accounts
    def invite(self, invite_id: str) -> str:
        return f"{self.prefix}invite:{invite_id}"

    @property
    def invites(self) -> str:
        return f"{self.prefix}invites"

    def account(self, account_id: str) -> str:
        return f"{self.prefix}account:{account_id}"

    @property
    def accounts(self) -> str:
        return f"{self.prefix}accounts"

    @property
    def revoked(self) -> str:
        return f"{self.prefix}revoked"


KEYS = RedisKeys()
"""The keys under the default prefix."""
