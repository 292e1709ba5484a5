#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz/corpus/<target>/ (tests/fuzz/README.md).

    tests/fuzz/make_corpus.py [--es256-key PRIVATE.pem]

Every file is rewritten from what is listed here; the ES256 tokens only with
the private key whose public half is in tests/fuzz/jwt.cpp (it was thrown
away after they were signed: without the option those files stay as they are).
"""
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# -- ws_frames: byte 0 = limit (bits 0-2) | read size (bits 3-5) << 3 | compact (bit 6) ----------
# limits: 0, 1, 125, 126, 65535, 65536, 1000000, 2^62; reads: 1, 2, 3, 7, 16, 125, 4096, 65536

def ws_head(limit, read, compact=False):
    return bytes([limit | (read << 3) | (0x40 if compact else 0)])


def frame(op, payload=b"", fin=True, mask=b"\x37\xfa\x21\x3d", masked=True, rsv=0, length_form=None):
    if isinstance(payload, str):
        payload = payload.encode()
    out = bytearray([(0x80 if fin else 0) | rsv | op])
    n = len(payload)
    m = 0x80 if masked else 0
    form = length_form or (7 if n < 126 else 16 if n <= 0xFFFF else 64)
    if form == 7:
        out.append(m | n)
    elif form == 16:
        out += bytes([m | 126]) + n.to_bytes(2, "big")
    else:
        out += bytes([m | 127]) + n.to_bytes(8, "big")
    if masked:
        out += mask
        out += bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    else:
        out += payload
    return bytes(out)


def ws_corpus():
    h = ws_head(6, 3)  # 1,000,000 bytes, reads of 7
    write("ws_frames", "text-hello", h + frame(1, "hello"))
    write("ws_frames", "binary", h + frame(2, bytes(range(40))))
    write("ws_frames", "engineio-probe", h + frame(1, "2probe") + frame(1, "5"))
    write("ws_frames", "socketio-event", h + frame(1, '42["message",{"text":"hi"}]'))
    write("ws_frames", "fragmented-text-ping-between",
          h + frame(1, "frag", fin=False) + frame(9, "ping") + frame(0, "ment", fin=False) + frame(0, "ed"))
    write("ws_frames", "fragmented-binary", ws_head(6, 0) + frame(2, b"\x00\x01", fin=False) + frame(0, b"\x02"))
    write("ws_frames", "utf8-split-across-fragments", h + frame(1, "a\xe2\x82".encode("latin-1"), fin=False)
          + frame(0, "\xac!".encode("latin-1")))
    write("ws_frames", "utf8-multibyte", h + frame(1, "héllo wörld €𝄞"))
    write("ws_frames", "invalid-utf8", h + frame(1, b"\xc0\xaf"))
    write("ws_frames", "surrogate-utf8", h + frame(1, b"\xed\xa0\x80"))
    write("ws_frames", "len16", ws_head(6, 5) + frame(1, "x" * 300))
    write("ws_frames", "len64-noncanonical", h + frame(2, b"abc", length_form=64))
    write("ws_frames", "len64-huge", h + bytes([0x82, 0xff, 0, 0, 0x01, 0, 0, 0, 0, 0]) + b"\x00" * 4)
    write("ws_frames", "len64-top-bit", h + bytes([0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1]) + b"\x00" * 4)
    write("ws_frames", "too-big-for-limit-125", ws_head(2, 6) + frame(1, "y" * 126))
    write("ws_frames", "limit-0-empty-message", ws_head(0, 6) + frame(1, ""))
    write("ws_frames", "too-big-across-fragments", ws_head(3, 6) + frame(1, "z" * 100, fin=False) + frame(0, "z" * 30))
    write("ws_frames", "unmasked", h + frame(1, "hi", masked=False))
    write("ws_frames", "reserved-bits", h + frame(1, "hi", rsv=0x40))
    write("ws_frames", "unknown-opcode", h + frame(3, "hi"))
    write("ws_frames", "unknown-control-opcode", h + frame(0xb, ""))
    write("ws_frames", "continuation-first", h + frame(0, "hi"))
    write("ws_frames", "text-inside-fragmented", h + frame(1, "a", fin=False) + frame(1, "b"))
    write("ws_frames", "fragmented-ping", h + frame(9, "p", fin=False))
    write("ws_frames", "long-ping", h + frame(9, "p" * 126))
    write("ws_frames", "ping-125-pong", h + frame(9, "p" * 125) + frame(10, "q"))
    write("ws_frames", "close-1000-reason", h + frame(8, b"\x03\xe8bye"))
    write("ws_frames", "close-empty", h + frame(8, b""))
    write("ws_frames", "close-one-byte", h + frame(8, b"\x03"))
    write("ws_frames", "close-then-more", h + frame(8, b"\x03\xe9") + frame(1, "after"))
    write("ws_frames", "many-per-read-compacted",
          ws_head(6, 7, True) + b"".join(frame(1, "4m%d" % i) for i in range(20)))
    write("ws_frames", "byte-at-a-time", ws_head(6, 0, True) + frame(1, "slow") + frame(10, ""))
    write("ws_frames", "zero-mask", h + frame(1, "clear", mask=b"\x00\x00\x00\x00"))
    write("ws_frames", "truncated-header", h + b"\x81\xfe\x01")


# -- engineio_packet: the whole input as a text packet, a payload and base64 ---------------------

def eio_corpus():
    for name, data in [
        ("open", '0{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'),
        ("close", "1"), ("ping-probe", "2probe"), ("pong-probe", "3probe"), ("message", "4hello"),
        ("upgrade", "5"), ("noop", "6"), ("socketio-event", '42["chat",{"text":"x"}]'),
        ("payload-mixed", "4hello\x1ebAQIDBA==\x1e3"), ("payload-binary-only", "bAQIDBA=="),
        ("payload-binary-empty", "b"), ("payload-two-messages", '42["a"]\x1e42/messages,["b"]'),
        ("payload-empty-part", "4\x1e\x1e4"), ("payload-bad-type", "4ok\x1eabc"),
        ("payload-bad-base64", "bAQI*"), ("base64-one-pad", "bAQI="), ("base64-noncanonical", "bAB=="),
        ("base64-pad-inside", "bAA==AAAA"), ("base64-url-chars", "b-_-_"), ("empty", ""),
        ("type-7", "7"), ("base64-text", "aGVsbG8gd29ybGQ="), ("base64-all", "+/+/AAAA////"),
        ("binary-bytes", b"\x00\xff\x1e\x80b4"),
    ]:
        write("engineio_packet", name, data)


# -- socketio_packet: Engine.IO messages separated by 0x1e, 'b' + raw bytes = binary -------------

def sio_corpus():
    ph = lambda n: '{"_placeholder":true,"num":%d}' % n
    for name, pieces in [
        ("connect", ["0"]),
        ("connect-auth", ['0{"token":"abc"}']),
        ("connect-messages-auth", ['0/messages,{"token":"x"}']),
        ("connect-unknown-namespace", ["0/nope,"]),
        ("connect-pending", ["0/pending,", '2/pending,["ignored"]']),
        ("connect-refused", ['0{"refuse":true}', '2["after refusal"]']),
        ("connect-twice", ["0", "0"]),
        ("event-and-acks", ["0", '2["hello",1,"two",{"three":[3]}]', '21["with ack"]', '31["ack one"]',
                            "32[]", '3999["unknown ack"]']),
        ("event-numbers", ["0", '2["n",234e45,1e-7,-0.0,18446744073709551616,-9223372036854775809]']),
        ("event-number-too-big", ["0", '2["n",1.8e308,1]']),
        ("event-id-15-digits", ["0", '2123456789012345["x"]']),
        ("event-id-16-digits", ["0", '21234567890123456["x"]']),
        ("two-namespaces", ["0", "0/messages,", '2/messages,9["x",{"a":[1,2,{"b":null}]}]', '2["root"]',
                            "1/messages,", '2/messages,["after disconnect"]']),
        ("binary-event", ["0", '51-["upload",%s]' % ph(0), b"b\x00\x01\x02\xff"]),
        ("binary-event-two", ["0", '52-/messages,7["up",%s,%s]' % (ph(0), ph(1)), b"b\x01", b"b"]),
        ("binary-ack", ["0", '61-5[%s]' % ph(0), b"bX"]),
        ("binary-zero-attachments", ["0", '50-["nothing attached"]']),
        ("binary-then-text", ["0", '51-["a",%s]' % ph(0), '2["b"]']),
        ("binary-without-packet", ["0", b"b\x00"]),
        ("binary-too-many", ["0", '51001-["a"]']),
        ("binary-1000", ["0", '51000-["a"]', b"b1", b"b2"]),
        ("bad-attachments", ["5x-[\"a\"]"]),
        ("event-before-connect", ['2["early"]']),
        ("connect-error-from-client", ['4{"message":"x"}']),
        ("bye", ["0", '2["bye"]', '2["after bye"]']),
        ("close", ["0", '2["close"]', '2["after close"]']),
        ("reconnect", ["0", "1", "0", '2["again"]']),
        ("reserved-event", ["0", '2["connect"]']),
        ("event-numeric-name", ["0", "2[1,2]"]),
        ("trailing-garbage", ["0", '2["a"] x']),
        ("deep-payload", ["0", "2[" + "[" * 70 + "]" * 70 + "]"]),
        ("unknown-type", ["7"]),
        ("empty", [""]),
    ]:
        data = b"\x1e".join(p if isinstance(p, bytes) else p.encode() for p in pieces)
        write("socketio_packet", name, data)


# -- http_request: byte 0 = read size index; 0xff HI LO C = HI*256+LO copies of C ----------------
# reads: 1, 2, 3, 5, 8, 13, 64, 100, 512, 1000, 1460, 4096, 8192, 16384, 65536, 1 MiB

def rep(n, c):
    return b"\xff" + n.to_bytes(2, "big") + c


def sized(body):
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def http_corpus():
    host = b"Host: 127.0.0.1:3000\r\n"
    for name, read, req in [
        ("polling-handshake", 10, b"GET /socket.io/?EIO=4&transport=polling&t=Nx1 HTTP/1.1\r\n" + host
         + b"Accept: */*\r\nOrigin: http://localhost:5173\r\n\r\n"),
        ("polling-post", 6, b"POST /socket.io/?EIO=4&transport=polling&sid=abcdefghijklmno HTTP/1.1\r\n" + host
         + b"Content-Type: text/plain;charset=UTF-8\r\n" + sized(b"40\x1e42[\"hi\"]\x1ebAQIDBA==")),
        ("websocket-upgrade", 11, b"GET /socket.io/?EIO=4&transport=websocket&token=abc HTTP/1.1\r\n" + host
         + b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
         + b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"),
        ("chunked-trailers", 4, b"POST /socket.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\n" + host
         + b"Transfer-Encoding: chunked\r\n\r\n6;ext=1\r\n4hello\r\n3\r\n\x1e42\r\n0\r\nX-Checksum: abc\r\nX-More: 1\r\n\r\n"),
        ("chunked-hex-sizes", 8, b"POST /api/v1/publish HTTP/1.1\r\n" + host
         + b"Transfer-Encoding: chunked\r\n\r\nA\r\n{\"room\":\"r\r\nf\r\n\",\"event\":\"e\"}  \r\n0\r\n\r\n"),
        ("pipelined", 12, b"GET /health HTTP/1.1\r\n" + host + b"\r\nGET /metrics HTTP/1.1\r\n" + host
         + b"\r\nGET /api/v1/presence/alice HTTP/1.1\r\n" + host + b"Authorization: apikey k\r\n\r\n"),
        ("connection-close", 12, b"GET /health HTTP/1.1\r\n" + host + b"Connection: close\r\n\r\nGET /never HTTP/1.1\r\n\r\n"),
        ("http10", 12, b"GET /health HTTP/1.0\r\n\r\n"),
        ("options-preflight", 9, b"OPTIONS /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n" + host
         + b"Origin: http://localhost:5173\r\nAccess-Control-Request-Method: POST\r\n"
         + b"Access-Control-Request-Headers: content-type\r\n\r\n"),
        ("api-publish", 12, b"POST /api/v1/publish HTTP/1.1\r\n" + host + b"Authorization: apikey secret\r\n"
         + b"Content-Type: application/json\r\n" + sized(b'{"room":"chat:1","event":"message","data":{"text":"hi"}}')),
        ("percent-encoded-query", 12, b"GET /socket.io/?EIO=4&transport=polling&token=a%2Eb%2ec&userId=%E2%82%AC HTTP/1.1\r\n"
         + host + b"\r\n"),
        ("bad-percent", 12, b"GET /socket.io/?EIO=4&transport=polling&sid=%zz&token=%4 HTTP/1.1\r\n" + host + b"\r\n"),
        ("header-16k", 14, b"GET / HTTP/1.1\r\n" + host + b"X-Big: " + rep(16300, b"a") + b"\r\n\r\n"),
        ("header-over-limit", 14, b"GET / HTTP/1.1\r\n" + host + b"X-Big: " + rep(17000, b"a") + b"\r\n\r\n"),
        ("body-over-limit", 12, b"POST / HTTP/1.1\r\n" + host + b"Content-Length: 1000001\r\n\r\n" + rep(100, b"x")),
        ("body-at-limit-chunked", 14, b"POST / HTTP/1.1\r\n" + host + b"Transfer-Encoding: chunked\r\n\r\nF4240\r\n"
         + rep(60000, b"b")),
        ("chunk-over-limit", 12, b"POST / HTTP/1.1\r\n" + host + b"Transfer-Encoding: chunked\r\n\r\nF4241\r\nxx"),
        # The chunked-trailer crash (a trailer field of 65,534 bytes or more made
        # Beast throw std::length_error): the read buffer's cap ends it first.
        ("trailer-65534", 14, b"POST /socket.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\n" + host
         + b"Transfer-Encoding: chunked\r\n\r\n6\r\n4hello\r\n0\r\nX-Trailer: " + rep(65534, b"A") + b"\r\n\r\n"),
        ("trailer-65534-small-reads", 11, b"POST / HTTP/1.1\r\n" + host
         + b"Transfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-T: " + rep(65534, b"A") + b"\r\n\r\n"),
        ("trailer-long-name", 14, b"POST / HTTP/1.1\r\n" + host + b"Transfer-Encoding: chunked\r\n\r\n0\r\n"
         + rep(65534, b"N") + b": v\r\n\r\n"),
        ("obs-fold", 12, b"GET / HTTP/1.1\r\n" + host + b"X-Fold: a\r\n b\r\n\r\n"),
        ("bad-method", 12, b"G\x00T / HTTP/1.1\r\n\r\n"),
        ("content-length-twice", 12, b"POST / HTTP/1.1\r\n" + host + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\nabc"),
        ("cl-and-chunked", 12, b"POST / HTTP/1.1\r\n" + host + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ("partial-head", 0, b"GET /socket.io/?EIO=4&transport=pol"),
        ("literal-ff", 12, b"GET /" + rep(1, b"\xff") + b" HTTP/1.1\r\n\r\n"),
    ]:
        write("http_request", name, bytes([read]) + req)


# -- jwt: byte 0 % 3 = 0 token, 1 payload signed with the secret, 2 header \0 payload -------------

SECRET = b"fuzz-secret"
NOW = 1700000000


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def hs256(header, payload):
    head = b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + \
        b64url(json.dumps(payload, separators=(",", ":")).encode())
    return head + "." + b64url(hmac.new(SECRET, head.encode(), hashlib.sha256).digest())


def es256(payload, key):
    head = b64url(b'{"alg":"ES256","typ":"JWT"}') + "." + b64url(json.dumps(payload, separators=(",", ":")).encode())
    with tempfile.NamedTemporaryFile() as f:
        f.write(head.encode())
        f.flush()
        der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key, f.name], check=True,
                             capture_output=True).stdout
    # DER SEQUENCE { INTEGER r, INTEGER s } to the JWS form r || s (32 bytes each).
    def integer(buf, i):
        assert buf[i] == 2
        n = buf[i + 1]
        return int.from_bytes(buf[i + 2:i + 2 + n], "big"), i + 2 + n
    i = 2 if der[1] < 0x80 else 3
    r, i = integer(der, i)
    s, _ = integer(der, i)
    return head + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def jwt_corpus(es256_key):
    good = {"sub": "alice", "exp": NOW + 3600, "rooms": ["conversation:*", "chat:1"], "profiles": [7, "p8"],
            "email": "a@b.c", "role": "user"}
    strict = dict(good, iss="parley", aud=["other", "chat"])
    hs = {"alg": "HS256", "typ": "JWT"}
    tokens = [
        ("hs256-valid", hs256(hs, good)),
        ("hs256-valid-strict", hs256(hs, strict)),
        ("hs256-int-sub", hs256(hs, {"sub": 42, "exp": NOW + 60})),
        ("hs256-expired", hs256(hs, {"sub": "a", "exp": NOW - 1})),
        ("hs256-expired-within-leeway", hs256(hs, dict(strict, exp=NOW - 10))),
        ("hs256-not-yet", hs256(hs, {"sub": "a", "exp": NOW + 60, "nbf": NOW + 30})),
        ("hs256-no-sub", hs256(hs, {"exp": NOW + 60})),
        ("hs256-no-exp", hs256(hs, {"sub": "a"})),
        ("hs256-wrong-aud", hs256(hs, dict(good, iss="parley", aud="nope"))),
        ("alg-none", b64url(b'{"alg":"none"}') + "." + b64url(json.dumps(good).encode()) + "."),
        ("alg-rs256", b64url(b'{"alg":"RS256"}') + "." + b64url(json.dumps(good).encode()) + ".c2ln"),
        ("bad-signature", hs256(hs, good)[:-4] + "AAAA"),
        ("two-parts", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0"),
        ("four-parts", "a.b.c.d"),
        ("bad-base64", "e$.e.e"),
        ("empty", ""),
    ]
    for name, t in tokens:
        write("jwt", name, b"\x00" + t.encode())
    for name, payload in [
        ("payload-valid", good), ("payload-strict", strict), ("payload-expired", {"sub": "a", "exp": NOW}),
        ("payload-nbf", {"sub": "a", "exp": NOW + 9, "nbf": NOW + 1}), ("payload-aud-list", dict(strict, aud=[1, "chat"])),
        ("payload-sub-empty", {"sub": "", "exp": NOW + 9}), ("payload-exp-string", {"sub": "a", "exp": "never"}),
    ]:
        write("jwt", name, b"\x01" + json.dumps(payload, separators=(",", ":")).encode())
    write("jwt", "payload-not-object", b"\x01[1,2,3]")
    write("jwt", "payload-not-json", b"\x01{\"sub\":")
    for name, header, payload in [
        ("header-hs256", hs, good), ("header-none", {"alg": "none"}, good), ("header-es256", {"alg": "ES256"}, good),
        ("header-rs256", {"alg": "RS256"}, good), ("header-no-alg", {"typ": "JWT"}, good),
        ("header-alg-number", {"alg": 256}, good),
    ]:
        write("jwt", name, b"\x02" + json.dumps(header).encode() + b"\x00" + json.dumps(payload).encode())
    if es256_key:
        write("jwt", "es256-valid", b"\x00" + es256(good, es256_key).encode())
        write("jwt", "es256-valid-strict", b"\x00" + es256(strict, es256_key).encode())
        write("jwt", "es256-expired", b"\x00" + es256({"sub": "a", "exp": NOW - 5}, es256_key).encode())


# -- schema and json: payloads as clients and backends send them --------------------------------

def schema_corpus():
    for name, doc in [
        ("conversation-join", {"conversationId": "c1"}), ("conversation-join-int", {"conversationId": 12, "extra": True}),
        ("conversation-join-empty", {"conversationId": ""}), ("conversation-join-bool", {"conversationId": True}),
        ("session-leave", {"sessionId": "s"}), ("join-room", {"room": "dialog:1-2"}), ("join-dialog", {"dialogId": 5}),
        ("join-neither", {"other": 1}), ("typing", {"chatId": "1", "isTyping": False}),
        ("send-message", {"chatId": 1, "message": "hi", "attachment": {"_placeholder": True, "num": 0}}),
        ("send-message-long-chat", {"chatId": "c" * 300, "message": "x"}),
        ("api-publish", {"room": "r", "event": "e", "data": [1], "except": "sid", "ack": True, "timeoutMs": 5000}),
        ("api-publish-extra", {"room": "r", "event": "e", "nope": 1}),
        ("api-publish-timeout-0", {"room": "r", "event": "e", "timeoutMs": 0}),
        ("api-broadcast", {"rooms": ["a", "b"], "event": "e", "data": None}),
        ("api-broadcast-empty", {"rooms": [], "event": "e"}),
        ("api-rtm-profile", {"cookies": "a=b", "password": "p", "expiresAt": "2026-12-31T00:00:00Z"}),
        ("event-array", ["conversation:join", {"conversationId": "c1"}]),
        ("event-array-unknown", ["nope", {}]), ("event-array-no-payload", ["typing:start"]),
        ("not-object", [1, "two", None]), ("string", "text"), ("number", 1.5),
    ]:
        write("schema", name, json.dumps(doc))
    write("schema", "numbers", '{"chatId":234e45,"message":"x","n":[0e232,1e-400,-0,18446744073709551616]}')
    write("schema", "number-too-big", '{"chatId":1,"message":"x","attachment":1.8e308}')


def json_corpus():
    # byte 0 & 3 chooses the depth limit: 1, 2, 8, 64
    for name, limit, text in [
        ("object", 3, '{"a":[1,2.5,-3e-2,true,false,null,"s\\u00e9\\n"],"b":{}}'),
        ("numbers", 3, "[0,-0,0.0,-0.0,1e-7,5e-324,1.7976931348623157e308,234e45,123456789012345678901234567890]"),
        ("numbers-zero-exponent", 3, "[0e232,0.0e99,-0E-28,0.000e-400]"),
        ("number-too-big", 3, "[1.8e308,1]"), ("number-exponent-too-big", 3, "1e309"),
        ("integers", 3, "[4294967295,4294967296,-2147483648,-2147483649,18446744073709551615,18446744073709551616,"
                        "-9223372036854775808,-9223372036854775809]"),
        ("depth-1", 0, "[1]"), ("depth-2-over-1", 0, "[[1]]"), ("depth-8", 2, "[" * 8 + "]" * 8),
        ("depth-65", 3, "[" * 65 + "]" * 65), ("brackets-in-strings", 0, '["[[[[{{{{","\\"]]"]'),
        ("unicode", 3, '"\\ud83d\\ude00 \\u0000 \U0001F600 \u20ac"'), ("lone-surrogate", 3, '"\\ud800"'),
        ("duplicate-keys", 3, '{"a":1,"a":2}'), ("trailing-comma", 3, "[1,]"), ("garbage-after", 3, "{} x"),
        ("whitespace", 3, " \t\r\n[ 1 , 2 ]\n"), ("bom", 3, "\ufeff{}"), ("empty", 3, ""),
    ]:
        write("json", name, bytes([limit]) + text.encode())


def main():
    key = None
    if "--es256-key" in sys.argv:
        key = sys.argv[sys.argv.index("--es256-key") + 1]
    ws_corpus()
    eio_corpus()
    sio_corpus()
    http_corpus()
    jwt_corpus(key)
    schema_corpus()
    json_corpus()


if __name__ == "__main__":
    main()
