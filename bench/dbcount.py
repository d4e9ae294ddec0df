"""Prints the number of documents in a collection (MongoDB wire protocol,
standard library only), or -1 when the database does not answer.

usage: dbcount.py PORT DATABASE COLLECTION
"""

import socket
import struct
import sys


def cstr(s):
    return s.encode() + b"\0"


def bson_string(name, value):
    data = value.encode()
    return b"\x02" + cstr(name) + struct.pack("<i", len(data) + 1) + data + b"\0"


def top_level_number(doc, wanted):
    """The value of top-level field WANTED of a BSON document, when numeric."""
    pos, end = 4, struct.unpack("<i", doc[:4])[0] - 1
    sizes = {0x01: 8, 0x08: 1, 0x09: 8, 0x10: 4, 0x11: 8, 0x12: 8, 0x07: 12, 0x0A: 0}
    while pos < end:
        kind = doc[pos]
        name_end = doc.index(b"\0", pos + 1)
        name = doc[pos + 1:name_end].decode()
        pos = name_end + 1
        if kind == 0x01:
            value = struct.unpack("<d", doc[pos:pos + 8])[0]
        elif kind == 0x10:
            value = struct.unpack("<i", doc[pos:pos + 4])[0]
        elif kind == 0x12:
            value = struct.unpack("<q", doc[pos:pos + 8])[0]
        else:
            value = None
        if name == wanted and value is not None:
            return int(value)
        if kind in (0x02, 0x0D, 0x0E):
            pos += 4 + struct.unpack("<i", doc[pos:pos + 4])[0]
        elif kind in (0x03, 0x04):
            pos += struct.unpack("<i", doc[pos:pos + 4])[0]
        elif kind == 0x05:
            pos += 5 + struct.unpack("<i", doc[pos:pos + 4])[0]
        elif kind in sizes:
            pos += sizes[kind]
        else:
            return None
    return None


def main(argv):
    port, database, collection = int(argv[1]), argv[2], argv[3]
    body = bson_string("count", collection) + bson_string("$db", database)
    doc = struct.pack("<i", len(body) + 5) + body + b"\0"
    msg = struct.pack("<I", 0) + b"\0" + doc
    head = struct.pack("<iiii", 16 + len(msg), 1, 0, 2013)  # OP_MSG
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(head + msg)
            data = b""
            while len(data) < 4 or len(data) < struct.unpack("<i", data[:4])[0]:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        reply = data[16 + 4 + 1:]  # header, flagBits, section kind 0
        n = top_level_number(reply, "n")
        print(n if n is not None else -1)
    except (OSError, ValueError, struct.error):
        print(-1)


if __name__ == "__main__":
    main(sys.argv)
