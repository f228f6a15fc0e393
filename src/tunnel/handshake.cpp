// The tunnel's control messages: encoding (plain string building) and parsing (simdjson DOM, every field bounded).
#include "tunnel/handshake.hpp"

#include <simdjson.h>
#include <sys/random.h>

#include "common/json_writer.hpp"

namespace ringtun::tunnel {

namespace {

struct CodeName {
  RefusalCode code;
  const char* name;
};
constexpr CodeName kCodeNames[] = {
    {RefusalCode::kBadRequest, "bad_request"},
    {RefusalCode::kVersion, "version"},
    {RefusalCode::kBadToken, "bad_token"},
    {RefusalCode::kIdInUse, "id_in_use"},
    {RefusalCode::kIndexOutOfRange, "index_out_of_range"},
    {RefusalCode::kShuttingDown, "shutting_down"},
    {RefusalCode::kBusy, "busy"},
    {RefusalCode::kPortNotAllowed, "port_not_allowed"},
    {RefusalCode::kPortReserved, "port_reserved"},
    {RefusalCode::kPortTaken, "port_taken"},
    {RefusalCode::kPortUnavailable, "port_unavailable"},
    {RefusalCode::kKindUnsupported, "kind_unsupported"},
    {RefusalCode::kTooManyServices, "too_many_services"},
    {RefusalCode::kHostNotAllowed, "host_not_allowed"},
    {RefusalCode::kHostTaken, "host_taken"},
    {RefusalCode::kGroupMismatch, "group_mismatch"},
    {RefusalCode::kTokenRevoked, "token_revoked"},
};

Unexpected bad(std::string* error, const std::string& what) {
  if (error != nullptr) *error = what;
  return fail(Errc::kParse, "control message");
}

bool valid_chars(std::string_view text, std::size_t max) {
  if (text.empty() || text.size() > max) return false;
  for (char c : text) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.';
    if (!ok) return false;
  }
  return true;
}
bool valid_name(std::string_view name) { return valid_chars(name, kMaxServiceNameLength); }
bool valid_id(std::string_view id) { return valid_chars(id, kMaxAgentIdLength); }

bool valid_instance(std::string_view text) {
  if (text.size() != kInstanceLength) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

void append_service(std::string& out, const ServiceDecl& service) {
  out += "{\"name\":";
  append_json_string(out, service.name);
  out += ",\"kind\":\"";
  out += route::kind_name(service.kind);
  out += "\"";
  if (service.kind == route::Kind::kTcp) {
    out += ",\"port\":" + std::to_string(service.port);
  } else {
    out += ",\"host\":";
    append_json_string(out, service.host);
  }
  auto append_list = [&out](const char* key, const std::vector<route::Cidr>& list) {
    if (list.empty()) return;
    std::string text;
    for (const route::Cidr& cidr : list) text += (text.empty() ? "" : ",") + cidr.to_string();
    out += ",\"";
    out += key;
    out += "\":";
    append_json_string(out, text);
  };
  append_list("allow_from", service.allow_from);
  append_list("deny_from", service.deny_from);
  if (!service.group.empty()) {
    out += ",\"group\":";
    append_json_string(out, service.group);
  }
  out += "}";
}

void append_health(std::string& out, const ServiceHealth& health) {
  out += "{\"name\":";
  append_json_string(out, health.name);
  out += health.up ? ",\"up\":true}" : ",\"up\":false}";
}

void append_status(std::string& out, const ServiceStatus& status) {
  out += "{\"name\":";
  append_json_string(out, status.name);
  if (status.ok) {
    out += ",\"ok\":true}";
    return;
  }
  out += ",\"ok\":false,\"code\":\"";
  out += refusal_code_name(status.code);
  out += "\",\"message\":";
  append_json_string(out, std::string_view(status.message).substr(0, kMaxStatusMessage));
  out += "}";
}

// Packs items into messages "<head>[item,item,...]}" of at most kMaxControlJson bytes each.
template <typename Item, typename Append>
std::vector<std::string> pack(std::string_view head, std::span<const Item> items, Append append) {
  std::vector<std::string> messages;
  std::string current;
  std::string item_text;
  auto open = [&] {
    current.assign(head);
    current += "[";
  };
  open();
  bool empty = true;
  for (const Item& item : items) {
    item_text.clear();
    append(item_text, item);
    if (!empty && current.size() + 1 + item_text.size() + 2 > kMaxControlJson) {
      current += "]}";
      messages.push_back(std::move(current));
      open();
      empty = true;
    }
    if (!empty) current.push_back(',');
    current += item_text;
    empty = false;
  }
  if (!empty || messages.empty()) {
    current += "]}";
    messages.push_back(std::move(current));
  }
  return messages;
}

class Reader {
 public:
  explicit Reader(simdjson::dom::object object) : object_(object) {}

  bool get_uint(const char* key, std::uint64_t max, std::uint64_t* out) const {
    std::uint64_t v = 0;
    if (object_[key].get(v) != simdjson::SUCCESS || v > max) return false;
    *out = v;
    return true;
  }
  static bool get_string(simdjson::dom::object obj, const char* key, std::size_t max, std::string* out) {
    std::string_view v;
    if (obj[key].get(v) != simdjson::SUCCESS || v.size() > max) return false;
    out->assign(v);
    return true;
  }

 private:
  simdjson::dom::object object_;
};

// A service's optional "allow_from" / "deny_from": "CIDR,CIDR..." with at most kMaxServiceCidrs networks.
Status parse_service_list(simdjson::dom::object service, const char* key, const std::string& name,
                          std::vector<route::Cidr>* out, std::string* error) {
  simdjson::dom::element value;
  if (service[key].get(value) != simdjson::SUCCESS) return {};  // absent
  std::string_view text;
  // Each network is at most 43 characters ("ffff:...:ffff/128") plus a comma.
  if (value.get(text) != simdjson::SUCCESS || text.size() > kMaxServiceCidrs * 44) {
    return bad(error, "claim: service \"" + name + "\": \"" + key + "\" must be a string of networks");
  }
  std::string problem;
  auto list = route::parse_cidr_list(text, &problem);
  if (!list) return bad(error, "claim: service \"" + name + "\": \"" + key + "\": " + problem);
  if (list->size() > kMaxServiceCidrs) {
    return bad(error, "claim: service \"" + name + "\": \"" + key + "\" has more than " +
                          std::to_string(kMaxServiceCidrs) + " networks");
  }
  *out = std::move(*list);
  return {};
}

Result<ServiceDecl> parse_service(simdjson::dom::element item, std::string* error) {
  simdjson::dom::object service;
  if (item.get(service) != simdjson::SUCCESS) return bad(error, "claim: each service must be an object");
  ServiceDecl s;
  if (!Reader::get_string(service, "name", kMaxServiceNameLength, &s.name) || !valid_name(s.name)) {
    return bad(error, "claim: service \"name\" must be 1..64 of [A-Za-z0-9._-]");
  }
  RINGTUN_TRY(parse_service_list(service, "allow_from", s.name, &s.allow_from, error));
  RINGTUN_TRY(parse_service_list(service, "deny_from", s.name, &s.deny_from, error));
  if (simdjson::dom::element group; service["group"].get(group) == simdjson::SUCCESS) {
    if (!Reader::get_string(service, "group", kMaxServiceNameLength, &s.group) || !valid_name(s.group)) {
      return bad(error, "claim: service \"" + s.name + "\": \"group\" must be 1..64 of [A-Za-z0-9._-]");
    }
  }
  std::string kind;
  if (!Reader::get_string(service, "kind", 8, &kind)) {
    return bad(error, "claim: service \"" + s.name + "\": \"kind\" must be \"tcp\", \"http\" or \"tls\"");
  }
  if (kind == "tcp") {
    s.kind = route::Kind::kTcp;
    std::uint64_t port = 0;
    if (service["port"].get(port) != simdjson::SUCCESS || port == 0 || port > 65535) {
      return bad(error, "claim: service \"" + s.name + "\": \"port\" must be an integer 1..65535");
    }
    s.port = static_cast<std::uint16_t>(port);
    return s;
  }
  if (kind == "http" || kind == "tls") {
    s.kind = kind == "http" ? route::Kind::kHttp : route::Kind::kTls;
    std::string host;
    if (!Reader::get_string(service, "host", route::kMaxHostLength + 1, &host) ||
        !route::normalize_host(host, true, &s.host)) {
      return bad(error, "claim: service \"" + s.name + "\": \"host\" must be a host name or *.suffix");
    }
    return s;
  }
  return bad(error, "claim: service \"" + s.name + "\": \"kind\" must be \"tcp\", \"http\" or \"tls\"");
}

Result<ServiceHealth> parse_health(simdjson::dom::element item, std::string* error) {
  simdjson::dom::object object;
  if (item.get(object) != simdjson::SUCCESS) return bad(error, "health: each entry must be an object");
  ServiceHealth health;
  if (!Reader::get_string(object, "name", kMaxServiceNameLength, &health.name) || !valid_name(health.name)) {
    return bad(error, "health: \"name\" must be 1..64 of [A-Za-z0-9._-]");
  }
  if (object["up"].get(health.up) != simdjson::SUCCESS) return bad(error, "health: \"up\" must be true or false");
  return health;
}

Result<ServiceStatus> parse_status(simdjson::dom::element item, std::string* error) {
  simdjson::dom::object object;
  if (item.get(object) != simdjson::SUCCESS) return bad(error, "claimed: each status must be an object");
  ServiceStatus status;
  if (!Reader::get_string(object, "name", kMaxServiceNameLength, &status.name) || !valid_name(status.name)) {
    return bad(error, "claimed: status \"name\" must be 1..64 of [A-Za-z0-9._-]");
  }
  if (object["ok"].get(status.ok) != simdjson::SUCCESS) return bad(error, "claimed: \"ok\" must be true or false");
  if (status.ok) return status;
  std::string code;
  if (!Reader::get_string(object, "code", 64, &code)) return bad(error, "claimed: \"code\" must be a string");
  status.code = RefusalCode::kBadRequest;
  for (const auto& entry : kCodeNames) {
    if (code == entry.name) status.code = entry.code;
  }
  if (!Reader::get_string(object, "message", kMaxRefusalMessage, &status.message)) status.message = code;
  return status;
}

Result<std::string> parse_release_name(simdjson::dom::element item, std::string* error) {
  std::string_view name;
  if (item.get(name) != simdjson::SUCCESS || !valid_name(name)) {
    return bad(error, "release: each service must be a name of 1..64 of [A-Za-z0-9._-]");
  }
  return std::string(name);
}

// `object`'s "services": an array of at most kMaxServices entries (`noun` in the message), each read by `parse`
// into `out`. Errors say "TYPE: ...".
template <typename T>
Status read_list(simdjson::dom::object object, std::string_view type, std::string_view noun,
                 Result<T> (*parse)(simdjson::dom::element, std::string*), std::vector<T>* out, std::string* error) {
  const std::string what(type);
  simdjson::dom::array items;
  if (object["services"].get(items) != simdjson::SUCCESS) return bad(error, what + ": \"services\" must be an array");
  if (items.size() > kMaxServices) return bad(error, what + ": more than 1024 " + std::string(noun));
  for (simdjson::dom::element item : items) {
    auto parsed = parse(item, error);
    if (!parsed) return Unexpected{parsed.error()};
    out->push_back(std::move(*parsed));
  }
  return {};
}

}  // namespace

const char* refusal_code_name(RefusalCode code) noexcept {
  for (const auto& entry : kCodeNames) {
    if (entry.code == code) return entry.name;
  }
  return "bad_request";
}

bool refusal_is_fatal(RefusalCode code) noexcept {
  switch (code) {
    case RefusalCode::kBadRequest:
    case RefusalCode::kVersion:
    case RefusalCode::kBadToken:
    case RefusalCode::kTokenRevoked:
    case RefusalCode::kIdInUse:
      return true;
    default:
      return false;  // transient: the gateway is restarting, busy, or has fewer cores now
  }
}

bool service_refusal_is_retryable(RefusalCode code) noexcept {
  return code == RefusalCode::kPortTaken || code == RefusalCode::kHostTaken || code == RefusalCode::kPortUnavailable ||
         code == RefusalCode::kBusy;
}

std::string encode_hello(const Hello& hello) {
  std::string out = "{\"type\":\"hello\",\"version\":" + std::to_string(hello.version) + ",\"agent_id\":";
  append_json_string(out, hello.agent_id);
  out += ",\"token\":";
  append_json_string(out, hello.token);
  out += ",\"instance\":";
  append_json_string(out, hello.instance);
  out += ",\"conn_index\":" + std::to_string(hello.conn_index) + ",\"conn_count\":" + std::to_string(hello.conn_count);
  out += "}";
  return out;
}

std::string encode_welcome(const Welcome& welcome) {
  return "{\"type\":\"welcome\",\"gateway_cores\":" + std::to_string(welcome.gateway_cores) +
         ",\"conn_index\":" + std::to_string(welcome.conn_index) + "}";
}

std::string encode_refusal(const Refusal& refusal) {
  std::string out = "{\"type\":\"refused\",\"code\":\"";
  out += refusal_code_name(refusal.code);
  out += "\",\"message\":";
  append_json_string(out, std::string_view(refusal.message).substr(0, kMaxRefusalMessage));
  out += "}";
  return out;
}

std::vector<std::string> encode_claims(std::span<const ServiceDecl> services) {
  return pack<ServiceDecl>("{\"type\":\"claim\",\"services\":", services, append_service);
}

std::vector<std::string> encode_claimed(std::span<const ServiceStatus> statuses) {
  return pack<ServiceStatus>("{\"type\":\"claimed\",\"services\":", statuses, append_status);
}

std::vector<std::string> encode_health(std::span<const ServiceHealth> health) {
  return pack<ServiceHealth>("{\"type\":\"health\",\"services\":", health, append_health);
}

std::vector<std::string> encode_release(std::span<const std::string> names) {
  return pack<std::string>("{\"type\":\"release\",\"services\":", names,
                           [](std::string& out, const std::string& name) { append_json_string(out, name); });
}

std::string make_instance_nonce() {
  unsigned char random[kInstanceLength / 2] = {};
  std::size_t have = 0;
  while (have < sizeof random) {
    const ssize_t n = ::getrandom(random + have, sizeof random - have, 0);
    if (n > 0) have += static_cast<std::size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : random) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xF]);
  }
  return out;
}

