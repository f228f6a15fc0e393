// The --config file: reading it (bounded), parsing it with simdjson's DOM API, and storing what it sets through the
// settings table (the same Fields the flags use, so a value gets the same checks and messages either way).
//
// simdjson 3.0.1's DOM parser says what went wrong but not where, so on a syntax error common/json_error's scanner
// (locate_json_error) walks the text to find the first offending byte and gives line, column and a specific
// reason. The scanner runs only on the error path, bounded by the same depth limit.
// Duplicate keys are legal for simdjson; we reject them, since with duplicates one of two settings would be
// silently ignored.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <simdjson.h>

#include <cerrno>
#include <cstring>
#include <span>
#include <vector>

#include "app/secret_file.hpp"
#include "app/settings.hpp"
#include "tunnel/handshake.hpp"
#include "common/assert.hpp"
#include "common/json_error.hpp"

namespace ringtun::app::detail {
namespace {

// ---------------------------------------------------------------------------------------------------------------
// Reading the file

Status read_config_file(std::string_view path, std::string* contents, std::string* error_text) {
  if (path.empty() || path.find('\0') != std::string_view::npos) {
    return report(error_text, Errc::kInvalidArgument, "--config: expected a file name");
  }
  std::string problem;
  auto read = read_bounded_file(path, kMaxConfigFileBytes, &problem);
  if (!read) {
    if (read.error().code() == Errc::kLimit) {
      return report(error_text, Errc::kInvalidArgument,
                    printable_path(path) + ": config too large (over 1 MiB; a config is a few hundred bytes)");
    }
    if (error_text != nullptr) *error_text = printable_path(path) + ": " + problem;
    return Unexpected{read.error()};
  }
  *contents = std::move(*read);
  return {};
}

// ---------------------------------------------------------------------------------------------------------------
// Storing what the file says

using simdjson::dom::element;
using simdjson::dom::element_type;

std::string describe(const element& value) {
  std::int64_t signed_value = 0;
  std::uint64_t unsigned_value = 0;
  bool flag = false;
  switch (value.type()) {
    case element_type::ARRAY:
      return "an array";
    case element_type::OBJECT:
      return "an object";
    case element_type::INT64:
      return value.get(signed_value) == simdjson::SUCCESS ? std::to_string(signed_value) : "an integer";
    case element_type::UINT64:
      return value.get(unsigned_value) == simdjson::SUCCESS ? std::to_string(unsigned_value) : "an integer";
    case element_type::DOUBLE:
      return "a number with a fraction or exponent";
    case element_type::STRING:
      return "a string";
    case element_type::BOOL:
      return value.get(flag) == simdjson::SUCCESS && flag ? "true" : "false";
    case element_type::NULL_VALUE:
      return "null";
  }
  return "a value of unknown type";
}

// The keys one object kind accepts, by index: the caller marks each one seen, so duplicates show in one pass.
struct KeySet {
  const std::string_view* names;
  std::size_t count;
  int index_of(std::string_view key) const noexcept {
    for (std::size_t i = 0; i < count; ++i) {
      if (names[i] == key) return static_cast<int>(i);
    }
    return -1;
  }
};

constexpr std::string_view kTokenKeys[] = {"token",     "allow_ports", "allow_hosts",         "allow_from",
                                           "deny_from", "conn_rate",   "max_conns",           "max_conns_per_client"};
constexpr std::size_t kFirstAccessKey = 3;  // allow_from and the rest: the token's access policy
// "type" is the older name of "kind": files written before http and tls services keep working.
constexpr std::string_view kServiceKeys[] = {"name",  "kind",           "type",       "public_port", "host",
                                             "local", "proxy_protocol", "allow_from", "deny_from"};

class Loader {
 public:
  Loader(std::string_view path, Program program, std::string* error_text)
      : file_(printable_path(path)), program_(program), error_text_(error_text) {}

  // Parses `text`; on success `root` is the top-level object.
  Status parse(std::string_view text, simdjson::dom::parser* parser, simdjson::dom::object* root) {
    if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // editors on Windows add a UTF-8 BOM
    if (parser->allocate(text.size() + 1, kMaxJsonDepth + 1) != simdjson::SUCCESS) {
      return report(error_text_, Errc::kExhausted, file_ + ": out of memory for the JSON parser");
    }
    simdjson::padded_string padded(text.data(), text.size());
    element doc;
    simdjson::error_code err = parser->parse(padded).get(doc);
    if (err != simdjson::SUCCESS) {
      JsonErrorLocation where = locate_json_error(text, kMaxJsonDepth);
      if (where.found) {
        return report(error_text_, Errc::kParse,
                      file_ + ": line " + std::to_string(where.line) + ", column " + std::to_string(where.column) +
                          ": invalid JSON (" + where.reason + ")");
      }
      return report(error_text_, Errc::kParse, file_ + ": invalid JSON (" + simdjson::error_message(err) + ")");
    }
    if (doc.get(*root) != simdjson::SUCCESS) {
      return report(error_text_, Errc::kParse,
                    file_ + ": expected a JSON object {...} at the top level, got " + describe(doc));
    }
    return {};
  }

