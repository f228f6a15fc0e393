// Reading secret files (see secret_file.hpp).
#include "app/secret_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "app/settings.hpp"

namespace ringtun::app {
namespace {

constexpr std::string_view kBlanks = " \t\r\n\v\f";

std::string_view trim_end(std::string_view text) {
  std::size_t end = text.find_last_not_of(kBlanks);
  return end == std::string_view::npos ? std::string_view() : text.substr(0, end + 1);
}

}  // namespace

Result<std::string> read_bounded_file(std::string_view path, std::size_t max_bytes, std::string* problem) {
  auto os_error = [&](int err, const char* doing) -> Unexpected {
    char buf[128];
    const char* msg = strerror_r(err, buf, sizeof buf);  // GNU variant returns the message
    *problem = std::string(doing) + ": " + msg;
    return fail_errno(err, "reading a file");
  };
  const std::string name(path);
  const int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return os_error(errno, "cannot open");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    const int err = S_ISDIR(st.st_mode) ? EISDIR : errno;
    ::close(fd);
    return os_error(err, "cannot read");
  }
  // Read until EOF (pipes, /proc files have no size), but never more than one byte past the cap.
  std::string contents;
  char buf[16384];
  while (contents.size() <= max_bytes) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return os_error(err, "cannot read");
    }
    if (n == 0) break;
    contents.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (contents.size() > max_bytes) {
    *problem = "larger than " + std::to_string(max_bytes) + " bytes";
    return ringtun::fail(Errc::kLimit, "file too large");
  }
  return contents;
}

Result<std::string> read_secret_file(std::string_view path, std::string_view what, std::string* error_text,
                                     std::size_t max_bytes) {
  const std::string prefix = std::string(what) + ": " + printable_path(path) + ": ";
  if (path.empty() || path.find('\0') != std::string_view::npos) {
    return detail::report(error_text, Errc::kInvalidArgument, std::string(what) + ": expected a file name");
  }
  std::string problem;
  auto contents = read_bounded_file(path, max_bytes, &problem);
  if (!contents) {
    if (contents.error().code() == Errc::kLimit) {
      return detail::report(error_text, Errc::kInvalidArgument,
                            prefix + "larger than " + std::to_string(max_bytes / 1024) + " KiB (not a secret file?)");
    }
    if (error_text != nullptr) *error_text = prefix + problem;
    return Unexpected{contents.error()};
  }
  contents->resize(trim_end(*contents).size());
  if (contents->empty()) return detail::report(error_text, Errc::kInvalidArgument, prefix + "empty");
  return contents;
}

std::vector<SecretLine> secret_lines(std::string_view content) {
  std::vector<SecretLine> out;
  std::size_t number = 0;
  while (!content.empty()) {
    ++number;
    std::size_t end = content.find('\n');
    std::string_view line = content.substr(0, end);
    content = end == std::string_view::npos ? std::string_view() : content.substr(end + 1);
    line = trim_end(line);
    std::size_t begin = line.find_first_not_of(kBlanks);
    if (begin == std::string_view::npos || line[begin] == '#') continue;
    out.push_back(SecretLine{number, std::string(line.substr(begin))});
  }
  return out;
}

}  // namespace ringtun::app
