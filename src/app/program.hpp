// program_main: what ringtun-gateway's and ringtun-agent's main() share: parse flags and config, answer --help and
// --version, set the log level, run. Bad flags or config print one line "PROGRAM: problem" and return 2.
// Thread rules: main thread, before any runtime exists.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

#include "app/config.hpp"
#include "common/log.hpp"

namespace ringtun::app {

template <typename Config>
int program_main(const char* name, int argc, const char* const* argv,
                 Result<Parsed<Config>> (*parse)(int, const char* const*, std::string*), std::string_view (*usage)(),
                 int (*run)(const Config&)) {
  std::string error;
  auto parsed = parse(argc, argv, &error);
  if (!parsed) {
    std::fprintf(stderr, "%s: %s\n", name, error.c_str());
    return 2;
  }
  if (parsed->outcome == ParseOutcome::kHelp) {
    std::fwrite(usage().data(), 1, usage().size(), stdout);
    return 0;
  }
  if (parsed->outcome == ParseOutcome::kVersion) {
    std::printf("%s %s\n", name, RINGTUN_VERSION);
    return 0;
  }
  log::set_level(parsed->config.common.log_level);
  for (const std::string& warning : parsed->warnings) log::write(log::Level::kWarn, "%s", warning.c_str());
  return run(parsed->config);
}

}  // namespace ringtun::app
