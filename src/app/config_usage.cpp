// The --help texts of both programs.
#include <string>

#include "app/config.hpp"

namespace ringtun::app {

namespace {

// One help entry per flag: descriptions line up in one column; a flag too wide for its column, and each '\n' in
// the description, continue on a new line at that column.
void add_line(std::string* out, std::string_view flag, std::string_view help) {
  constexpr std::size_t kColumn = 28;
  const std::string indent(kColumn, ' ');
  std::string line = "  " + std::string(flag);
  if (line.size() < kColumn) {
    line.resize(kColumn, ' ');
  } else {
    line += "\n" + indent;
  }
  for (char c : help) {
    line += c;
    if (c == '\n') line += indent;
  }
  *out += line + "\n";
}

void add_common_lines(std::string* out) {
  const CommonConfig defaults;
  *out += "Common:\n";
  add_line(out, "--config FILE", "JSON file with these settings (keys: flag names, - as _); flags override it");
  add_line(out, "--threads N",
           "worker threads, one per core, 1..1024 (default " + std::to_string(defaults.threads) +
               ": all CPUs this process may use)");
  add_line(out, "--log-level LEVEL", "trace|debug|info|warn|error|off (default info)");
  add_line(out, "--heartbeat-ms N",
           "PING interval on an idle tunnel connection (default " + std::to_string(defaults.heartbeat_ms) + ")");
  add_line(out, "--dead-peer-ms N",
           "no bytes for this long: the peer is gone; above --heartbeat-ms (default " +
               std::to_string(defaults.dead_peer_ms) + ")");
  add_line(out, "--drain-timeout-ms N",
           "on SIGTERM, how long open streams may finish (default " + std::to_string(defaults.drain_timeout_ms) + ")");
  add_line(out, "--insecure-plaintext",
           "no TLS: for benchmarks and trusted links only; both sides must agree (logged as a warning)");
  add_line(out, "-h, --help", "print this help and exit");
  add_line(out, "-V, --version", "print the version and exit");
  *out +=
      "Flags take \"--flag value\" or \"--flag=value\". Durations are in milliseconds, 1..86400000\n"
      "(--drain-timeout-ms may be 0). Problems are reported on one line; the exit status is then 2.\n";
}

std::string make_gateway_usage() {
  const GatewayConfig defaults;
  std::string out = "ringtun-gateway " RINGTUN_VERSION
                    ": the public side of a ringtun reverse tunnel. Agents connect to\n"
                    "--listen, present a token, and the gateway opens the public ports their services ask for.\n\n"
                    "Usage: ringtun-gateway --listen ADDR:PORT --token SECRET [--allow-ports LO-HI] [options]\n"
                    "       ringtun-gateway --config FILE [options]\n\n"
                    "Tunnel:\n";
  add_line(&out, "--listen ADDR:PORT", "address agents connect to (required), e.g. 0.0.0.0:7000 or [::]:7000");
  add_line(&out, "--token SECRET", "a key an agent may present; repeat for several keys (at least one)");
  add_line(&out, "--allow-ports LO-HI",
           "public ports the --token just before may claim: LO-HI or PORT (default 1-65535)");
  add_line(&out, "--max-streams N",
           "concurrent streams per agent connection, 1..1048576 (default " +
               std::to_string(defaults.max_streams_per_connection) + ")");
  out += "\nTLS (on by default):\n";
  add_line(&out, "--cert FILE", "PEM certificate (chain) agents verify; with --key");
  add_line(&out, "--key FILE", "PEM private key of --cert");
  add_line(&out, "--state-dir DIR",
           "without --cert: where a self-signed pair is generated on the first run and kept\n"
           "(default $STATE_DIRECTORY, /var/lib/ringtun as root, else ~/.local/state/ringtun);\n"
           "its fingerprint is logged for agents' --gateway-fingerprint");
  add_line(&out, "--client-ca FILE", "require agents to present a client certificate signed by these CAs (mTLS)");
  out += "  SIGHUP reads --cert/--key/--client-ca again (renewal): new tunnel connections get them,\n"
         "  open ones are not touched; on an error the previous certificate stays.\n";
  add_common_lines(&out);
  out +=
      "\nExample:\n"
      "  ringtun-gateway --listen 0.0.0.0:7000 --token s3cret --allow-ports 10000-20000 --token other\n"
      "  (logs: TLS certificate ... fingerprint sha256:...; give that to the agents)\n\n"
      "The same as a --config file (the first --token on the command line replaces \"tokens\"):\n"
      "  {\"listen\": \"0.0.0.0:7000\",\n"
      "   \"tokens\": [{\"token\": \"s3cret\", \"allow_ports\": \"10000-20000\"}, {\"token\": \"other\"}],\n"
      "   \"max_streams\": 1024, \"threads\": 0, \"log_level\": \"info\", \"heartbeat_ms\": 5000}\n";
  return out;
}

std::string make_agent_usage() {
  const AgentConfig defaults;
  std::string out =
      "ringtun-agent " RINGTUN_VERSION
      ": the private side of a ringtun reverse tunnel. It connects out to a\n"
      "gateway and serves the gateway's public ports from local services.\n\n"
      "Usage: ringtun-agent --gateway HOST:PORT --token SECRET --expose tcp:PUBLIC_PORT=LOCAL_HOST:LOCAL_PORT\n"
      "                     [--expose ...] [options]\n"
      "       ringtun-agent --config FILE [options]\n\n"
      "Tunnel:\n";
  add_line(&out, "--gateway HOST:PORT", "the gateway's tunnel address (required); numeric or localhost, not a name");
  add_line(&out, "--token SECRET", "the key the gateway expects (required)");
  add_line(&out, "--expose tcp:[NAME@]PORT=HOST:PORT",
           "serve public PORT on the gateway from local HOST:PORT (numeric or localhost);\n"
           "repeat for more services (at least one). NAME: 1..64 of A-Z a-z 0-9 . _ -\n"
           "(default tcp-PORT)");
  add_line(&out, "--agent-id ID", "how the gateway names this agent (default: the host name)");
  add_line(&out, "--reconnect-max-ms N",
           "cap of the reconnect back-off (default " + std::to_string(defaults.reconnect_max_ms) + ")");
  add_line(
      &out, "--connect-timeout-ms N",
      "give up a connection attempt after this long (default " + std::to_string(defaults.connect_timeout_ms) + ")");
  out += "\nTLS (on by default; one of --gateway-fingerprint / --ca is required):\n";
  add_line(&out, "--gateway-fingerprint FP", "pin the gateway's certificate: sha256:<64 hex> as the gateway logs it");
  add_line(&out, "--ca FILE|system",
           "verify the gateway's certificate chain, dates and name against these CAs\n"
           "(system: the OS trust store, for a publicly signed gateway certificate)");
  add_line(&out, "--server-name NAME", "name sent (SNI) and checked with --ca (default: the host of --gateway)");
  add_line(&out, "--cert FILE", "client certificate (PEM) for gateways that require one; with --key");
  add_line(&out, "--key FILE", "PEM private key of --cert");
  add_common_lines(&out);
  out +=
      "\nExample:\n"
      "  ringtun-agent --gateway 203.0.113.7:7000 --token s3cret --gateway-fingerprint sha256:... \\\n"
      "                --expose tcp:web@8080=127.0.0.1:80\n\n"
      "The same as a --config file (the first --expose on the command line replaces \"services\"):\n"
      "  {\"gateway\": \"203.0.113.7:7000\", \"token\": \"s3cret\", \"agent_id\": \"edge-1\",\n"
      "   \"services\": [{\"name\": \"web\", \"type\": \"tcp\", \"public_port\": 8080, \"local\": "
      "\"127.0.0.1:80\"}]}\n";
  return out;
}

}  // namespace

std::string_view gateway_usage() {
  static const std::string text = make_gateway_usage();
  return text;
}

std::string_view agent_usage() {
  static const std::string text = make_agent_usage();
  return text;
}

}  // namespace ringtun::app
