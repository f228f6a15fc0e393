// The settings table's promise: each setting is defined once, and every way in (a flag, a JSON key) and out (--help,
// the config member) comes from that one entry. These tests walk the table instead of naming settings, so an entry
// is covered as soon as it is added.
#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include "app/config.hpp"
#include "app/settings.hpp"
#include "config_test_support.hpp"

using namespace ringtun;
using namespace ringtun::app;
namespace table = ringtun::app::detail;
using app::test::contains;
using app::test::TempFile;
using table::Kind;
using table::Program;
using table::Setting;
using table::Target;

namespace {

constexpr Program kPrograms[] = {Program::kGateway, Program::kAgent};

std::string_view usage_of(Program program) {
  return program == Program::kGateway ? gateway_usage() : agent_usage();
}

// --help wraps long lines: compare with every run of spaces and newlines as one space.
std::string collapse(std::string_view text) {
  std::string out;
  for (char c : text) {
    bool space = c == ' ' || c == '\n';
    if (space && !out.empty() && out.back() == ' ') continue;
    out += space ? ' ' : c;
  }
  return out;
}

// A default-constructed config of either program, as a Target for the table's fields.
struct Defaults {
  GatewayConfig gateway;
  AgentConfig agent;
  Target of(Program program) {
    return program == Program::kGateway ? table::target_of(&gateway) : table::target_of(&agent);
  }
};

// The shortest command line each program accepts.
std::vector<std::string> base_line(Program program) {
  if (program == Program::kGateway) return {"--listen", "0.0.0.0:7000", "--token", "s3cret"};
  return {"--gateway",           "127.0.0.1:7000", "--token", "s3cret", "--expose", "tcp:8080=127.0.0.1:80",
          "--insecure-plaintext"};
}

struct Run {
  bool ok;
  Errc code;
  std::string error;
};

Run parse(Program program, const std::vector<std::string>& args) {
  if (program == Program::kGateway) {
    auto r = test::gateway(args);
    return {r.ok(), r.code(), r.error};
  }
  auto r = test::agent_exact(args);
  return {r.ok(), r.code(), r.error};
}

std::vector<std::string> plus(std::vector<std::string> base, const std::vector<std::string>& more) {
  base.insert(base.end(), more.begin(), more.end());
  return base;
}

}  // namespace

TEST_CASE("every setting appears in its program's --help with its value, help line, range and default") {
  Defaults defaults;
  for (Program program : kPrograms) {
    const std::string help = collapse(usage_of(program));
    const Target target = defaults.of(program);
    for (const Setting& setting : table::settings()) {
      CAPTURE(setting.flag);
      if (!table::serves(setting, program)) {
        // Absent, unless the program has a setting of the same flag (--cert: one member, two help lines).
        const Setting* own = table::find_flag(program, setting.flag);
        if (own == nullptr) CHECK_FALSE(contains(help, " " + table::flag_column(setting) + " "));
        continue;
      }
      // The flag and its value, then the help line right after it.
      CHECK(contains(help, " " + table::flag_column(setting) + " " + collapse(setting.help)));
      if (setting.kind == Kind::kInteger) {
        CHECK(contains(help, collapse(setting.help) + ", " + std::to_string(setting.min) + ".." +
                                 std::to_string(setting.max) + " (default"));
      }
      std::string value = setting.field.show != nullptr ? setting.field.show(target) : std::string();
      if (!value.empty()) {
        std::string shown = "(default " + value;
        if (!setting.default_note.empty()) shown += ": " + collapse(setting.default_note);
        CHECK(contains(help, shown + ")"));
      } else if (!setting.default_note.empty()) {
        CHECK(contains(help, "(default: " + collapse(setting.default_note) + ")"));
      }
    }
  }
}

TEST_CASE("--help shows the defaults a parse starts from") {
  for (Program program : kPrograms) {
    Defaults defaults;
    GatewayConfig gateway_config;
    AgentConfig agent_config;
    const std::vector<std::string> args = base_line(program);  // argv points into it
    const auto argv = test::make_argv(program == Program::kGateway ? "ringtun-gateway" : "ringtun-agent", args);
    Target parsed;
    if (program == Program::kGateway) {
      auto r = parse_gateway_args(static_cast<int>(argv.size() - 1), argv.data(), nullptr);
      REQUIRE(r);
      gateway_config = r->config;
      parsed = table::target_of(&gateway_config);
    } else {
      auto r = parse_agent_args(static_cast<int>(argv.size() - 1), argv.data(), nullptr);
      REQUIRE(r);
      agent_config = r->config;
      parsed = table::target_of(&agent_config);
    }
    for (const Setting& setting : table::settings()) {
      if (!table::serves(setting, program) || setting.field.show == nullptr) continue;
      CAPTURE(setting.flag);
      CHECK(setting.field.show(parsed) == setting.field.show(defaults.of(program)));
    }
  }
}

