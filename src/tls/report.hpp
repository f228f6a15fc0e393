// Private to src/tls: how its set-up functions fail. The message, one line naming the flag or file and what is wrong,
// goes to *error_text for the caller to log; the returned error carries only the code.
#pragma once

#include <string>

#include "common/result.hpp"

namespace ringtun::tls::detail {

inline Unexpected report(std::string* error_text, std::string message) {
  if (error_text != nullptr) *error_text = std::move(message);
  return Unexpected{Error{Errc::kInvalidArgument, "TLS set-up"}};
}

}  // namespace ringtun::tls::detail
