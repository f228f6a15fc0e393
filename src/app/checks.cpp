// The value checks the settings table's fields, the list parsers and the JSON loader share, and the message helpers
// (in_quotes, report; printable is common/printable.hpp's). See settings.hpp for the message scheme.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "app/settings.hpp"
#include "common/assert.hpp"
#include "tunnel/handshake.hpp"

namespace ringtun::app::detail {
namespace {

bool is_name_char(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

bool is_unspecified(const ring::net::Address& address) noexcept {
  if (address.family() == AF_INET) {
    return reinterpret_cast<const sockaddr_in*>(&address.storage)->sin_addr.s_addr == htonl(INADDR_ANY);
  }
  if (address.family() == AF_INET6) {
    return IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6*>(&address.storage)->sin6_addr);
  }
  return false;
}

enum class AddressUse { kListen, kConnect };

// Parses an address and words the failure as "<where>: "<text>" <problem>".
Status check_address(std::string_view where, std::string_view text, AddressUse use, const char* example,
                     ring::net::Address* out, std::string* error_text) {
  std::string prefix = std::string(where) + ": " + in_quotes(text);
  auto parsed = ring::net::parse_address(text);
  if (!parsed) {
    std::string_view why = parsed.error().context();
    if (why.substr(0, 9) == "address: ") why.remove_prefix(9);
    // A host that is not numeric but has letters is a name: say plainly that we do not resolve names.
    std::size_t colon = text.rfind(':');
    std::string_view host = colon == std::string_view::npos ? std::string_view() : text.substr(0, colon);
    bool has_letter = false;
    for (char c : host) has_letter |= (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    if (has_letter && host.find(':') == std::string_view::npos && host.front() != '[') {
      return report(error_text, Errc::kParse,
                    prefix + " is a host name; names are not resolved: use a numeric address (e.g. " + example +
                        ") or localhost");
    }
    return report(error_text, Errc::kParse,
                  prefix + " is not an address: " + std::string(why) + " (e.g. " + example + ")");
  }
  if (use == AddressUse::kConnect) {
    if (is_unspecified(*parsed)) {
      return report(error_text, Errc::kInvalidArgument, prefix + " has no host to connect to (e.g. " + example + ")");
    }
    if (parsed->port() == 0) {
      return report(error_text, Errc::kInvalidArgument, prefix + " needs a port 1..65535 (e.g. " + example + ")");
    }
  }
  *out = *parsed;
  return {};
}

}  // namespace

bool parse_decimal(std::string_view text, std::uint64_t* out) noexcept {
  if (text.empty()) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

bool parse_port(std::string_view text, std::uint16_t* out) noexcept {
  std::uint64_t value = 0;
  if (!parse_decimal(text, &value) || value < 1 || value > 65535) return false;
  *out = static_cast<std::uint16_t>(value);
  return true;
}

bool valid_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  for (char c : name) {
    if (!is_name_char(c)) return false;
  }
  return true;
}

Status check_integer_text(const Setting& setting, std::string_view text, std::uint64_t* out, std::string* error_text) {
  bool is_number = parse_decimal(text, out);
  if (!is_number || *out < setting.min || *out > setting.max) {
    return report(error_text, is_number ? Errc::kInvalidArgument : Errc::kParse,
                  std::string(setting.flag) + ": " + in_quotes(text) + " is not a number in " + range_of(setting));
  }
  return {};
}

Status check_path(std::string_view where, std::string_view text, std::string* out, std::string* error_text) {
  if (text.empty() || text.size() > 4096 || text.find('\0') != std::string_view::npos) {
    return report(error_text, Errc::kInvalidArgument,
                  std::string(where) + ": " + in_quotes(text) + " is not a usable path");
  }
  *out = std::string(text);
  return {};
}

std::string in_quotes(std::string_view text) {
  return "\"" + printable(text) + "\"";
}

Unexpected report(std::string* error_text, Errc code, std::string message) {
  if (error_text != nullptr) *error_text = std::move(message);
  return fail(code, "config");
}

Status check_port_range(std::string_view where, std::string_view text, TokenRule* rule, std::string* error_text) {
  std::size_t dash = text.find('-');
  std::uint16_t low = 0;
  std::uint16_t high = 0;
  bool ok = dash == std::string_view::npos
                ? parse_port(text, &low) && (high = low, true)
                : parse_port(text.substr(0, dash), &low) && parse_port(text.substr(dash + 1), &high);
  if (!ok) {
    return report(
        error_text, Errc::kParse,
        std::string(where) + ": " + in_quotes(text) + " is not a port range (expected LO-HI or PORT, ports 1..65535)");
  }
  if (low > high) {
    return report(error_text, Errc::kInvalidArgument,
                  std::string(where) + ": " + in_quotes(text) + " is not a valid range: low port " +
                      std::to_string(low) + " is above high port " + std::to_string(high));
  }
  rule->port_low = low;
  rule->port_high = high;
  return {};
}

Status check_host_pattern(std::string_view where, std::string_view text, std::string* out, std::string* error_text) {
  std::string folded;
  auto normalized = route::normalize_host(text, true, &folded);
  if (!normalized) {
    return report(error_text, Errc::kInvalidArgument,
                  std::string(where) + ": " + in_quotes(text) + " is not a host name or *.suffix (" +
                      std::string(normalized.error().context()) + ")");
  }
  *out = std::move(folded);
  return {};
}

void add_host_pattern(TokenRule* rule, std::string pattern) {
  if (std::find(rule->hosts.begin(), rule->hosts.end(), pattern) == rule->hosts.end()) {
    rule->hosts.push_back(std::move(pattern));
  }
}

Status check_host_patterns(std::string_view where, std::string_view text, TokenRule* rule, std::string* error_text) {
  const std::string_view whole = text;
  std::vector<std::string> patterns;
  for (;;) {
    const std::size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    // "a.example.com, b.example.com" as a shell user may write it.
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty()) {
      return report(error_text, Errc::kParse,
                    std::string(where) + ": " + in_quotes(whole) +
                        " has an empty pattern (expected PATTERN[,PATTERN...], e.g. app.example.com,*.example.com)");
    }
    std::string pattern;
    RINGTUN_TRY(check_host_pattern(where, item, &pattern, error_text));
    patterns.push_back(std::move(pattern));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  for (std::string& pattern : patterns) add_host_pattern(rule, std::move(pattern));
  return {};
}

namespace {

struct AccessLimit {
  std::string_view key;
  std::uint32_t route::AccessRules::*member;
  std::uint32_t max;
  std::string_view what;
};
constexpr AccessLimit kAccessLimits[] = {
    {"conn_rate", &route::AccessRules::conn_rate, 1'000'000, "new connections per second"},
    {"max_conns", &route::AccessRules::max_conns, 10'000'000, "concurrent connections"},
    {"max_conns_per_client", &route::AccessRules::max_conns_per_client, 1'000'000, "concurrent connections"},
};

}  // namespace

std::string access_key_of_flag(std::string_view flag) {
  std::string key(flag.substr(flag.compare(0, 2, "--") == 0 ? 2 : 0));
  std::replace(key.begin(), key.end(), '-', '_');
  return key;
}

Status apply_access_rule(std::string_view key, std::string_view where, std::string_view text,
                         route::AccessRules* rules, std::string* error_text) {
  if (key == "allow_from" || key == "deny_from") {
    std::string problem;
    auto list = route::parse_cidr_list(text, &problem);
    if (!list) return report(error_text, list.error().code(), std::string(where) + ": " + problem);
    (key == "allow_from" ? rules->allow : rules->deny) = std::move(*list);
    rules->compile();
    return {};
  }
  for (const AccessLimit& limit : kAccessLimits) {
    if (key != limit.key) continue;
    std::uint64_t value = 0;
    if (!parse_decimal(text, &value) || value < 1 || value > limit.max) {
      return report(error_text, Errc::kInvalidArgument,
                    std::string(where) + ": " + in_quotes(text) + " is not a number of " + std::string(limit.what) +
                        " (1.." + std::to_string(limit.max) + ")");
    }
    rules->*limit.member = static_cast<std::uint32_t>(value);
    return {};
  }
  RINGTUN_CHECK(false, "apply_access_rule: not an access key");
  return {};
}

bool parse_service_kind(std::string_view text, route::Kind* out) noexcept {
  for (route::Kind kind : {route::Kind::kTcp, route::Kind::kHttp, route::Kind::kTls}) {
    if (text == route::kind_name(kind)) {
      *out = kind;
      return true;
    }
  }
  return false;
}

Status default_service_name(std::string_view where, ServiceConfig* service, std::string_view how,
                            std::string* error_text) {
  std::string name = std::string(route::kind_name(service->kind)) + "-";
  if (service->kind == route::Kind::kTcp) {
    name += std::to_string(service->public_port);
  } else if (service->host.size() > 2 && service->host.compare(0, 2, "*.") == 0) {
    name += "wildcard." + service->host.substr(2);  // '*' is not a name character
  } else {
    name += service->host;
  }
  if (name.size() > route::kMaxServiceNameLength) {
    return report(error_text, Errc::kInvalidArgument,
                  std::string(where) + ": the default name " + in_quotes(name) + " is longer than " +
                      std::to_string(route::kMaxServiceNameLength) + " characters; give the service " +
                      std::string(how));
  }
  service->name = std::move(name);
  return {};
}

std::string public_side(const ServiceConfig& service) {
  return route::RouteKey{service.kind, service.kind == route::Kind::kTcp ? service.public_port : std::uint16_t{0},
                         service.host}
      .describe();
}

bool addresses_overlap(const ring::net::Address& a, const ring::net::Address& b) noexcept {
  if (a.port() == 0 || a.port() != b.port()) return false;  // port 0: the kernel picks a free one for each
  if (a.family() == b.family()) {
    if (a.family() == AF_INET) {
      const auto& x = reinterpret_cast<const sockaddr_in*>(&a.storage)->sin_addr;
      const auto& y = reinterpret_cast<const sockaddr_in*>(&b.storage)->sin_addr;
      if (x.s_addr == y.s_addr) return true;
    } else if (a.family() == AF_INET6) {
      const auto& x = reinterpret_cast<const sockaddr_in6*>(&a.storage)->sin6_addr;
      const auto& y = reinterpret_cast<const sockaddr_in6*>(&b.storage)->sin6_addr;
      if (std::memcmp(&x, &y, sizeof x) == 0) return true;
    }
  }
  // The unspecified address covers every host of its family; [::] covers IPv4 too (dual-stack, Linux's default).
  auto covers = [](const ring::net::Address& wide, const ring::net::Address& other) {
    return is_unspecified(wide) && (wide.family() == other.family() || wide.family() == AF_INET6);
  };
  return covers(a, b) || covers(b, a);
}

Status check_service_name(std::string_view where, std::string_view name, std::string* error_text) {
  if (!valid_name(name)) {
    return report(error_text, Errc::kInvalidArgument,
                  std::string(where) + ": " + in_quotes(name) + " is not a valid name (1..64 of A-Z a-z 0-9 . _ -)");
  }
  return {};
}

// Secrets are never echoed: messages name the flag or key only.
Status check_token(std::string_view where, std::string_view secret, std::string* error_text) {
  if (secret.empty()) return report(error_text, Errc::kInvalidArgument, std::string(where) + ": empty");
  if (secret.size() > tunnel::kMaxTokenLength) {  // the handshake carries at most this much
    return report(error_text, Errc::kInvalidArgument,
                  std::string(where) + ": longer than " + std::to_string(tunnel::kMaxTokenLength) + " characters");
  }
  for (char c : secret) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return report(error_text, Errc::kInvalidArgument,
                    std::string(where) + ": contains a control character (a stray newline?)");
    }
  }
  return {};
}