Result<ControlMessage> parse_control(std::span<const std::byte> json, std::string* error) {
  if (json.size() > kMaxControlJson) return bad(error, "control message larger than 16 KiB");
  simdjson::dom::parser parser;
  simdjson::padded_string padded(reinterpret_cast<const char*>(json.data()), json.size());
  simdjson::dom::element root;
  if (auto err = parser.parse(padded).get(root); err) {
    return bad(error, std::string("invalid JSON: ") + simdjson::error_message(err));
  }
  simdjson::dom::object object;
  if (root.get(object) != simdjson::SUCCESS) return bad(error, "control message is not a JSON object");
  std::string_view type;
  if (object["type"].get(type) != simdjson::SUCCESS) return bad(error, "control message without a \"type\" string");
  const Reader in(object);

  ControlMessage message;
  std::uint64_t value = 0;
  if (type == "hello") {
    message.type = ControlMessage::Type::kHello;
    Hello& h = message.hello;
    if (!in.get_uint("version", UINT32_MAX, &value)) return bad(error, "hello: \"version\" must be an integer");
    h.version = static_cast<std::uint32_t>(value);
    if (h.version != kHandshakeVersion) {
      return bad(error, "hello: handshake version " + std::to_string(h.version) +
                            " is not supported (this gateway speaks " + std::to_string(kHandshakeVersion) +
                            "): run the same ringtun version on the agent and the gateway");
    }
    // The id ends up in log lines and messages: letters, digits and . _ - only (what --agent-id accepts).
    if (!Reader::get_string(object, "agent_id", kMaxAgentIdLength, &h.agent_id) || !valid_id(h.agent_id)) {
      return bad(error, "hello: \"agent_id\" must be 1..128 of [A-Za-z0-9._-]");
    }
    if (!Reader::get_string(object, "token", kMaxTokenLength, &h.token)) {
      return bad(error, "hello: \"token\" must be a string of at most 1024 characters");
    }
    if (!Reader::get_string(object, "instance", kInstanceLength, &h.instance) || !valid_instance(h.instance)) {
      return bad(error, "hello: \"instance\" must be 32 lower-case hex digits");
    }
    if (!in.get_uint("conn_count", kMaxConnections, &value) || value == 0) {
      return bad(error, "hello: \"conn_count\" must be an integer 1..1024");
    }
    h.conn_count = static_cast<std::uint32_t>(value);
    if (!in.get_uint("conn_index", kMaxConnections - 1, &value) || value >= h.conn_count) {
      return bad(error, "hello: \"conn_index\" must be an integer below conn_count");
    }
    h.conn_index = static_cast<std::uint32_t>(value);
    return message;
  }
  // The four list messages: "services" holds at most kMaxServices entries, each read by its own parser.
  if (type == "claim") {
    message.type = ControlMessage::Type::kClaim;
    RINGTUN_TRY(read_list(object, "claim", "services", parse_service, &message.claim, error));
    return message;
  }
  if (type == "claimed") {
    message.type = ControlMessage::Type::kClaimed;
    RINGTUN_TRY(read_list(object, "claimed", "statuses", parse_status, &message.claimed, error));
    return message;
  }
  if (type == "health") {
    message.type = ControlMessage::Type::kHealth;
    RINGTUN_TRY(read_list(object, "health", "services", parse_health, &message.health, error));
    return message;
  }
  if (type == "release") {
    message.type = ControlMessage::Type::kRelease;
    RINGTUN_TRY(read_list(object, "release", "services", parse_release_name, &message.release, error));
    return message;
  }
  if (type == "welcome") {
    message.type = ControlMessage::Type::kWelcome;
    if (!in.get_uint("gateway_cores", kMaxConnections, &value) || value == 0) {
      return bad(error, "welcome: \"gateway_cores\" must be an integer 1..1024");
    }
    message.welcome.gateway_cores = static_cast<std::uint32_t>(value);
    if (!in.get_uint("conn_index", kMaxConnections, &value)) return bad(error, "welcome: \"conn_index\" missing");
    message.welcome.conn_index = static_cast<std::uint32_t>(value);
    return message;
  }
  if (type == "refused") {
    message.type = ControlMessage::Type::kRefused;
    std::string code;
    if (!Reader::get_string(object, "code", 64, &code)) return bad(error, "refused: \"code\" must be a string");
    message.refusal.code = RefusalCode::kBadRequest;
    for (const auto& entry : kCodeNames) {
      if (code == entry.name) message.refusal.code = entry.code;
    }
    if (!Reader::get_string(object, "message", kMaxRefusalMessage, &message.refusal.message)) {
      message.refusal.message = code;
    }
    return message;
  }
  return bad(error, "unknown control message type");
}

}  // namespace ringtun::tunnel
