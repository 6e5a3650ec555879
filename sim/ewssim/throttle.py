"""Throttling budgets: EWSMaxConcurrency, HangingConnectionLimit and the
EwsMaxBurst/EwsRechargeRate/EwsCutoffBalance time budget.

A budget is a string key (server.Context.budget): "mailbox:<smtp>" when the request
impersonates, else "account:<smtp>", as Exchange charges impersonated calls to a copy of
the target mailbox's budget. Streaming connections have their own count per budget
(HangingConnectionLimit), separate from EWSMaxConcurrency.

The time budget (off unless POST /limits sets ews_request_cost_ms > 0):
- every budget starts full at ews_max_burst (ms) and recharges at ews_recharge_rate
  (ms per hour of sim time; timers run at --time-scale), never above ews_max_burst;
- each non-streaming request costs ews_request_cost_ms; while the balance is negative
  the request is delayed by the time the budget needs to earn that cost back (so a
  client in overdraft is slowed to the recharge rate, without an error; Exchange's
  "micro-delays");
- when the balance is below -ews_cutoff_balance the request is refused before it runs
  with an ErrorServerBusy fault whose BackOffMilliseconds is the (sim) time until the
  balance is back at zero. ews_cutoff_balance "unlimited" (the Exchange 2019 default)
  never refuses.
"""

import math
import time

from . import soap

TXT_CONCURRENCY = ("You have exceeded the available concurrent connections for your account. "
                   "Try again once your other requests have completed.")
TXT_BUSY = "The server cannot service this request right now. Try again later."

MAX_DELAY_SECONDS = 60.0  # cap of one overdraft delay (sim seconds)
MAX_BACKOFF_MS = 24 * 3600 * 1000

# The Policy value Exchange names in an ErrorExceededConnectionCount fault. For streaming
# (HangingConnectionLimit) the value is not documented; we send the same policy name
# with the hanging limit as MaxConcurrencyLimit (see docs/ews-sim-notifications.md).
POLICY_CONCURRENCY = "MaxConcurrency"
POLICY_HANGING = "MaxConcurrency"


class Throttle:
    def __init__(self, sim):
        self.sim = sim
        self.inflight = {}  # budget -> running non-streaming requests
        self.hanging = {}  # budget -> open streaming connections
        self.balances = {}  # budget -> [balance ms, monotonic time of last update]
        sim.gauge_hooks.append(self.gauges)

    # -- EWSMaxConcurrency and the time budget ------------------------------------------

    def enter(self, ctx):
        """Charge one non-streaming request to ctx.budget. Raises soap.EwsFault when
        refused; returns a delay in sim seconds (0 for none) the caller waits out while
        holding the concurrency slot."""
        sim = self.sim
        budget = ctx.budget
        lim = sim.limits
        n = self.inflight.get(budget, 0)
        if lim.ews_max_concurrency is not None and n >= lim.ews_max_concurrency:
            sim.counters.inc("rejections", "ErrorExceededConnectionCount:MaxConcurrency")
            raise soap.EwsFault(
                "ErrorExceededConnectionCount",
                TXT_CONCURRENCY,
                message_xml=[("Policy", POLICY_CONCURRENCY), ("MaxConcurrencyLimit", lim.ews_max_concurrency)],
            )
        delay = self._charge(budget)  # may raise ErrorServerBusy
        self.inflight[budget] = n + 1
        # A slow-response fault (faults.py) is served inside the slot, like a slow server.
        return delay + getattr(ctx, "extra_delay", 0.0)

    def leave(self, ctx):
        budget = ctx.budget
        n = self.inflight.get(budget, 0) - 1
        if n > 0:
            self.inflight[budget] = n
        else:
            self.inflight.pop(budget, None)

    def _budget_on(self):
        lim = self.sim.limits
        return bool(getattr(lim, "ews_request_cost_ms", 0)) and lim.ews_max_burst is not None

    def balance(self, budget):
        """Current balance (ms) of budget after recharging, or None when the model is off."""
        if not self._budget_on():
            return None
        lim = self.sim.limits
        now = time.monotonic()
        b = self.balances.get(budget)
        if b is None:
            b = self.balances[budget] = [float(lim.ews_max_burst), now]
        rate = lim.ews_recharge_rate
        if rate is None:
            b[0] = float(lim.ews_max_burst)
        else:
            elapsed_sim_ms = (now - b[1]) * self.sim.clock.scale * 1000.0
            b[0] = min(float(lim.ews_max_burst), b[0] + elapsed_sim_ms * rate / 3_600_000.0)
        b[1] = now
        return b[0]

    def _charge(self, budget):
        bal = self.balance(budget)
        if bal is None:
            return 0.0
        lim = self.sim.limits
        rate = lim.ews_recharge_rate
        if lim.ews_cutoff_balance is not None and bal < -lim.ews_cutoff_balance:
            if rate:
                backoff = int(math.ceil(-bal * 3_600_000.0 / rate))
            else:
                backoff = MAX_BACKOFF_MS
            backoff = max(1, min(backoff, MAX_BACKOFF_MS))
            self.sim.counters.inc("rejections", "ErrorServerBusy")
            raise soap.EwsFault("ErrorServerBusy", TXT_BUSY, message_xml=[("BackOffMilliseconds", backoff)])
        cost = float(lim.ews_request_cost_ms)
        self.balances[budget][0] = bal - cost
        if bal - cost < 0:
            self.sim.counters.inc("throttle_delays", "")
            if not rate:
                return MAX_DELAY_SECONDS
            return min(MAX_DELAY_SECONDS, cost * 3600.0 / rate)
        return 0.0

    # -- HangingConnectionLimit ------------------------------------------------------------

    def hanging_enter(self, ctx):
        """Count one open streaming connection against ctx.budget; returns the budget to
        hand back to hanging_leave(). Raises the ErrorExceededConnectionCount fault."""
        sim = self.sim
        budget = ctx.budget
        limit = sim.limits.hanging_connection_limit
        n = self.hanging.get(budget, 0)
        if limit is not None and n >= limit:
            sim.counters.inc("rejections", "ErrorExceededConnectionCount:HangingConnectionLimit")
            raise soap.EwsFault(
                "ErrorExceededConnectionCount",
                TXT_CONCURRENCY,
                message_xml=[("Policy", POLICY_HANGING), ("MaxConcurrencyLimit", limit)],
            )
        self.hanging[budget] = n + 1
        return budget

    def hanging_leave(self, budget):
        n = self.hanging.get(budget, 0) - 1
        if n > 0:
            self.hanging[budget] = n
        else:
            self.hanging.pop(budget, None)

    # -- gauges ------------------------------------------------------------------------

    def gauges(self):
        out = {
            "requests_in_flight": dict(self.inflight, total=sum(self.inflight.values())),
            "hanging_connections": dict(self.hanging, total=sum(self.hanging.values())),
        }
        if self._budget_on():
            out["budget_balance_ms"] = {k: round(self.balance(k), 1) for k in list(self.balances)[:1000]}
        return out
