#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora (Fuzz/corpus/NAME/) from the unit tests' vectors: small, valid inputs and a
few near misses, so that libFuzzer starts from the shapes the parsers accept. The files are committed, so the
fuzzers do not need this script; run it for the targets whose seeds changed. The ClientHellos come from OpenSSL
with a fresh random and key share each time, so clienthello's files change whenever it is written.

    Fuzz/seeds.py [NAME...]     all targets, or only those named
"""
import hashlib
import pathlib
import ssl
import struct
import sys

CORPUS = pathlib.Path(__file__).resolve().parent / "corpus"
ONLY = set(sys.argv[1:])


def write(name, seeds):
    if ONLY and name not in ONLY:
        return
    directory = CORPUS / name
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.iterdir():
        old.unlink()
    for seed in seeds:
        data = seed.encode() if isinstance(seed, str) else bytes(seed)
        (directory / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)


# HTTP/1 (HTTP1ParserTests, HTTP1ParserFuzzTests, HTTPHardeningTests).
requests = [
    "GET /a?b=c HTTP/1.1\r\nHost: example.test\r\nAccept:  */*  \r\nX-Empty:\r\n\r\n",
    "POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /next HTTP/1.0\r\n\r\n",
    "PUT /c HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n"
    "5;name=value\r\nhello\r\n1A ; x\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Checksum: 1\r\nX-Other: two\r\n\r\n",
    "\r\n\r\nDELETE /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    "BREW /caf\u00e9 HTTP/1.1\r\n\r\n",
    "CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n\x16\x03\x01GET / HTTP/1.1\r\n",
    "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
    "GET http://h.test:8080/p?q=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nOPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
    "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "GET / HTTP/1.1\r\nX-Folded: a\r\n b\r\n\r\n",
    "POST / HTTP/1.1\r\nConnection: content-length\r\nContent-Length: 2\r\n\r\nhi",
]
# At the limits (HTTP1Limits): a field line of 16 KiB less a few bytes, and 200 fields. (The 64 KiB head limit is
# left to the unit tests: a seed that size would slow every run.)
requests += [
    "GET / HTTP/1.1\r\nX-Long: " + "v" * (16 * 1024 - 10) + "\r\n\r\n",
    "GET / HTTP/1.1\r\n" + "".join(f"X-{i}: v\r\n" for i in range(200)) + "\r\n",
]
write("http1-request", requests)

# The first byte chooses the requests' methods (see fuzzResponses): 0x00 one GET, 0x01 GET GET, 0x04 one HEAD,
# 0x08 one CONNECT, 0x11 GET HEAD.
responses = [
    b"\x00" + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
    b"\x11" + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
    b"\x01" + b"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\nHTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"\x00" + b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5\r\npedia\r\n0\r\nExpires: never\r\n\r\n",
    b"\x00" + b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"\x00" + b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello",
    b"\x08" + b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03\x00\x01\x02",
    b"\x00" + b"HTTP/1.0 200 OK\r\nServer: old\r\n\r\nthe body runs until the connection closes",
    b"\x00" + b"HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n",
    b"\x00" + b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nuntil close",
]
write("http1-response", responses)

# After "POST /upload HTTP/1.1 ... Transfer-Encoding: chunked" (see fuzzChunkedBodies).
chunked = [
    "5\r\nhello\r\n0\r\n\r\n",
    "5;name=value\r\nhello\r\n1A ; x\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Checksum: 1\r\nX-Other: two\r\n\r\n",
    "a\r\n0123456789\r\nA\r\n0123456789\r\n0\r\n\r\nGET /next HTTP/1.1\r\n\r\n",
    "000000003\r\nabc\r\n0;last\r\n\r\n",
    "fffffffffffffff\r\n",
    "3\r\nabcX\r\n",
    "0\r\nTrailer: x\r\n y\r\n\r\n",
    "5;" + "x" * (16 * 1024 - 3) + "\r\nhello\r\n0\r\n\r\n",
]
write("http1-chunked", chunked)


# WebSocket (WebSocketFrameParserTests; RFC 6455 §5.7). The first byte chooses the direction and limits (see the
# harness): 0x1E client to server, 0x1C server to client, both with a 1 MiB frame and message limit.
def frame(opcode, payload, fin=True, mask=None, rsv=0):
    header = bytearray([(0x80 if fin else 0) | (rsv << 4) | opcode])
    length = len(payload)
    mask_bit = 0x80 if mask else 0
    if length < 126:
        header.append(mask_bit | length)
    elif length <= 0xFFFF:
        header += bytes([mask_bit | 126]) + length.to_bytes(2, "big")
    else:
        header += bytes([mask_bit | 127]) + length.to_bytes(8, "big")
    if mask:
        header += mask
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes(header) + payload


key = bytes([0x37, 0xFA, 0x21, 0x3D])
server, client = b"\x1c", b"\x1e"
websocket = [
    server + frame(1, b"Hello"),
    client + frame(1, b"Hello", mask=key),
    server + frame(1, b"Hel", fin=False) + frame(9, b"ping") + frame(0, b"lo"),
    client + frame(2, bytes(range(256)) * 1, mask=key),
    server + frame(8, (1000).to_bytes(2, "big") + b"bye") + frame(10, b""),
    client + frame(8, (4000).to_bytes(2, "big") + "caf\u00e9".encode(), mask=key),
    server + frame(1, "\u00e9\u20ac".encode()[:3], fin=False) + frame(0, "\u00e9\u20ac".encode()[3:]),
    server + bytes([0x82, 0x7F]) + (70000).to_bytes(8, "big") + b"partial",
    b"\x00" + frame(1, b"over the zero limit"),
    server + frame(8, b"\x03"),
]
write("websocket", websocket)


# ClientHello: real hellos from this machine's OpenSSL (the tests capture NIOSSL's), whole and split over records.
def client_hello(server_name=None, alpn=None, maximum=None):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if alpn:
        context.set_alpn_protocols(alpn)
    if maximum:
        context.maximum_version = maximum
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    connection = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    try:
        connection.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def split_records(hello, size):
    body = hello[5:]
    out = b""
    for start in range(0, len(body), size):
        piece = body[start : start + size]
        out += hello[:3] + len(piece).to_bytes(2, "big") + piece
    return out


full = client_hello("example.com", ["h2", "http/1.1"])
clienthello = [
    full,
    client_hello(None),
    client_hello("a.test", None, ssl.TLSVersion.TLSv1_2),
    split_records(full, 100),
    full[:60],
    b"GET / HTTP/1.1\r\n\r\n",
    b"SSH-2.0-OpenSSH_9.2\r\n",
]
write("clienthello", clienthello)

# The filter language (FilterTests).
filters = [
    "~k tcp & ~dst :5432",
    "~m POST ~u /login",
    "!(~c 200 | ~c 304)",
    '~b "pass word"',
    "~src 127.0.0.1 | ~dst [::1]:8080",
    "~bs '\"ok\"' & ~h set-cookie & ~t json",
    "~q | ~s | ~e | ~marked | ~held",
    "~risk high ~cmd 'rm -rf'",
    "(~k ssh | ~k pg) & !~k mysql",
    "login",
    "~k tcp &",
    "~c 99",
]
write("filter", filters)

# The configuration file (ConfigurationTests, samples/sluice.yaml).
configs = [
    (pathlib.Path(__file__).resolve().parent.parent / "samples" / "sluice.yaml").read_text(),
    "listen:\n  - http://127.0.0.1:8080\n  - tcp://:9000=>db.internal:5432\n  - reverse+http://[::1]:8081=>https://backend:8443/\n",
    "websocket:\n  max_frame_bytes: 1024\n  max_message_bytes: 4096\n  max_buffered_bytes: 65536\n",
    "data_dir: ~/recordings\nrecord: false\nmax_payload_bytes: 1024\nconnect_timeout: 2.5\nhold_timeout: 30\n",
    "intercept: '~m POST & ~u /login'\nhold_default: drop\ntheme: light\nlog_level: debug\n",
    "tls:\n  passthrough: ['*.bank.example', pinned.test]\n  insecure_upstream: true\n  upstream_ca: ~/ca.pem\n",
    "access:\n  allow: [127.0.0.1, 10.0.0.0/8, 'fd00::/8']\n  deny: [10.0.0.7]\n  users: ['alice:secret']\n  token: abc\n",
    "listen: [tproxy://0.0.0.0:8022, 'redirect://[::]:8023']\ntransparent: {unknown: relay, sniff_timeout: 0.5, mark: 0x2}\n"
    "targets:\n  - {name: lab, destination: [10.0.0.0/8, 'fd00::/8'], port: [22, '8000-8099'], protocol: auto}\n"
    "  - {destination: any, port: 5432, protocol: postgres, options: {tls: intercept}}\n"
    "  - {destination: 192.0.2.1, action: deny}\n  - {port: 22, ssh: {host_key_policy: tofu}}\n",
    "connect_timeout: 1e16\n",
    "record: [unclosed\n",
    "? [complex, key]\n: 1\n",
]
write("config", configs)

# JSON bodies (JSONIndenterTests): the shapes the TUI lays out, and near misses it shows as text.
write("json", [
    '{"user":"alice","password":"hunter2","items":[1,2,3]}',
    '{"role":"user","role":"admin","x":1.0,"big":12345678901234567890,"u":"a\\/b","e":"caf\\u00e9","n":-0.5E+3}',
    '  [ {} , [ ] , { "a" :\n\t{ } } ]\r\n', '[true,false,null]', '{"a":"{[,:]}\\"\\\\"}',
    '[1,]', '{"a":1,}', '[01]', '"text"', '[' * 40 + ']' * 40,
])


# PostgreSQL (PostgresFramerTests, PostgresInspectorTests): a selector byte (bit 0: backend; bits 1-2: the cap),
# then one direction's stream.


def pg_message(letter, body=b""):
    return letter.encode() + struct.pack("!i", len(body) + 4) + body


def cstring(text):
    return text.encode() + b"\0"


pg_frontend = (
    struct.pack("!ii", 8, 80877103)
    + struct.pack("!ii", 8 + 27, 196608) + cstring("user") + cstring("app") + cstring("database") + cstring("shop") + b"\0"
    + pg_message("Q", cstring("SELECT 1; SELECT 2"))
    + pg_message("P", cstring("s1") + cstring("SELECT $1::int") + struct.pack("!hI", 1, 23))
    + pg_message("B", cstring("") + cstring("s1") + struct.pack("!hh", 1, 1) + struct.pack("!hi", 1, 4) + struct.pack("!i", 42) + struct.pack("!h", 0))
    + pg_message("D", b"P" + cstring("")) + pg_message("E", cstring("") + struct.pack("!i", 0)) + pg_message("S")
    + pg_message("d", b"1\tone\n") + pg_message("c") + pg_message("X")
)
pg_backend = (
    pg_message("R", struct.pack("!i", 10) + cstring("SCRAM-SHA-256") + cstring("SCRAM-SHA-256-PLUS") + b"\0")
    + pg_message("R", struct.pack("!i", 0)) + pg_message("S", cstring("server_version") + cstring("15.18"))
    + pg_message("K", struct.pack("!ii", 4242, 777)) + pg_message("Z", b"I")
    + pg_message("T", struct.pack("!h", 1) + cstring("n") + struct.pack("!ihihih", 0, 0, 23, 4, -1, 0))
    + pg_message("D", struct.pack("!hi", 1, 1) + b"1") + pg_message("C", cstring("SELECT 1"))
    + pg_message("E", b"SERROR\0C42P01\0Mrelation does not exist\0\0") + pg_message("Z", b"T")
)
write("postgres", [b"\x00" + pg_frontend, b"\x01" + pg_backend, b"\x07" + pg_backend, b"\x00" + pg_frontend[:20]])

# MySQL (MySQLInspectorTests, MariaDBCaptures): a selector byte (bit 0: server; bit 1: DEPRECATE_EOF), then a stream.


def my_packet(sequence, payload):
    return struct.pack("<I", len(payload))[:3] + bytes([sequence]) + payload


my_client = (
    my_packet(1, struct.pack("<IIB", 0x000FA685, 1 << 24, 33) + b"\0" * 23 + cstring("app") + b"\x14" + b"s" * 20 + cstring("shop") + cstring("mysql_native_password"))
    + my_packet(0, b"\x03select 1") + my_packet(0, b"\x16SELECT ? + 1") + my_packet(0, b"\x17" + struct.pack("<IBI", 1, 0, 1) + b"\x00\x01\x08\x00" + struct.pack("<q", 41))
    + my_packet(0, b"\x19" + struct.pack("<I", 1)) + my_packet(0, b"\x01")
)
my_server = bytes.fromhex(
    "640000000a352e352e352d31302e31312e31392d4d6172696144422d302b64656231327531000a000000252f5d64613a"
    "3e6800feff2d0200ff81150000000000001d0000006e7273672d496648742f2b29006d7973716c5f6e61746976655f70"
    "617373776f726400"
    "0100000101" "1800000203646566000000013100000c3f0001000000038100000000" "05000003fe00000200"
    "020000040131" "05000005fe00000200"
)
write("mysql", [b"\x00" + my_client, b"\x01" + my_server, b"\x03" + my_server])