Status check_listen_address(std::string_view where, std::string_view text, ring::net::Address* out,
                            std::string* error_text) {
  return check_address(where, text, AddressUse::kListen, "0.0.0.0:7000", out, error_text);
}

Status check_local_address(std::string_view where, std::string_view text, ring::net::Address* out,
                           std::string* error_text) {
  return check_address(where, text, AddressUse::kConnect, "127.0.0.1:80", out, error_text);
}

namespace {

// RFC 1123 host name: labels of 1..63 letters, digits and '-' (not first or last), joined by dots, 253 at most.
Status check_host_name(const std::string& prefix, std::string_view host, std::string* error_text) {
  for (char c : host) {
    bool allowed = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    if (static_cast<unsigned char>(c) >= 0x80) {
      return report(error_text, Errc::kParse,
                    prefix + ": the host name is not ASCII (write an internationalized name in its xn-- form)");
    }
    if (!allowed) {
      return report(error_text, Errc::kParse,
                    prefix + ": the host name has a character that is not allowed: " + in_quotes(std::string(1, c)) +
                        " (a host name has letters, digits, '-' and dots)");
    }
  }
  if (host.size() > kMaxHostNameLength) {
    return report(error_text, Errc::kInvalidArgument,
                  prefix + ": the host name is longer than " + std::to_string(kMaxHostNameLength) + " characters");
  }
  std::string_view rest = host;
  for (;;) {
    std::size_t dot = rest.find('.');
    std::string_view label = rest.substr(0, dot);
    if (label.empty()) {
      return report(error_text, Errc::kParse,
                    prefix + ": the host name has an empty label (a dot at the start or end, or two in a row)");
    }
    if (label.size() > kMaxHostLabelLength) {
      return report(error_text, Errc::kInvalidArgument,
                    prefix + ": the host name's label " + in_quotes(label) + " is longer than " +
                        std::to_string(kMaxHostLabelLength) + " characters");
    }
    if (label.front() == '-' || label.back() == '-') {
      return report(error_text, Errc::kParse,
                    prefix + ": the host name's label " + in_quotes(label) + " starts or ends with '-'");
    }
    if (dot == std::string_view::npos) return {};
    rest.remove_prefix(dot + 1);
  }
}

}  // namespace

