// Command-line plumbing for ringtun-echo: "--name value" / "--name=value" options and bare "--flag"s, typed
// getters with ranges, and a check that nothing unknown was passed. Also the subcommands' entry points.
// Ownership: Args copies what it needs from argv. Thread rules: main thread, at start-up.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "ring/net.hpp"

namespace ringtun::echo {

class Args {
 public:
  // Parses argv[first..argc). A token that is not an option is kept and reported by finish().
  static Args parse(int argc, char** argv, int first);

  // Each getter marks the option as used; a malformed or out-of-range value is an error naming the option.
  Result<std::string> text(const char* name, const char* fallback);
  Result<std::uint32_t> u32(const char* name, std::uint32_t fallback, std::uint32_t min, std::uint32_t max);
  Result<double> number(const char* name, double fallback, double min, double max);
  Result<ring::net::Address> address(const char* name, const char* fallback);
  bool flag(const char* name);
  // Fails naming the first option that no getter asked for.
  Status finish();

  // "ringtun-echo <command> <options...>" as typed (for reports).
  const std::string& command_line() const noexcept { return command_line_; }
  // The option that made the last getter fail (for error messages).
  const std::string& last_error_detail() const noexcept { return detail_; }

 private:
  struct Option {
    std::string name;
    std::string value;
    bool has_value = false;
    bool used = false;
  };
  Option* find(const char* name);

  std::vector<Option> options_;
  std::string detail_;
  std::string command_line_;
};

// Prints `error` with `what` to stderr, plus the option detail if any; returns the exit code 2 (usage) or 1.
int report_error(const char* what, const Error& error, const std::string& detail = {});

// Subcommands. Each returns the process exit code.
int run_serve_command(Args& args);
int run_latency_command(Args& args);
int run_rps_command(Args& args);
int run_compare_command(Args& args);
int run_demo_command(Args& args);

// Blocks SIGINT/SIGTERM in the calling thread (and every thread it starts afterwards), so that the server's
// run() alone receives them. Call before starting any thread.
void block_stop_signals() noexcept;

}  // namespace ringtun::echo
