// Host-name rules (see route.hpp, normalize_host, and host_name.hpp).
#include "route/host_name.hpp"

#include <array>

namespace ringtun::route {
namespace detail {
namespace {

// Byte -> its lower-case form when it may appear inside a label, else 0. '.' and '*' are not label bytes: the
// scanner handles them itself. One table lookup both checks and folds, which keeps the data-path scan branch-light.
constexpr std::array<char, 256> make_label_bytes() {
  std::array<char, 256> t{};
  for (int c = 'a'; c <= 'z'; ++c) t[static_cast<std::size_t>(c)] = static_cast<char>(c);
  for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<std::size_t>(c)] = static_cast<char>(c - 'A' + 'a');
  for (int c = '0'; c <= '9'; ++c) t[static_cast<std::size_t>(c)] = static_cast<char>(c);
  t[static_cast<std::size_t>('-')] = '-';
  return t;
}
constexpr std::array<char, 256> kLabelBytes = make_label_bytes();

constexpr std::size_t kMaxLabelLength = 63;

}  // namespace

const char* fold_host(std::string_view name, bool allow_wildcard, char* out) noexcept {
  if (name.empty()) return "empty host name";
  if (name.size() > kMaxHostLength) return "host name longer than 253 characters";
  std::size_t i = 0;
  if (allow_wildcard && name.size() >= 2 && name[0] == '*' && name[1] == '.') {
    out[0] = '*';
    out[1] = '.';
    i = 2;
    if (i == name.size()) return "wildcard without a name after \"*.\"";
  }
  std::size_t label_start = i;
  for (;; ++i) {
    if (i == name.size() || name[i] == '.') {
      std::size_t length = i - label_start;
      if (length == 0) return "empty label in host name";
      if (length > kMaxLabelLength) return "label longer than 63 characters in host name";
      if (out[label_start] == '-' || out[i - 1] == '-') return "label starts or ends with '-' in host name";
      if (i == name.size()) return nullptr;
      out[i] = '.';
      label_start = i + 1;
      continue;
    }
    char folded = kLabelBytes[static_cast<unsigned char>(name[i])];
    if (folded == 0) {
      return name[i] == '*' ? "'*' only as the leading \"*.\" of a wildcard host name"
                            : "host name byte other than a letter, digit, '-' or '.'";
    }
    out[i] = folded;
  }
}

}  // namespace detail

Status normalize_host(std::string_view name, bool allow_wildcard, std::string* out) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  char folded[kMaxHostLength];
  if (const char* rule = detail::fold_host(name, allow_wildcard, folded)) {
    return fail(Errc::kInvalidArgument, rule);
  }
  out->assign(folded, name.size());
  return {};
}

namespace {

// `name` is `suffix` preceded by at least one more label: "a.b.s" and "b.s" end in ".s"; "s" does not.
bool ends_below(std::string_view name, std::string_view suffix) noexcept {
  return name.size() > suffix.size() + 1 && name.ends_with(suffix) && name[name.size() - suffix.size() - 1] == '.';
}

}  // namespace

bool host_allowed(std::span<const std::string> patterns, std::string_view key) noexcept {
  const bool key_wildcard = detail::is_wildcard(key);
  for (const std::string& pattern : patterns) {
    if (!detail::is_wildcard(pattern)) {
      if (!key_wildcard && key == pattern) return true;  // a wildcard key also matches names the pattern is not
      continue;
    }
    const std::string_view suffix = std::string_view(pattern).substr(2);
    if (key_wildcard) {
      // "*.t" matches the names below t: all below s when t is s or lies below it.
      const std::string_view t = key.substr(2);
      if (t == suffix || ends_below(t, suffix)) return true;
    } else if (ends_below(key, suffix)) {
      return true;
    }
  }
  return false;
}

}  // namespace ringtun::route
