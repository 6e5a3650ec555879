"""Tables of the EWS operations ews-sim answers: body element local name -> Operation.

Each module that answers operations keeps its own table (`OPERATIONS = registry.Table()`,
filled by the `@OPERATIONS.operation(...)` decorator as the module is defined) and main
merges the tables into the one the server dispatches on.

A handler is `async def handler(ctx, op) -> lxml element | aiohttp.web.StreamResponse`:
it gets the request context (server.Context) and the validated body element and returns
the m:<Op>Response element (server wraps it in the envelope), or a StreamResponse it has
already prepared and written (GetStreamingEvents). It raises soap.EwsFault for
request-level failures (SOAP fault) and builds per-message errors itself.
"""


class Operation:
    def __init__(self, name, handler, min_version=None, streaming=False, throttled=True):
        self.name = name
        self.handler = handler
        self.min_version = min_version  # RequestServerVersion the operation needs
        self.streaming = streaming  # hanging connection: not counted in EWSMaxConcurrency
        self.throttled = throttled


class Table:
    """Operations by name; a name is in a table at most once."""

    def __init__(self, *tables):
        """A table holding the operations of tables (RuntimeError on a name twice)."""
        self.ops = {}
        for t in tables:
            for entry in t.ops.values():
                self.add(entry)

    def add(self, entry):
        if entry.name in self.ops:
            raise RuntimeError("operation %s registered twice" % entry.name)
        self.ops[entry.name] = entry

    def operation(self, name, min_version=None, streaming=False, throttled=True):
        """Decorator: add the handler as operation name."""

        def deco(fn):
            self.add(Operation(name, fn, min_version, streaming, throttled))
            return fn

        return deco

    def get(self, name):
        """The Operation called name, or None."""
        return self.ops.get(name)

    def names(self):
        return sorted(self.ops)
