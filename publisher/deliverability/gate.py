"""Pausing a mailbox provider during a run, so that a provider refusing our mail for
policy (4.7.x / 5.7.x: the sender, its authentication, content or volume, not the
address) stops being sent to while the rest of the list still gets its mail. Going
on would only teach that provider's filters that the sender ignores them.

- A 5.7.x refusal of the message (the old "stop the run" rule, scoped to where it came
  from) pauses the recipient's provider at once.
- 4.7.x deferrals (rate limits, "unusual rate of unsolicited mail") pause it once at
  least ``deliverability.pause_after`` of them make up ``deliverability.pause_rate`` of
  the deliveries tried to it in this run.

A provider is one of ``providers.PROVIDERS``; any other domain is its own (one company's
server refusing must not pause every other domain). Every further delivery to a
paused provider stays queued for a later run, and the run's report says so. The gate
is shared by the sending threads: ``paused`` is asked before a send, ``observe`` told
each outcome.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from publisher.deliverability.providers import OTHER, Providers, domain_of


@dataclass
class _Tally:
    label: str
    tried: int = 0
    refused: int = 0
    paused: str = ""  # why, once paused


class ProviderGate:
    def __init__(self, providers: Providers, rate: float, after: int) -> None:
        self.providers, self.rate, self.after = providers, rate, after
        self._tally: dict[str, _Tally] = {}
        self._keys: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()

    def _key(self, address: str) -> tuple[str, str]:
        domain = address[address.rfind("@") + 1 :]
        key = self._keys.get(domain)
        if key is None:  # once per domain (a plain dict: a race only computes it twice)
            provider = self.providers.of(address)
            key = (
                ("domain:" + domain_of(address), domain_of(address))
                if provider is OTHER
                else (provider.key, provider.label)
            )
            self._keys[domain] = key
        return key

    def _tally_of(self, key: tuple[str, str]) -> _Tally:
        tally = self._tally.get(key[0])
        if tally is None:
            tally = self._tally[key[0]] = _Tally(key[1])
        return tally

    def paused(self, address: str) -> str:
        """Why sending to this address's provider is paused ("" when it is not)."""
        key = self._key(address)
        with self._lock:
            return self._tally_of(key).paused

    def observe(self, address: str, policy_refusal: str = "", *, at_once: bool = False) -> str:
        """Count one delivery tried to ``address``; ``policy_refusal``: the server's reply
        when it refused it for policy (``at_once``: a 5.7.x refusal of the message).
        Returns the line saying why its provider is now paused, when this refusal
        paused it; else ""."""
        key = self._key(address)
        with self._lock:
            tally = self._tally_of(key)
            tally.tried += 1
            if not policy_refusal or tally.paused:
                return ""
            tally.refused += 1
            if at_once:
                tally.paused = f"sending to {tally.label} paused for this run: {policy_refusal}; its deliveries stay queued"
            elif tally.refused >= self.after and tally.refused / tally.tried >= self.rate:
                tally.paused = (
                    f"sending to {tally.label} paused for this run: {tally.refused} of {tally.tried} tried "
                    f"refused for policy (4.7.x/5.7.x, at least {self.rate:.0%}), last: {policy_refusal}; "
                    "its deliveries stay queued"
                )
            return tally.paused

    def pauses(self) -> list[str]:
        with self._lock:
            return [t.paused for t in self._tally.values() if t.paused]
