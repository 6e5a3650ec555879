"""Pure-Python MD4 (RFC 1320).

OpenSSL 3 (and so ``hashlib`` on Debian 12) no longer offers MD4 without the
"legacy" provider, but NTLM needs it for the NT one-way function
(NTOWF = MD4(UTF-16LE(password))).  This module is small, dependency-free and
only used on short inputs (passwords), so speed does not matter.
"""

import struct

__all__ = ["md4", "MD4"]

_MASK = 0xFFFFFFFF


def _rotl(x, n):
    x &= _MASK
    return ((x << n) | (x >> (32 - n))) & _MASK


def _f(x, y, z):
    return (x & y) | (~x & z)


def _g(x, y, z):
    return (x & y) | (x & z) | (y & z)


def _h(x, y, z):
    return x ^ y ^ z


# Round 2/3 word orders (RFC 1320 section 3.4).
_R2_ORDER = (0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15)
_R3_ORDER = (0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15)
_R1_SHIFTS = (3, 7, 11, 19)
_R2_SHIFTS = (3, 5, 9, 13)
_R3_SHIFTS = (3, 9, 11, 15)


def _compress(state, block):
    x = struct.unpack("<16I", block)
    a, b, c, d = state

    for i in range(16):
        s = _R1_SHIFTS[i % 4]
        t = _rotl(a + _f(b, c, d) + x[i], s)
        a, b, c, d = d, t, b, c

    for i in range(16):
        s = _R2_SHIFTS[i % 4]
        t = _rotl(a + _g(b, c, d) + x[_R2_ORDER[i]] + 0x5A827999, s)
        a, b, c, d = d, t, b, c

    for i in range(16):
        s = _R3_SHIFTS[i % 4]
        t = _rotl(a + _h(b, c, d) + x[_R3_ORDER[i]] + 0x6ED9EBA1, s)
        a, b, c, d = d, t, b, c

    return (
        (state[0] + a) & _MASK,
        (state[1] + b) & _MASK,
        (state[2] + c) & _MASK,
        (state[3] + d) & _MASK,
    )


class MD4:
    """Minimal hashlib-like MD4 object (update/digest/hexdigest/copy)."""

    name = "md4"
    digest_size = 16
    block_size = 64

    def __init__(self, data=b""):
        self._state = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476)
        self._buf = b""
        self._count = 0  # total bytes hashed
        if data:
            self.update(data)

    def update(self, data):
        data = bytes(data)
        self._count += len(data)
        buf = self._buf + data
        n = len(buf) // 64 * 64
        state = self._state
        for off in range(0, n, 64):
            state = _compress(state, buf[off:off + 64])
        self._state = state
        self._buf = buf[n:]

    def copy(self):
        other = MD4()
        other._state = self._state
        other._buf = self._buf
        other._count = self._count
        return other

    def digest(self):
        bit_len = (self._count * 8) & 0xFFFFFFFFFFFFFFFF
        pad_len = (55 - self._count) % 64
        tail = self._buf + b"\x80" + b"\x00" * pad_len + struct.pack("<Q", bit_len)
        state = self._state
        for off in range(0, len(tail), 64):
            state = _compress(state, tail[off:off + 64])
        return struct.pack("<4I", *state)

    def hexdigest(self):
        return self.digest().hex()


def md4(data=b""):
    """Return the 16-byte MD4 digest of *data*."""
    return MD4(data).digest()