  template <typename Config>
  Status load_top(const simdjson::dom::object& root, Config* config) {
    const std::span<const Setting> table = settings();
    std::vector<bool> seen(table.size());
    const Target target = target_of(config);
    for (auto field : root) {
      const Setting* setting = find_json_key(program_, field.key);
      if (setting == nullptr) {
        return report(error_text_, Errc::kParse,
                      file_ + ": unknown key " + in_quotes(field.key) + " at the top level" + key_hint(field.key));
      }
      auto index = static_cast<std::size_t>(setting - table.data());
      if (seen[index]) {
        return report(error_text_, Errc::kParse,
                      file_ + ": duplicate key " + in_quotes(field.key) + " at the top level");
      }
      seen[index] = true;
      const std::string where = file_ + ": " + std::string(field.key);
      Value value;
      switch (setting->kind) {
        case Kind::kTokenList:
        case Kind::kServiceList:
          RINGTUN_TRY(load_list(field.value, where, config));
          continue;
        case Kind::kInteger:
          RINGTUN_TRY(read_integer(field.value, where, setting->min, setting->max, range_of(*setting), &value.integer));
          break;
        case Kind::kSwitch: {
          bool on = false;
          if (field.value.type() != element_type::BOOL || field.value.get_bool().get(on) != simdjson::SUCCESS) {
            return report(error_text_, Errc::kParse, where + ": expected true or false, got " + describe(field.value));
          }
          value.integer = on ? 1 : 0;
          break;
        }
        case Kind::kText:
          RINGTUN_TRY(read_string(field.value, where, &value.text));
          break;
        default:
          RINGTUN_CHECK(false, "a flag-only setting has a JSON key");
      }
      RINGTUN_TRY(setting->field.store(target, value, where, error_text_));
    }
    // "token" with "token_file": which one counts would depend on key order.
    for (std::size_t i = 0; i < table.size(); ++i) {
      if (!seen[i] || table[i].excludes.empty()) continue;
      const Setting* other = find_flag(program_, table[i].excludes);
      if (other != nullptr && seen[static_cast<std::size_t>(other - table.data())]) {
        return report(error_text_, Errc::kInvalidArgument,
                      file_ + ": " + std::string(table[i].json_key) + ": cannot be combined with " +
                          in_quotes(other->json_key) + " (give the value one way)");
      }
    }
    return {};
  }

 private:
  std::string key_hint(std::string_view key) const {
    if (program_ == Program::kGateway && KeySet{kTokenKeys, std::size(kTokenKeys)}.index_of(key) >= 0) {
      return " (use \"tokens\": [{\"token\": ..., \"" + std::string(key) + "\": ...}])";
    }
    Program other = program_ == Program::kGateway ? Program::kAgent : Program::kGateway;
    if (find_json_key(other, key) != nullptr) {
      return program_ == Program::kGateway ? " (it is a ringtun-agent setting)" : " (it is a ringtun-gateway setting)";
    }
    if (program_ == Program::kAgent && key == "expose") {
      return " (use \"services\": [{\"name\": ..., \"kind\": ..., \"public_port\" or \"host\": ..., \"local\": "
             "...}])";
    }
    if (key.find('-') != std::string_view::npos) return " (keys use _ where flags use -)";
    return "";
  }

  Status read_integer(const element& value, const std::string& where, std::uint64_t min, std::uint64_t max,
                      std::string_view range_text, std::uint64_t* out) {
    std::string range = range_text.empty() ? std::to_string(min) + ".." + std::to_string(max) : std::string(range_text);
    element_type type = value.type();
    if (type != element_type::INT64 && type != element_type::UINT64) {
      return report(error_text_, Errc::kParse, where + ": expected an integer " + range + ", got " + describe(value));
    }
    // simdjson types a non-negative integer as INT64 when it fits; get_uint64 reads both kinds if >= 0.
    std::uint64_t number = 0;
    bool negative = value.get(number) != simdjson::SUCCESS;
    if (negative || number < min || number > max) {
      return report(error_text_, Errc::kInvalidArgument,
                    where + ": expected an integer " + range + ", got " + describe(value));
    }
    *out = number;
    return {};
  }

