// program_main: what ringtun-gateway's and ringtun-agent's main() share: parse flags and config, answer --help and
// --version, set the log level, run. Bad flags or config print one line "PROGRAM: problem" and return 2.
// Thread rules: main thread, before any runtime exists.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

#include "app/config.hpp"
#include "common/log.hpp"

#ifdef RINGTUN_MIMALLOC
#include <mimalloc.h>
#endif

namespace ringtun::app {

// mimalloc keeps the pages a thread freed, for its next allocations; so what a burst used (a TLS handshake's ECC
// tables: 2-3 MB per thread) stayed resident in an idle process. Pages freed whole now go back to the OS at once.
// The data path allocates nothing per frame, so this costs a madvise only when memory really shrinks.
inline void tune_allocator() {
#if defined(RINGTUN_MIMALLOC) && MI_MALLOC_VERSION < 210  // Debian 12's 2.0.9
  mi_option_set_default(mi_option_page_reset, 1);  // _default: MIMALLOC_* in the environment still win
  mi_option_set_default(mi_option_decommit_delay, 0);
#elif defined(RINGTUN_MIMALLOC)  // 2.1 renamed the delay and purges freed pages by default
  mi_option_set_default(mi_option_purge_delay, 0);
#endif
}

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
  tune_allocator();
  for (const std::string& warning : parsed->warnings) log::write(log::Level::kWarn, "%s", warning.c_str());
  return run(parsed->config);
}

}  // namespace ringtun::app
