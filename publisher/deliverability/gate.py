"""Pausing a mailbox provider during a run: when the share of its recipients refused for
policy (4.7.x / 5.7.x: our mail, sender or volume, not the address) reaches
``deliverability.pause_rate`` (after at least ``deliverability.pause_after`` such
refusals), every further delivery to that provider stays queued for a later run, and
the run's report says so. Going on would only teach the provider's filters that the
sender ignores them; the rest of the list still gets its mail.

The gate is shared by the sending threads: ``paused`` is asked before a send,
``observe`` told each outcome.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from publisher.deliverability.providers import Providers


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
        self._lock = threading.Lock()

    def _of(self, address: str) -> _Tally:
        provider = self.providers.of(address)
        tally = self._tally.get(provider.key)
        if tally is None:
            tally = self._tally[provider.key] = _Tally(provider.label)
        return tally

    def paused(self, address: str) -> str:
        """Why sending to this address's provider is paused ("" when it is not)."""
        with self._lock:
            return self._of(address).paused

    def observe(self, address: str, policy_refusal: str = "") -> str:
        """Count one delivery tried to ``address`` (``policy_refusal``: the server's reply
        when it refused it for policy). Returns the one line saying why its provider is
        now paused, when this refusal paused it; else ""."""
        with self._lock:
            tally = self._of(address)
            tally.tried += 1
            if not policy_refusal or tally.paused:
                return ""
            tally.refused += 1
            if tally.refused < self.after or tally.refused / tally.tried < self.rate:
                return ""
            tally.paused = (
                f"sending to {tally.label} paused: {tally.refused} of {tally.tried} tried refused for policy "
                f"(at least {self.rate:.0%}; last: {policy_refusal}); its deliveries stay queued"
            )
            return tally.paused

    def pauses(self) -> list[str]:
        with self._lock:
            return [t.paused for t in self._tally.values() if t.paused]
