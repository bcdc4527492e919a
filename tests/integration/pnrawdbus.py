# SPDX-License-Identifier: LGPL-2.1-or-later
"""A raw D-Bus connection for hostile tests: messages marshalled here, byte
by byte (little-endian, protocol version 1), so that a test can send what
no binding would let it send quickly: a Subscribe with a million event
names, thousands of calls pipelined without waiting for their replies, or
a signal with any interface and member (a forger).

    c = RawConnection(bus.address)                   # authenticated, Hello done
    c.send(c.method_call(DEST, PATH, IFACE, "Subscribe", "asa{sv}", body))
    reply = c.read_message(timeout)                  # (type, fields, body bytes)

Bodies are built with Body: Body().array_of_strings(names).dict_sv({...}).
"""
import os
import select
import socket
import struct
import time

from pntest import fail

METHOD_CALL, METHOD_RETURN, ERROR, SIGNAL = 1, 2, 3, 4
NO_REPLY_EXPECTED = 0x1
F_PATH, F_INTERFACE, F_MEMBER, F_ERROR_NAME, F_REPLY_SERIAL, F_DESTINATION, F_SENDER, F_SIGNATURE = \
    1, 2, 3, 4, 5, 6, 7, 8


class Body:
    """A D-Bus body, marshalled as it is built (offsets count from the
    start of the body, which the header pads to 8)."""

    def __init__(self):
        self.b = bytearray()

    def pad(self, n):
        self.b += b"\0" * (-len(self.b) % n)
        return self

    def fixed(self, fmt, v):
        """A fixed-size value, aligned to its size (struct format fmt)."""
        self.pad(struct.calcsize(fmt))
        self.b += struct.pack("<" + fmt, v)
        return self

    def u32(self, v):
        return self.fixed("I", v)

    def i32(self, v):
        return self.fixed("i", v)

    def u64(self, v):
        return self.fixed("Q", v)

    def string(self, s):
        data = s if isinstance(s, bytes) else s.encode()
        self.u32(len(data))
        self.b += data + b"\0"
        return self

    def signature(self, s):
        self.b += bytes([len(s)]) + s.encode() + b"\0"
        return self

    def array_of_strings(self, items):
        """'as': a length, then the strings. Built as one join: a million
        entries take well under a second."""
        self.pad(4)
        start = len(self.b) + 4
        parts = []
        off = start
        for s in items:
            data = s if isinstance(s, bytes) else s.encode()
            pad = -off % 4
            parts.append(b"\0" * pad + struct.pack("<I", len(data)) + data + b"\0")
            off += pad + 4 + len(data) + 1
        self.u32(off - start)
        self.b += b"".join(parts)
        return self

    def dict_sv(self, items):
        """'a{sv}' with values given as (signature, marshal function) pairs
        or plain str/int/bool (s, i, b)."""
        self.pad(4)
        at = len(self.b)
        self.b += b"\0\0\0\0"
        self.pad(8)
        start = len(self.b)
        for key, value in items:
            self.pad(8)
            self.string(key)
            if isinstance(value, bool):
                self.signature("b").u32(int(value))
            elif isinstance(value, int):
                self.signature("i").i32(value)
            elif isinstance(value, str):
                self.signature("s").string(value)
            else:
                sig, fn = value
                self.signature(sig)
                fn(self)
        struct.pack_into("<I", self.b, at, len(self.b) - start)
        return self


def _header(mtype, flags, serial, fields, body_len):
    h = Body()
    h.b += struct.pack("<cBBBII", b"l", mtype, flags, 1, body_len, serial)
    h.u32(0)  # the fields array's length, patched below
    h.pad(8)
    start = len(h.b)
    for code, sig, value in fields:
        h.pad(8)
        h.b += bytes([code])
        h.signature(sig)
        if sig in ("s", "o"):
            h.string(value)
        elif sig == "g":
            h.signature(value)
        elif sig == "u":
            h.u32(value)
    struct.pack_into("<I", h.b, 12, len(h.b) - start)
    h.pad(8)
    return bytes(h.b)