Status check_gateway_address(std::string_view where, std::string_view text, std::string* host_out,
                             std::uint16_t* port_out, std::string* error_text) {
  constexpr std::string_view kExample = " (e.g. 203.0.113.7:7000, gw.example.com:7000 or [2001:db8::7]:7000)";
  const std::string prefix = std::string(where) + ": " + in_quotes(text);
  auto no_host = [&] {
    return report(error_text, Errc::kInvalidArgument,
                  prefix + " has no host to connect to (e.g. 203.0.113.7:7000 or gw.example.com:7000)");
  };
  auto no_port = [&] {
    return report(error_text, Errc::kParse, prefix + " has no port: expected HOST:PORT" + std::string(kExample));
  };
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos) {
      return report(error_text, Errc::kParse, prefix + " is not an address: '[' without ']' (expected [IPv6]:PORT)");
    }
    host = text.substr(1, close - 1);
    std::string_view after = text.substr(close + 1);
    if (after.empty()) return no_port();
    if (after.front() != ':') {
      return report(error_text, Errc::kParse,
                    prefix + " is not an address: expected ':' and a port after ']' (e.g. [2001:db8::7]:7000)");
    }
    port = after.substr(1);
    in6_addr v6{};
    if (::inet_pton(AF_INET6, std::string(host).c_str(), &v6) != 1) {
      return report(error_text, Errc::kParse,
                    prefix + ": " + in_quotes(host) + " is not an IPv6 address (brackets are for IPv6 addresses only)");
    }
    if (IN6_IS_ADDR_UNSPECIFIED(&v6)) return no_host();
  } else {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      std::uint64_t number = 0;
      return parse_decimal(text, &number) ? no_host() : no_port();  // "7000" is a port without a host
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return report(error_text, Errc::kParse,
                    prefix + " is not an address: IPv6 needs [brackets] (e.g. [2001:db8::7]:7000)");
    }
    if (host.empty() || host == "*") return no_host();
    if (host.find_first_not_of("0123456789.") == std::string_view::npos) {
      // Digits and dots only: an IPv4 address, or a mistake; never a name (getaddrinfo would read "10.1" as one).
      in_addr v4{};
      if (::inet_pton(AF_INET, std::string(host).c_str(), &v4) != 1) {
        return report(error_text, Errc::kParse, prefix + ": " + in_quotes(host) + " is not an IPv4 address");
      }
      if (v4.s_addr == htonl(INADDR_ANY)) return no_host();
    } else {
      RINGTUN_TRY(check_host_name(prefix, host, error_text));
    }
  }
  if (port.empty()) return no_port();
  std::uint64_t number = 0;
  const bool digits = parse_decimal(port, &number);
  if (!digits || number < 1 || number > 65535) {
    return report(error_text, digits ? Errc::kInvalidArgument : Errc::kParse,
                  prefix + " needs a port 1..65535, not " + in_quotes(port) + std::string(kExample));
  }
  *host_out = std::string(host);
  *port_out = static_cast<std::uint16_t>(number);
  return {};
}

std::size_t SeenSet::add(std::string_view key, std::size_t index) {
  auto [it, inserted] = first_.try_emplace(std::string(key), index);
  return inserted ? kNone : it->second;
}

}  // namespace ringtun::app::detail
