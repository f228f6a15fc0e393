// Body framing: length counting and a byte-at-a-time chunked state machine (chunk data is skipped in bulk). The
// machine keeps every decision in its state, so input split anywhere gives the same answer as input whole.
#include "http/body.hpp"

namespace ringtun::http {

namespace {

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_tchar(char c) noexcept {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

// CTLs other than HTAB, and DEL: never part of an extension or a trailer value.
bool is_bad_text_char(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return (u < 0x20 && u != '\t') || u == 0x7f;
}

constexpr std::uint32_t kMaxSizeDigits = 16;  // 64 bits of hex: the size cannot overflow

}  // namespace

void BodyFramer::start(BodyKind kind, std::uint64_t length) noexcept {
  *this = BodyFramer{};
  kind_ = kind;
  switch (kind) {
    case BodyKind::kNone:
      done_ = true;
      break;
    case BodyKind::kLength:
      remaining_ = length;
      done_ = length == 0;
      break;
    case BodyKind::kChunked:
    case BodyKind::kUntilClose:
      done_ = false;
      break;
  }
}

BodyFramer::Step BodyFramer::fail(std::size_t used, const char* error) noexcept {
  chunk_ = Chunk::kFailed;
  error_ = error;
  seen_ += used;
  return Step{used, false, error};
}

BodyFramer::Step BodyFramer::feed(std::string_view bytes) noexcept {
  if (error_ != nullptr) return Step{0, false, error_};
  if (done_) return Step{0, true, nullptr};
  switch (kind_) {
    case BodyKind::kLength: {
      const std::uint64_t take = bytes.size() < remaining_ ? bytes.size() : remaining_;
      remaining_ -= take;
      seen_ += take;
      done_ = remaining_ == 0;
      return Step{static_cast<std::size_t>(take), done_, nullptr};
    }
    case BodyKind::kUntilClose:
      seen_ += bytes.size();
      return Step{bytes.size(), false, nullptr};
    case BodyKind::kChunked:
      return feed_chunked(bytes);
    case BodyKind::kNone:
      break;
  }
  return Step{0, true, nullptr};
}

BodyFramer::Step BodyFramer::feed_chunked(std::string_view bytes) noexcept {
  std::size_t i = 0;
  const std::size_t n = bytes.size();
  while (i < n) {
    if (chunk_ == Chunk::kData) {
      const std::uint64_t left = n - i;
      const std::uint64_t take = left < remaining_ ? left : remaining_;
      remaining_ -= take;
      i += static_cast<std::size_t>(take);
      if (remaining_ == 0) chunk_ = Chunk::kDataCr;
      continue;
    }
    const char c = bytes[i];
    const Chunk before = chunk_;
    switch (chunk_) {
      case Chunk::kSize: {
        const int h = hex_value(c);
        if (h >= 0) {
          if (++digits_ > kMaxSizeDigits) return fail(i, "chunk size too long");
          remaining_ = remaining_ << 4 | static_cast<std::uint64_t>(h);
        } else if (digits_ == 0) {
          return fail(i, "chunk size missing");
        } else if (c == '\r') {
          chunk_ = Chunk::kSizeLf;
        } else if (c == ' ' || c == '\t') {
          chunk_ = Chunk::kSizeWs;
        } else if (c == ';') {
          chunk_ = Chunk::kExtension;
        } else {
          return fail(i, c == '\n' ? "bare LF in chunk line" : "invalid chunk size");
        }
        break;
      }
      case Chunk::kSizeWs:
        if (c == ';') {
          chunk_ = Chunk::kExtension;
        } else if (c == '\r') {
          chunk_ = Chunk::kSizeLf;
        } else if (c != ' ' && c != '\t') {
          return fail(i, "invalid chunk line");
        }
        break;
      case Chunk::kExtension:
        if (c == '\r') {
          chunk_ = Chunk::kSizeLf;
        } else if (is_bad_text_char(c)) {
          return fail(i, c == '\n' ? "bare LF in chunk line" : "control character in chunk extension");
        }
        break;
      case Chunk::kSizeLf:
        if (c != '\n') return fail(i, "CR without LF in chunk line");
        if (remaining_ == 0) {
          chunk_ = Chunk::kTrailerStart;
        } else {
          chunk_ = Chunk::kData;
        }
        digits_ = 0;
        line_bytes_ = 0;
        break;
      case Chunk::kDataCr:
        if (c != '\r') return fail(i, "chunk data not followed by CRLF");
        chunk_ = Chunk::kDataLf;
        break;
      case Chunk::kDataLf:
        if (c != '\n') return fail(i, "chunk data not followed by CRLF");
        chunk_ = Chunk::kSize;
        break;
      case Chunk::kTrailerStart:
        if (c == '\r') {
          chunk_ = Chunk::kFinalLf;
        } else if (is_tchar(c)) {
          chunk_ = Chunk::kTrailerName;
        } else {
          return fail(i, c == '\n' ? "bare LF in trailer section" : "invalid trailer field");
        }
        break;
      case Chunk::kTrailerName:
        if (c == ':') {
          chunk_ = Chunk::kTrailerValue;
        } else if (!is_tchar(c)) {
          return fail(i, "invalid trailer field name");
        }
        break;
      case Chunk::kTrailerValue:
        if (c == '\r') {
          chunk_ = Chunk::kTrailerLf;
        } else if (is_bad_text_char(c)) {
          return fail(i, c == '\n' ? "bare LF in trailer section" : "control character in trailer value");
        }
        break;
      case Chunk::kTrailerLf:
        if (c != '\n') return fail(i, "CR without LF in trailer section");
        chunk_ = Chunk::kTrailerStart;
        break;
      case Chunk::kFinalLf:
        if (c != '\n') return fail(i, "CR without LF after the trailer section");
        done_ = true;
        seen_ += i + 1;
        return Step{i + 1, true, nullptr};
      case Chunk::kData:
      case Chunk::kFailed:
        break;
    }
    // Limits apply to the framing byte just accepted, by the part of the coding it belongs to.
    // The CR ending a chunk line is not part of it.
    if ((before == Chunk::kSize || before == Chunk::kSizeWs || before == Chunk::kExtension) &&
        chunk_ != Chunk::kSizeLf) {
      if (++line_bytes_ > kMaxChunkLine) return fail(i, "chunk line too long");
    } else if (before >= Chunk::kTrailerStart && ++trailer_bytes_ > kMaxTrailerBytes) {
      return fail(i, "trailer section too large");
    }
    ++i;
  }
  seen_ += n;
  return Step{n, false, nullptr};
}

bool BodyFramer::end_of_input() noexcept {
  if (done_) return true;
  if (kind_ == BodyKind::kUntilClose && error_ == nullptr) {
    done_ = true;
    return true;
  }
  return false;
}

}  // namespace ringtun::http
