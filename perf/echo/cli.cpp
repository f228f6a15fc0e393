// Command-line options for ringtun-echo (see cli.hpp).
#include "echo/cli.hpp"

#include <signal.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ringtun::echo {

Args Args::parse(int argc, char** argv, int first) {
  Args args;
  args.command_line_ = "ringtun-echo";
  for (int i = 1; i < argc; ++i) args.command_line_ += std::string(" ") + argv[i];
  for (int i = first; i < argc; ++i) {
    const char* token = argv[i];
    Option option;
    if (std::strncmp(token, "--", 2) != 0 || token[2] == '\0') {
      option.value = token;  // no name: never matched by a getter, so finish() reports it
      option.has_value = true;
      args.options_.push_back(std::move(option));
      continue;
    }
    const char* eq = std::strchr(token + 2, '=');
    if (eq != nullptr) {
      option.name.assign(token + 2, eq);
      option.value = eq + 1;
      option.has_value = true;
    } else {
      option.name = token + 2;
      // No subcommand takes positional arguments, so a following non-option token is this option's value.
      if (i + 1 < argc && std::strncmp(argv[i + 1], "--", 2) != 0) {
        option.value = argv[++i];
        option.has_value = true;
      }
    }
    args.options_.push_back(std::move(option));
  }
  return args;
}

Args::Option* Args::find(const char* name) {
  Option* found = nullptr;
  for (Option& o : options_) {
    if (o.name == name) {
      o.used = true;
      found = &o;  // the last occurrence wins, as usual for command lines
    }
  }
  return found;
}

Result<std::string> Args::text(const char* name, const char* fallback) {
  Option* o = find(name);
  if (o == nullptr) return std::string(fallback);
  if (!o->has_value) {
    detail_ = std::string("--") + name;
    return fail(Errc::kParse, "option needs a value");
  }
  return o->value;
}

Result<std::uint32_t> Args::u32(const char* name, std::uint32_t fallback, std::uint32_t min, std::uint32_t max) {
  Option* o = find(name);
  if (o == nullptr) return fallback;
  detail_ = std::string("--") + name;
  if (!o->has_value) return fail(Errc::kParse, "option needs a value");
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(o->value.c_str(), &end, 10);
  if (o->value.empty() || *end != '\0' || errno != 0 || o->value[0] == '-') {
    return fail(Errc::kParse, "not a whole number");
  }
  if (v < min || v > max) {
    detail_ += " (allowed: " + std::to_string(min) + ".." + std::to_string(max) + ")";
    return fail(Errc::kInvalidArgument, "value out of range");
  }
  detail_.clear();
  return static_cast<std::uint32_t>(v);
}

Result<double> Args::number(const char* name, double fallback, double min, double max) {
  Option* o = find(name);
  if (o == nullptr) return fallback;
  detail_ = std::string("--") + name;
  if (!o->has_value) return fail(Errc::kParse, "option needs a value");
  char* end = nullptr;
  const double v = std::strtod(o->value.c_str(), &end);
  if (o->value.empty() || *end != '\0' || !std::isfinite(v)) return fail(Errc::kParse, "not a number");
  if (v < min || v > max) return fail(Errc::kInvalidArgument, "value out of range");
  detail_.clear();
  return v;
}

Result<ring::net::Address> Args::address(const char* name, const char* fallback) {
  auto value = text(name, fallback);
  if (!value) return Unexpected{value.error()};
  auto parsed = ring::net::parse_address(*value);
  if (!parsed) detail_ = std::string("--") + name + " " + *value;
  return parsed;
}

bool Args::flag(const char* name) {
  Option* o = find(name);
  if (o == nullptr) return false;
  // "--forever" alone, or with an explicit true/1/yes; any other value means off.
  return !o->has_value || o->value == "true" || o->value == "1" || o->value == "yes";
}

Status Args::finish() {
  for (const Option& o : options_) {
    if (o.used) continue;
    if (o.name.empty()) {
      detail_ = o.value;
      return fail(Errc::kParse, "unexpected argument (options look like --name value)");
    }
    detail_ = "--" + o.name;
    return fail(Errc::kParse, "unknown option for this command");
  }
  return {};
}

int report_error(const char* what, const Error& error, const std::string& detail) {
  char text[256];
  error.describe(text, sizeof text);
  if (detail.empty()) {
    std::fprintf(stderr, "ringtun-echo: %s: %s\n", what, text);
  } else {
    std::fprintf(stderr, "ringtun-echo: %s: %s: %s\n", what, text, detail.c_str());
  }
  const bool usage = error.code() == Errc::kParse || error.code() == Errc::kInvalidArgument;
  if (usage) std::fprintf(stderr, "(run 'ringtun-echo help' for usage)\n");
  return usage ? 2 : 1;
}

void block_stop_signals() noexcept {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

}  // namespace ringtun::echo
