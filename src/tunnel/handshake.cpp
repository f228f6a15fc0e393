#include "tunnel/handshake.hpp"

#include <simdjson.h>

#include <cstdio>

namespace ringtun::tunnel {

namespace {

struct CodeName {
  RefusalCode code;
  const char* name;
};
constexpr CodeName kCodeNames[] = {
    {RefusalCode::kBadRequest, "bad_request"},       {RefusalCode::kVersion, "version"},
    {RefusalCode::kBadToken, "bad_token"},           {RefusalCode::kPortNotAllowed, "port_not_allowed"},
    {RefusalCode::kPortTaken, "port_taken"},         {RefusalCode::kPortUnavailable, "port_unavailable"},
    {RefusalCode::kIndexOutOfRange, "index_out_of_range"}, {RefusalCode::kNotRegistered, "not_registered"},
    {RefusalCode::kShuttingDown, "shutting_down"},
};

void append_json_string(std::string& out, std::string_view text) {
  out.push_back('"');
  for (unsigned char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

Unexpected bad(std::string* error, const std::string& what) {
  if (error != nullptr) *error = what;
  return fail(Errc::kParse, "control message");
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxServiceNameLength) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.';
    if (!ok) return false;
  }
  return true;
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
    case RefusalCode::kPortNotAllowed:
    case RefusalCode::kPortTaken:
      return true;
    default:
      return false;  // transient: the gateway is restarting, or connection 0 has not registered yet
  }
}

std::string encode_hello(const Hello& hello) {
  std::string out = "{\"type\":\"hello\",\"version\":" + std::to_string(hello.version) + ",\"agent_id\":";
  append_json_string(out, hello.agent_id);
  out += ",\"token\":";
  append_json_string(out, hello.token);
  out += ",\"conn_index\":" + std::to_string(hello.conn_index) + ",\"conn_count\":" + std::to_string(hello.conn_count);
  out += ",\"services\":[";
  for (std::size_t i = 0; i < hello.services.size(); ++i) {
    if (i > 0) out.push_back(',');
    out += "{\"name\":";
    append_json_string(out, hello.services[i].name);
    out += ",\"port\":" + std::to_string(hello.services[i].port) + "}";
  }
  out += "]}";
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
  append_json_string(out, refusal.message);
  out += "}";
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

  auto get_uint = [&](const char* key, std::uint64_t max, std::uint64_t* out) -> bool {
    std::uint64_t v = 0;
    if (object[key].get(v) != simdjson::SUCCESS || v > max) return false;
    *out = v;
    return true;
  };
  auto get_string = [&](simdjson::dom::object obj, const char* key, std::size_t max, std::string* out) -> bool {
    std::string_view v;
    if (obj[key].get(v) != simdjson::SUCCESS || v.size() > max) return false;
    out->assign(v);
    return true;
  };

  ControlMessage message;
  std::uint64_t value = 0;
  if (type == "hello") {
    message.type = ControlMessage::Type::kHello;
    Hello& h = message.hello;
    if (!get_uint("version", UINT32_MAX, &value)) return bad(error, "hello: \"version\" must be an integer");
    h.version = static_cast<std::uint32_t>(value);
    if (h.version != kHandshakeVersion) {
      return bad(error, "hello: handshake version " + std::to_string(h.version) + " is not supported (this gateway speaks " +
                            std::to_string(kHandshakeVersion) + ")");
    }
    if (!get_string(object, "agent_id", kMaxAgentIdLength, &h.agent_id) || h.agent_id.empty()) {
      return bad(error, "hello: \"agent_id\" must be a string of 1..128 characters");
    }
    if (!get_string(object, "token", kMaxTokenLength, &h.token)) {
      return bad(error, "hello: \"token\" must be a string of at most 1024 characters");
    }
    if (!get_uint("conn_count", kMaxConnections, &value) || value == 0) {
      return bad(error, "hello: \"conn_count\" must be an integer 1..1024");
    }
    h.conn_count = static_cast<std::uint32_t>(value);
    if (!get_uint("conn_index", kMaxConnections - 1, &value) || value >= h.conn_count) {
      return bad(error, "hello: \"conn_index\" must be an integer below conn_count");
    }
    h.conn_index = static_cast<std::uint32_t>(value);
    simdjson::dom::array services;
    if (object["services"].get(services) != simdjson::SUCCESS) return bad(error, "hello: \"services\" must be an array");
    if (services.size() > kMaxServices) return bad(error, "hello: more than 256 services");
    for (simdjson::dom::element item : services) {
      simdjson::dom::object service;
      if (item.get(service) != simdjson::SUCCESS) return bad(error, "hello: each service must be an object");
      HelloService s;
      if (!get_string(service, "name", kMaxServiceNameLength, &s.name) || !valid_name(s.name)) {
        return bad(error, "hello: service \"name\" must be 1..64 of [A-Za-z0-9._-]");
      }
      std::uint64_t port = 0;
      if (service["port"].get(port) != simdjson::SUCCESS || port == 0 || port > 65535) {
        return bad(error, "hello: service \"" + s.name + "\": \"port\" must be an integer 1..65535");
      }
      s.port = static_cast<std::uint16_t>(port);
      for (const HelloService& other : h.services) {
        if (other.port == s.port) return bad(error, "hello: port " + std::to_string(s.port) + " listed twice");
      }
      h.services.push_back(std::move(s));
    }
    return message;
  }
  if (type == "welcome") {
    message.type = ControlMessage::Type::kWelcome;
    if (!get_uint("gateway_cores", kMaxConnections, &value) || value == 0) {
      return bad(error, "welcome: \"gateway_cores\" must be an integer 1..1024");
    }
    message.welcome.gateway_cores = static_cast<std::uint32_t>(value);
    if (!get_uint("conn_index", kMaxConnections, &value)) return bad(error, "welcome: \"conn_index\" missing");
    message.welcome.conn_index = static_cast<std::uint32_t>(value);
    return message;
  }
  if (type == "refused") {
    message.type = ControlMessage::Type::kRefused;
    std::string code;
    if (!get_string(object, "code", 64, &code)) return bad(error, "refused: \"code\" must be a string");
    message.refusal.code = RefusalCode::kBadRequest;
    for (const auto& entry : kCodeNames) {
      if (code == entry.name) message.refusal.code = entry.code;
    }
    if (!get_string(object, "message", 1024, &message.refusal.message)) message.refusal.message = code;
    return message;
  }
  return bad(error, "unknown control message type");
}

}  // namespace ringtun::tunnel
