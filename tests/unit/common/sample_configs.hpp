// Sample configuration files of both programs, shared by the config loader's tests (tests/unit/app) and the JSON
// error locator's mutation test (tests/unit/common): the shapes real files have.
#pragma once

namespace ringtun::samples {

inline constexpr char kGatewayJson[] = R"({
  "listen": "0.0.0.0:7000",
  "tokens": [{"token": "s3cret", "allow_ports": "10000-20000"}, {"token": "other"}],
  "max_streams": 512,
  "threads": 2,
  "log_level": "debug",
  "heartbeat_ms": 1000,
  "dead_peer_ms": 3000,
  "drain_timeout_ms": 0
})";

inline constexpr char kAgentJson[] = R"({
  "gateway": "127.0.0.1:7000",
  "token": "s3cret",
  "agent_id": "edge-1",
  "gateway_fingerprint": "sha256:00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff",
  "services": [
    {"name": "web", "type": "tcp", "public_port": 8080, "local": "127.0.0.1:80"},
    {"public_port": 2222, "local": "[::1]:22"}
  ],
  "reconnect_max_ms": 1000,
  "connect_timeout_ms": 200,
  "retry_refused_ms": 5000,
  "threads": 1,
  "log_level": "error",
  "heartbeat_ms": 100,
  "dead_peer_ms": 1000,
  "drain_timeout_ms": 5
})";

}  // namespace ringtun::samples
