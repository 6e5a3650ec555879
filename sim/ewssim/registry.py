"""The table of EWS operations ews-sim answers: body element local name -> handler.

A handler is `async def handler(ctx, op) -> lxml element | aiohttp.web.StreamResponse`:
it gets the request context (server.Context) and the validated body element and returns
the m:<Op>Response element (server wraps it in the envelope), or a StreamResponse it has
already prepared and written (GetStreamingEvents). It raises soap.EwsFault for
request-level failures (SOAP fault) and builds per-message errors itself.
"""

OPERATIONS = {}


class Operation:
    def __init__(self, name, handler, min_version=None, streaming=False, throttled=True):
        self.name = name
        self.handler = handler
        self.min_version = min_version  # RequestServerVersion the operation needs
        self.streaming = streaming  # hanging connection: not counted in EWSMaxConcurrency
        self.throttled = throttled


def operation(name, min_version=None, streaming=False, throttled=True):
    def deco(fn):
        if name in OPERATIONS:
            raise RuntimeError("operation %s registered twice" % name)
        OPERATIONS[name] = Operation(name, fn, min_version, streaming, throttled)
        return fn

    return deco