class RawConnection:
    def __init__(self, address, timeout=15):
        path = address.split("unix:path=", 1)[1].split(",")[0]
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.sock.settimeout(timeout)
        self.sock.sendall(b"\0AUTH EXTERNAL " + str(os.geteuid()).encode().hex().encode() + b"\r\n")
        line = self._auth_line()
        if not line.startswith(b"OK"):
            fail(f"bus refused EXTERNAL authentication: {line!r}")
        self.sock.sendall(b"BEGIN\r\n")
        self.buf = b""
        self.serial = 0
        self.sock.setblocking(False)
        self.send(self.method_call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                   "Hello"))
        self.unique_name = read_string(self.read_reply(self.serial, timeout)[2])

    def _auth_line(self):
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = self.sock.recv(4096)
            if not chunk:
                fail("bus closed the connection during authentication")
            data += chunk
        return data

    def close(self):
        self.sock.close()

    def message(self, mtype, fields, signature="", body=b"", flags=0):
        self.serial += 1
        if signature:
            fields = fields + [(F_SIGNATURE, "g", signature)]
        return _header(mtype, flags, self.serial, fields, len(body)) + bytes(body)

    def method_call(self, dest, path, iface, member, signature="", body=b"", flags=0):
        return self.message(METHOD_CALL, [(F_PATH, "o", path), (F_INTERFACE, "s", iface),
                                          (F_MEMBER, "s", member), (F_DESTINATION, "s", dest)],
                            signature, body, flags)

    def signal(self, path, iface, member, signature="", body=b"", dest=None):
        fields = [(F_PATH, "o", path), (F_INTERFACE, "s", iface), (F_MEMBER, "s", member)]
        if dest:
            fields.append((F_DESTINATION, "s", dest))
        return self.message(SIGNAL, fields, signature, body)

    def send(self, data, timeout=60):
        view = memoryview(data)
        deadline = time.monotonic() + timeout
        while view:
            try:
                n = self.sock.send(view)
                view = view[n:]
            except BlockingIOError:
                # Read what came meanwhile: a bus that cannot write to us
                # stops reading from us.
                r, _, _ = select.select([self.sock], [self.sock], [], max(deadline - time.monotonic(), 0))
                if not r and time.monotonic() > deadline:
                    fail(f"could not send {len(data)} bytes to the bus within {timeout}s")
                if r:
                    self._fill()

    def _fill(self):
        try:
            data = self.sock.recv(1 << 20)
        except BlockingIOError:
            return
        if not data:
            fail("the bus closed the connection")
        self.buf += data

    def _parse(self):
        """One message from the buffer, or None if incomplete."""
        if len(self.buf) < 16:
            return None
        mtype, flags, _, body_len, serial, fields_len = struct.unpack_from("<xBBBIII", self.buf)
        header_len = 16 + fields_len + (-(16 + fields_len) % 8)
        if len(self.buf) < header_len + body_len:
            return None
        fields = {}
        off = 16
        while off < 16 + fields_len:
            off += -off % 8
            code = self.buf[off]
            slen = self.buf[off + 1]
            sig = self.buf[off + 2:off + 2 + slen].decode()
            off += 3 + slen
            if sig in ("s", "o"):
                off += -off % 4
                n = struct.unpack_from("<I", self.buf, off)[0]
                fields[code] = self.buf[off + 4:off + 4 + n].decode()
                off += 5 + n
            elif sig == "g":
                n = self.buf[off]
                fields[code] = self.buf[off + 1:off + 1 + n].decode()
                off += 2 + n
            elif sig == "u":
                off += -off % 4
                fields[code] = struct.unpack_from("<I", self.buf, off)[0]
                off += 4
        body = self.buf[header_len:header_len + body_len]
        self.buf = self.buf[header_len + body_len:]
        return mtype, fields, body

    def read_message(self, timeout=15):
        deadline = time.monotonic() + timeout
        while True:
            m = self._parse()
            if m:
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                fail(f"no message from the bus within {timeout}s")
            r, _, _ = select.select([self.sock], [], [], left)
            if r:
                self._fill()

    def read_reply(self, serial, timeout=15):
        """The reply (method return or error) to serial; other messages are dropped."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.read_message(max(deadline - time.monotonic(), 0.001))
            if m[0] in (METHOD_RETURN, ERROR) and m[1].get(F_REPLY_SERIAL) == serial:
                return m


def read_string(body):
    """The first argument of a body that starts with a string."""
    n = struct.unpack_from("<I", body)[0]
    return bytes(body[4:4 + n]).decode()


def read_string_array(body):
    """The first argument of a body that is 'as' (ListNames)."""
    body = bytes(body)
    n = struct.unpack_from("<I", body)[0]
    out, off = [], 4
    while off < 4 + n:
        off += -off % 4
        k = struct.unpack_from("<I", body, off)[0]
        out.append(body[off + 4:off + 4 + k].decode())
        off += 5 + k
    return out


def error_name(m):
    """The error name of a reply, or None for a method return."""
    return m[1].get(F_ERROR_NAME) if m[0] == ERROR else None


def error_text(m):
    """An error reply's message (its first string argument)."""
    if m[0] != ERROR or len(m[2]) < 4:
        return ""
    return read_string(m[2])