TEST_CASE("every flag has a JSON key or is flag-only by design, and each finds its own entry") {
  for (const Setting& setting : table::settings()) {
    CAPTURE(setting.flag);
    const bool flag_only = setting.kind == Kind::kConfigFile || setting.kind == Kind::kHelp ||
                           setting.kind == Kind::kVersion || setting.kind == Kind::kTokenPorts ||
                           setting.kind == Kind::kTokenHosts || setting.kind == Kind::kTokenAccess ||
                           setting.kind == Kind::kTokenFile;
    CHECK(setting.json_key.empty() == flag_only);
    for (Program program : kPrograms) {
      if (!table::serves(setting, program)) continue;
      CHECK(table::find_flag(program, setting.flag) == &setting);
      if (!setting.short_flag.empty()) CHECK(table::find_flag(program, setting.short_flag) == &setting);
      if (!setting.json_key.empty()) CHECK(table::find_json_key(program, setting.json_key) == &setting);
    }
  }
  // A flag-only setting's would-be key is refused in the file, with the usual message.
  for (Program program : kPrograms) {
    for (const Setting& setting : table::settings()) {
      if (!table::serves(setting, program) || !setting.json_key.empty()) continue;
      std::string key(setting.flag.substr(2));
      for (char& c : key) c = c == '-' ? '_' : c;
      CAPTURE(key);
      TempFile file("{\"" + key + "\": \"x\"}");
      Run r = parse(program, plus(base_line(program), {"--config", file.path()}));
      REQUIRE_FALSE(r.ok);
      CHECK(contains(r.error, file.path() + ": unknown key \"" + key + "\" at the top level"));
    }
  }
}

TEST_CASE("each integer setting takes min and max, and refuses min-1 and max+1 alike from a flag and from JSON") {
  int checked = 0;
  for (Program program : kPrograms) {
    for (const Setting& setting : table::settings()) {
      if (setting.kind != Kind::kInteger || !table::serves(setting, program)) continue;
      CAPTURE(setting.flag);
      ++checked;
      const std::string range = table::range_of(setting);
      // The bounds are stored as given, through the flag's check and through the file.
      for (std::uint64_t v : {setting.min, setting.max}) {
        const std::string text = std::to_string(v);
        CAPTURE(text);
        Defaults flag_config;
        std::uint64_t value = 0;
        REQUIRE(table::check_integer_text(setting, text, &value, nullptr));
        REQUIRE(setting.field.store(flag_config.of(program), table::Value{value, {}}, setting.flag, nullptr));
        CHECK(setting.field.show(flag_config.of(program)) == text);

        Defaults file_config;
        TempFile file("{\"" + std::string(setting.json_key) + "\": " + text + "}");
        std::string error;
        auto loaded = program == Program::kGateway ? table::load_gateway_file(file.path(), &file_config.gateway, &error)
                                                   : table::load_agent_file(file.path(), &file_config.agent, &error);
        REQUIRE_MESSAGE(loaded, error);
        CHECK(setting.field.show(file_config.of(program)) == text);
      }
      // One past each bound: the same range in both messages, each in its source's usual shape.
      std::vector<std::uint64_t> outside = {setting.max + 1};
      if (setting.min > 0) outside.push_back(setting.min - 1);
      for (std::uint64_t v : outside) {
        const std::string text = std::to_string(v);
        CAPTURE(text);
        Run flag = parse(program, plus(base_line(program), {std::string(setting.flag), text}));
        REQUIRE_FALSE(flag.ok);
        CHECK(flag.code == Errc::kInvalidArgument);
        CHECK(flag.error == std::string(setting.flag) + ": \"" + text + "\" is not a number in " + range);

        TempFile file("{\"" + std::string(setting.json_key) + "\": " + text + "}");
        Run json = parse(program, plus(base_line(program), {"--config", file.path()}));
        REQUIRE_FALSE(json.ok);
        CHECK(json.code == Errc::kInvalidArgument);
        CHECK(json.error ==
              file.path() + ": " + std::string(setting.json_key) + ": expected an integer " + range + ", got " + text);
      }
    }
  }
  CHECK(checked >= 8);  // the table does have integer settings for both programs
}

TEST_CASE("--log-level shows back every level it accepts") {
  const Setting* setting = table::find_flag(Program::kGateway, "--log-level");
  REQUIRE(setting != nullptr);
  Defaults defaults;
  const Target target = defaults.of(Program::kGateway);
  CHECK(setting->field.show(target) == "info");
  for (std::string_view level : {"trace", "debug", "info", "warn", "error", "off"}) {
    CAPTURE(level);
    REQUIRE(setting->field.store(target, table::Value{0, level}, "--log-level", nullptr));
    CHECK(setting->field.show(target) == level);
  }
}