  Status read_string(const element& value, const std::string& where, std::string_view* out) {
    if (value.get(*out) != simdjson::SUCCESS) {
      return report(error_text_, Errc::kParse, where + ": expected a string, got " + describe(value));
    }
    return {};
  }

  // Checks that `value` is an object whose keys all belong to `keys`, once each; fills `fields` (null if absent).
  Status read_object(const element& value, const std::string& where, const KeySet& keys, const char* shape,
                     element* fields, bool* present) {
    simdjson::dom::object object;
    if (value.get(object) != simdjson::SUCCESS) {
      return report(error_text_, Errc::kParse, where + ": expected an object " + shape + ", got " + describe(value));
    }
    for (auto field : object) {
      int i = keys.index_of(field.key);
      if (i < 0) {
        return report(error_text_, Errc::kParse,
                      file_ + ": unknown key " + in_quotes(field.key) + " in " + where.substr(file_.size() + 2));
      }
      if (present[i]) {
        return report(error_text_, Errc::kParse,
                      file_ + ": duplicate key " + in_quotes(field.key) + " in " + where.substr(file_.size() + 2));
      }
      present[i] = true;
      fields[i] = field.value;
    }
    return {};
  }

  Status read_array(const element& value, const std::string& where, const char* shape, simdjson::dom::array* out) {
    if (value.get(*out) != simdjson::SUCCESS) {
      return report(error_text_, Errc::kParse, where + ": expected an array " + shape + ", got " + describe(value));
    }
    return {};
  }

  Status load_list(const element& value, const std::string& where, GatewayConfig* config) {
    static constexpr char kShape[] =
        "[{\"token\": ..., \"allow_ports\": \"LO-HI\", \"allow_hosts\": [\"*.example.com\", ...]}, ...]";
    simdjson::dom::array array;
    RINGTUN_TRY(read_array(value, where, kShape, &array));
    config->tokens.clear();
    SeenSet secrets;
    std::size_t index = 0;
    for (element entry : array) {
      const std::string entry_where = where + "[" + std::to_string(index) + "]";
      element fields[std::size(kTokenKeys)];
      bool present[std::size(kTokenKeys)] = {};
      RINGTUN_TRY(read_object(entry, entry_where, KeySet{kTokenKeys, std::size(kTokenKeys)},
                              "{\"token\": ..., \"allow_ports\": ..., \"allow_hosts\": [...], \"allow_from\": [...], ...}", fields,
                              present));
      if (!present[0]) return report(error_text_, Errc::kInvalidArgument, entry_where + ": missing \"token\"");
      TokenRule rule;
      std::string_view secret;
      RINGTUN_TRY(read_string(fields[0], entry_where + ".token", &secret));
      RINGTUN_TRY(check_token(entry_where + ".token", secret, error_text_));
      std::size_t first = secrets.add(secret, index);
      if (first != SeenSet::kNone) {
        return report(error_text_, Errc::kInvalidArgument,
                      entry_where + ".token: the same secret as " + where.substr(file_.size() + 2) + "[" +
                          std::to_string(first) + "]");
      }
      rule.secret = std::string(secret);
      if (present[1]) {
        std::string_view ports;
        RINGTUN_TRY(read_string(fields[1], entry_where + ".allow_ports", &ports));
        RINGTUN_TRY(check_port_range(entry_where + ".allow_ports", ports, &rule, error_text_));
      }
      if (present[2]) RINGTUN_TRY(read_host_patterns(fields[2], entry_where + ".allow_hosts", &rule));
      for (std::size_t k = kFirstAccessKey; k < std::size(kTokenKeys); ++k) {
        if (present[k]) RINGTUN_TRY(read_access_rule(fields[k], kTokenKeys[k], entry_where, &rule.access));
      }
      config->tokens.push_back(std::move(rule));
      ++index;
    }
    return {};
  }

