// Secrets read from files, so that they never appear on a command line (ps, /proc/PID/cmdline) or in a config file
// that is world-readable: --token-file on both programs, and whatever later flag names a secret file (the admin
// token) reuses read_secret_file. Under systemd the file is a credential: LoadCredential=token:/etc/ringtun/token
// and --token-file ${CREDENTIALS_DIRECTORY}/token.
//
// A secret file holds text: trailing whitespace (the editor's final newline) is not part of the secret. Files are
// read whole and bounded, so a wrong path (a log, /dev/zero) is an error, not a stall or a huge allocation.
// Messages follow the settings table's scheme: "<what>: <path>: <problem>".
// Thread rules: start-up only (blocking reads); no state.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace ringtun::app {

// The whole content of `path` (a regular file, a pipe, a /proc file: read to EOF), at most `max_bytes`. On failure
// *problem says what went wrong, for the caller to prefix with its <where>: "cannot open: <strerror>", "cannot read:
// Is a directory", or "larger than <max_bytes>" (Errc: the errno's, or kLimit). Used for secrets and --config.
[[nodiscard]] Result<std::string> read_bounded_file(std::string_view path, std::size_t max_bytes,
                                                    std::string* problem);

// One secret per file: 4 KiB is far above any token (the handshake carries 255 bytes at most).
inline constexpr std::size_t kMaxSecretFileBytes = 4 * 1024;
// A gateway's token file holds one token per line: room for a few hundred.
inline constexpr std::size_t kMaxTokenListFileBytes = 64 * 1024;

// The content of `path`, trailing whitespace removed. `what` names the setting in messages ("--token-file",
// "gateway.json: token_file"). Errors (Errc::kInvalidArgument, or the errno's code): cannot open/read (with
// strerror), a directory, over `max_bytes`, empty after trimming.
[[nodiscard]] Result<std::string> read_secret_file(std::string_view path, std::string_view what,
                                                   std::string* error_text,
                                                   std::size_t max_bytes = kMaxSecretFileBytes);

// A secret on one line of a list file, with its line number (from 1) for messages.
struct SecretLine {
  std::size_t line = 0;
  std::string secret;
};
// The secrets of a list file's content, one per line: surrounding spaces and tabs are trimmed; blank lines and lines
// whose first non-blank character is '#' are skipped. "\r\n" line ends are accepted.
std::vector<SecretLine> secret_lines(std::string_view content);

}  // namespace ringtun::app
