"""The Graph simulator's services in one place (sim.graph, made by main from the options):
the directory and its tokens (auth), throttling and faults, the delta sync states, the
subscriptions, and the user lookup and mailbox readiness every Graph route needs.

Graph and EWS share the sim's mailboxes and calendars; a mailbox is served by Graph only
while it lives in Exchange Online (sim.is_cloud) and no move window is open.
"""

import ssl

from . import graph_auth, graph_faults, graph_model, graph_subs


def notify_ssl_context(ca_file=None, insecure=False):
    """The TLS settings for calling the client's notification endpoints: verified against
    the system CAs (plus ca_file), or not verified at all (insecure, for tests)."""
    if insecure:
        return False
    ctx = ssl.create_default_context()
    if ca_file:
        ctx.load_verify_locations(cafile=ca_file)
    return ctx


class Graph:
    def __init__(self, sim, tenant_id, client_id, secrets, cert_paths=(), token_lifetime=3599,
                 tenant_name="contoso", notify_ssl=None, allow_http=False):
        self.sim = sim
        self.tenant_id = tenant_id
        self.auth = graph_auth.Directory(sim, tenant_id, client_id, secrets, cert_paths, token_lifetime,
                                         tenant_name)
        self.faults = graph_faults.GraphFaults(sim)
        self.deltas = graph_model.DeltaStore(sim)
        self.subs = graph_subs.Subscriptions(sim, tenant_id, self.faults, graph_model.user_id,
                                             notify_ssl if notify_ssl is not None else notify_ssl_context(),
                                             allow_http)
        self.page_size = 10  # calendarView's default page
        self._by_id = {}
        self._indexed = (0, 0)

    def describe(self):
        return {"tenant": self.auth.describe(), "page_size": self.page_size, "delta": self.deltas.describe(),
                "subscriptions": self.subs.cfg.as_dict(), "limits": self.faults.limits.as_dict(),
                "notify_allow_http": self.subs.allow_http}

    def find_user(self, text):
        """The mailbox a /users/{id | userPrincipalName} segment names, or None. The UPN is
        the primary SMTP address (UPN = mail, as Microsoft recommends for hybrid)."""
        t = text.strip().lower()
        if "@" in t:
            return self.sim.mailbox(t)
        smtp = self._by_id.get(t)
        if smtp is None:
            # Index again only on a miss, and only when mailboxes were added since.
            key = (self.sim.demo_count, len(self.sim.materialised()))
            if key != self._indexed:
                self._reindex()
                self._indexed = key
                smtp = self._by_id.get(t)
        return self.sim.mailbox(smtp) if smtp else None

    def _reindex(self):
        sim = self.sim
        by_id = {}
        for i in range(1, sim.demo_count + 1):
            smtp = "user%05d@%s" % (i, sim.domain)
            by_id[graph_model.user_id_of(smtp)] = smtp
        for mb in sim.materialised():
            by_id[graph_model.user_id_of(mb.smtp)] = mb.smtp
        self._by_id = by_id

    def mailbox_ready(self, mb):
        """Graph serves the mailbox: it lives in Exchange Online and is not moving."""
        return self.sim.is_cloud(mb) and not self.sim.moving(mb)
