"""A webhook receiver for the tests: an aiohttp server in its own thread and event loop, on a
port chosen at run time. It records every request (headers, raw body, the status it answered)
and can be told to answer 500, or to refuse connections (its listening socket closed) and later
to listen again on the same port."""

import asyncio
import json
import threading

from aiohttp import web


class Request:
    def __init__(self, headers, body, status):
        self.headers = headers
        self.body = body
        self.status = status
        self.json = json.loads(body)
        self.id = self.json["id"]


class Receiver:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []
        self.status = 200
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.app = web.Application()
        self.app.router.add_post("/hook", self._handle)
        self.runner = web.AppRunner(self.app)
        self._call(self.runner.setup())
        self.site = None
        self.port = 0
        self.listen()

    def _call(self, coro, timeout=10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _handle(self, request):
        body = await request.read()
        with self.lock:
            status = self.status
            self.requests.append(Request(dict(request.headers), body, status))
        return web.Response(status=status, text="ok" if status == 200 else "down")

    @property
    def url(self):
        return "http://127.0.0.1:%d/hook" % self.port

    def listen(self):
        """Accept connections (again, on the same port after refuse())."""
        async def start():
            site = web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True)
            await site.start()
            return site
        self.site = self._call(start())
        if self.port == 0:
            self.port = self.site._server.sockets[0].getsockname()[1]

    def refuse(self):
        """Close the listening socket: connections are refused until listen()."""
        if self.site is not None:
            self._call(self.site.stop())
            self.site = None

    def answer(self, status):
        with self.lock:
            self.status = status

    def all(self):
        with self.lock:
            return list(self.requests)

    def accepted(self):
        """The requests answered 2xx, in arrival order."""
        return [r for r in self.all() if 200 <= r.status < 300]

    def failed(self):
        return [r for r in self.all() if r.status >= 300]

    def close(self):
        try:
            self._call(self.runner.cleanup())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()
