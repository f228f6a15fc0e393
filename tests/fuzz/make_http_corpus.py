#!/usr/bin/env python3
"""Writes the seed corpora for fuzz_http_request, fuzz_http_response and fuzz_chunked into tests/fuzz/corpus/
(run from anywhere; output is committed).

Every seed starts with one byte the target reads first: the split seed (requests, chunked) or flags (responses:
bit 0 the request was HEAD, bit 1 the gateway closes after the response)."""
import os

HERE = os.path.dirname(os.path.abspath(__file__))

BROWSER = (
    b"GET /assets/app.js?v=42 HTTP/1.1\r\n"
    b"Host: app.example.com\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
    b"Accept: */*\r\n"
    b"Accept-Language: en-US,en;q=0.5\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\n"
    b"Referer: https://app.example.com/\r\n"
    b"Connection: keep-alive\r\n"
    b"Cookie: session=abc123; theme=dark\r\n"
    b"Sec-Fetch-Dest: script\r\n"
    b"\r\n"
)

REQUESTS = {
    "browser_get": bytes([7]) + BROWSER,
    "post_length": bytes([1]) + b"POST /api HTTP/1.1\r\nHost: a.example:8080\r\nContent-Length: 5\r\n"
    b"X-Forwarded-For: 203.0.113.9\r\n\r\nhello",
    "post_chunked": bytes([2]) + b"\r\nPOST /up HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: gzip, chunked\r\n"
    b"Expect: 100-continue\r\n\r\n",
    "websocket": bytes([3]) + b"GET /chat HTTP/1.1\r\nHost: [2001:db8::1]:443\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade, X-Drop\r\nX-Drop: 1\r\nSec-WebSocket-Version: 13\r\n\r\n",
    "absolute_form_10": bytes([4]) + b"GET http://b.example:81/x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "absolute_form_11": bytes([5]) + b"HEAD https://B.example/ HTTP/1.1\r\nHost: b.example:443\r\n\r\n",
    "smuggle_cl_te": bytes([6]) + b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
    "smuggle_bare_lf": bytes([8]) + b"GET / HTTP/1.1\nHost: a\n\n",
    "connect": bytes([9]) + b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
    "options_star": bytes([10]) + b"OPTIONS * HTTP/1.1\r\nHost: a\r\nContent-Length: 0, 0\r\n\r\n",
}

RESPONSES = {
    "ok_length": bytes([0]) + b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 12\r\n\r\nhello world\n",
    "ok_chunked": bytes([2]) + b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Expires\r\n"
    b"Connection: keep-alive, X-Internal\r\nX-Internal: 1\r\n\r\n",
    "until_close_10": bytes([0]) + b"HTTP/1.0 200 OK\r\nServer: old\r\n\r\nbody",
    "head_response": bytes([1]) + b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
    "not_modified": bytes([0]) + b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n",
    "continue_then": bytes([0]) + b"HTTP/1.1 100 Continue\r\n\r\n",
    "switching": bytes([0]) + b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    "no_content_close": bytes([2]) + b"HTTP/1.1 204\r\nConnection: close\r\n\r\n",
    "gzip_te": bytes([0]) + b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\n",
}

CHUNKED = {
    "simple": bytes([1]) + b"5\r\nhello\r\n0\r\n\r\n",
    "extensions_trailers": bytes([2]) + b"A;name=value;q=\"a b\"\r\n0123456789\r\n1 ;x\r\n!\r\n"
    b"000;last\r\nExpires: never\r\nX-Sum:\tabc\r\n\r\nGET / HTTP/1.1\r\n",
    "hex_sizes": bytes([3]) + b"1F\r\n" + b"x" * 31 + b"\r\n00a\r\n0123456789\r\n0\r\n\r\n",
    "bare_lf": bytes([4]) + b"5\nhello\n0\n\n",
    "truncated": bytes([5]) + b"10\r\nabc",
    "big_size": bytes([6]) + b"ffffffffffffffff\r\nabc",
}


def write(name, seeds):
    d = os.path.join(HERE, "corpus", name)
    os.makedirs(d, exist_ok=True)
    for seed_name, data in seeds.items():
        with open(os.path.join(d, seed_name), "wb") as f:
            f.write(data)


write("http_request", REQUESTS)
write("http_response", RESPONSES)
write("chunked", CHUNKED)