  // tokens[i].allow_from and the rest: a value as on the command line (a string), a JSON integer for the numbers,
  // a JSON array of strings for the CIDR lists.
  Status read_access_rule(const element& value, std::string_view key, const std::string& entry_where,
                          route::AccessRules* rules) {
    const std::string where = entry_where + "." + std::string(key);
    std::string text;
    simdjson::dom::array array;
    std::uint64_t number = 0;
    if (value.get(array) == simdjson::SUCCESS) {
      std::size_t index = 0;
      for (element item : array) {
        std::string_view part;
        RINGTUN_TRY(read_string(item, where + "[" + std::to_string(index++) + "]", &part));
        if (!text.empty()) text += ',';
        text += part;
      }
      if (index == 0) {
        return report(error_text_, Errc::kInvalidArgument,
                      where + ": an empty list (leave the key out for no list)");
      }
    } else if (value.get_uint64().get(number) == simdjson::SUCCESS) {
      text = std::to_string(number);
    } else {
      std::string_view part;
      RINGTUN_TRY(read_string(value, where, &part));
      text = std::string(part);
    }
    return apply_access_rule(key, where, text, rules, error_text_);
  }

  // tokens[i].allow_hosts: ["app.example.com", "*.example.com"], each normalized; repeats are dropped.
  Status read_host_patterns(const element& value, const std::string& where, TokenRule* rule) {
    simdjson::dom::array array;
    RINGTUN_TRY(read_array(value, where, "of host names or *.suffix patterns [\"app.example.com\", \"*.example.com\"]",
                           &array));
    std::size_t index = 0;
    for (element item : array) {
      const std::string item_where = where + "[" + std::to_string(index++) + "]";
      std::string_view text;
      RINGTUN_TRY(read_string(item, item_where, &text));
      std::string pattern;
      RINGTUN_TRY(check_host_pattern(item_where, text, &pattern, error_text_));
      add_host_pattern(rule, std::move(pattern));
    }
    return {};
  }

  // One entry of "services": {"name", "kind" (or "type"), "public_port" (tcp) or "host" (http, tls), "local"}.
  enum ServiceKey : std::size_t {
    kName,
    kKind,
    kType,
    kPublicPort,
    kHost,
    kLocal,
    kProxyProtocol,
    kAllowFrom,
    kDenyFrom,
    kServiceKeyCount
  };
  static_assert(kServiceKeyCount == std::size(kServiceKeys));

  // *named: the entry gives its name (else it has its default one).
  Status read_service(const element& entry, const std::string& entry_where, ServiceConfig* service, bool* named) {
    element fields[kServiceKeyCount];
    bool present[kServiceKeyCount] = {};
    RINGTUN_TRY(read_object(entry, entry_where, KeySet{kServiceKeys, kServiceKeyCount},
                            "{\"name\": ..., \"kind\": ..., \"public_port\" or \"host\": ..., \"local\": ...}", fields,
                            present));
    if (present[kKind] && present[kType]) {
      return report(error_text_, Errc::kParse,
                    entry_where + ": \"kind\" and \"type\" are one setting (\"type\" is its older name): give one");
    }
    if (present[kKind] || present[kType]) {
      const std::string kind_where = entry_where + (present[kKind] ? ".kind" : ".type");
      std::string_view kind;
      RINGTUN_TRY(read_string(fields[present[kKind] ? kKind : kType], kind_where, &kind));
      if (!parse_service_kind(kind, &service->kind)) {
        return report(error_text_, Errc::kInvalidArgument,
                      kind_where + ": " + in_quotes(kind) + " is not supported (\"tcp\", \"http\" or \"tls\")");
      }
    }
    const bool tcp = service->kind == route::Kind::kTcp;
    const char* kind_name = route::kind_name(service->kind);
    if (tcp) {
      if (present[kHost]) {
        return report(error_text_, Errc::kInvalidArgument,
                      entry_where + ".host: only for http and tls services (a tcp service has \"public_port\")");
      }
      if (!present[kPublicPort]) {
        return report(error_text_, Errc::kInvalidArgument, entry_where + ": missing \"public_port\"");
      }
      std::uint64_t port = 0;
      RINGTUN_TRY(read_integer(fields[kPublicPort], entry_where + ".public_port", 1, 65535, "", &port));
      service->public_port = static_cast<std::uint16_t>(port);
    } else {
      if (present[kPublicPort]) {
        return report(error_text_, Errc::kInvalidArgument,
                      entry_where + ".public_port: only for tcp services (an " + kind_name + " service has \"host\")");
      }
      if (!present[kHost]) {
        return report(
            error_text_, Errc::kInvalidArgument,
            entry_where + ": missing \"host\" (the host name or *.suffix an " + kind_name + " service is found by)");
      }
      std::string_view host;
      RINGTUN_TRY(read_string(fields[kHost], entry_where + ".host", &host));
      RINGTUN_TRY(check_host_pattern(entry_where + ".host", host, &service->host, error_text_));
    }
    if (!present[kLocal]) return report(error_text_, Errc::kInvalidArgument, entry_where + ": missing \"local\"");
    *named = present[kName];
    if (present[kName]) {
      std::string_view name;
      RINGTUN_TRY(read_string(fields[kName], entry_where + ".name", &name));
      RINGTUN_TRY(check_service_name(entry_where + ".name", name, error_text_));
      service->name = std::string(name);
    } else {
      RINGTUN_TRY(default_service_name(entry_where, service, "a \"name\"", error_text_));
    }
    std::string_view local;
    RINGTUN_TRY(read_string(fields[kLocal], entry_where + ".local", &local));
    RINGTUN_TRY(check_local_address(entry_where + ".local", local, &service->local, error_text_));
    service->local_text = std::string(local);
    if (present[kProxyProtocol]) {
      std::string_view version;
      RINGTUN_TRY(read_string(fields[kProxyProtocol], entry_where + ".proxy_protocol", &version));
      if (!tunnel::parse_proxy_protocol(version, &service->proxy_protocol)) {
        return report(error_text_, Errc::kInvalidArgument,
                      entry_where + ".proxy_protocol: " + in_quotes(version) + " is not \"v1\" or \"v2\"");
      }
    }
    for (ServiceKey key : {kAllowFrom, kDenyFrom}) {
      if (!present[key]) continue;
      route::AccessRules lists;
      RINGTUN_TRY(read_access_rule(fields[key], kServiceKeys[key], entry_where, &lists));
      std::vector<route::Cidr>& list = key == kAllowFrom ? lists.allow : lists.deny;
      if (list.size() > tunnel::kMaxServiceCidrs) {
        return report(error_text_, Errc::kInvalidArgument,
                      entry_where + "." + std::string(kServiceKeys[key]) + ": more than " +
                          std::to_string(tunnel::kMaxServiceCidrs) + " networks for one service");
      }
      (key == kAllowFrom ? service->allow_from : service->deny_from) = std::move(list);
    }
    return {};
  }

  Status load_list(const element& value, const std::string& where, AgentConfig* config) {
    static constexpr char kShape[] =
        "[{\"name\": ..., \"kind\": \"tcp\", \"public_port\": PORT, \"local\": \"HOST:PORT\"}, "
        "{\"kind\": \"http\", \"host\": \"app.example.com\", \"local\": \"HOST:PORT\"}, ...]";
    simdjson::dom::array array;
    RINGTUN_TRY(read_array(value, where, kShape, &array));
    config->services.clear();
    SeenSet public_sides;
    SeenSet names;
    const std::string list = where.substr(file_.size() + 2);
    std::size_t index = 0;
    for (element entry : array) {
      const std::string entry_where = where + "[" + std::to_string(index) + "]";
      ServiceConfig service;
      bool named = false;
      RINGTUN_TRY(read_service(entry, entry_where, &service, &named));
      const bool tcp = service.kind == route::Kind::kTcp;
      std::size_t first = public_sides.add(public_side(service), index);
      if (first != SeenSet::kNone) {
        return report(error_text_, Errc::kInvalidArgument,
                      tcp ? entry_where + ".public_port: " + std::to_string(service.public_port) +
                                " is already used by " + list + "[" + std::to_string(first) + "]"
                          : entry_where + ".host: " + public_side(service) + " is already used by " + list + "[" +
                                std::to_string(first) + "]");
      }
      first = names.add(service.name, index);
      if (first != SeenSet::kNone) {
        return report(error_text_, Errc::kInvalidArgument,
                      entry_where + (named ? ".name: " : ": default name ") + in_quotes(service.name) +
                          " is already used by " + list + "[" + std::to_string(first) + "]");
      }
      config->services.push_back(std::move(service));
      ++index;
    }
    return {};
  }

  std::string file_;
  Program program_;
  std::string* error_text_;
};

template <typename Config>
Status load_file(std::string_view path, Program program, Config* config, std::string* error_text) {
  std::string text;
  RINGTUN_TRY(read_config_file(path, &text, error_text));
  simdjson::dom::parser parser;
  simdjson::dom::object root;
  Loader loader(path, program, error_text);
  RINGTUN_TRY(loader.parse(text, &parser, &root));
  return loader.load_top(root, config);
}

}  // namespace

Status load_gateway_file(std::string_view path, GatewayConfig* config, std::string* error_text) {
  return load_file(path, Program::kGateway, config, error_text);
}

Status load_agent_file(std::string_view path, AgentConfig* config, std::string* error_text) {
  return load_file(path, Program::kAgent, config, error_text);
}

}  // namespace ringtun::app::detail
