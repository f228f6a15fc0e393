// Where a JSON text first breaks RFC 8259: line, column and a specific reason, for one-line error messages.
//
// simdjson 3.0.1's DOM parser says what went wrong but not where; a caller that got an error from it runs this
// small strict scanner over the same text to point at the first offending byte. It agrees with simdjson on what is
// valid (numbers: 64-bit integers and finite doubles; strings: valid UTF-8, no raw control characters; nesting
// bounded by `max_depth` open objects/arrays), so a rejected document always gets a location. It is iterative (no
// recursion) and linear in the text, so hostile input costs no more than reading it. It lives in src/common, in
// namespace ringtun, because it needs no JSON library: anything that reads JSON can use it.
// Thread rules: a pure function; any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ringtun {

// Line and column count from 1; the column counts UTF-8 characters, not bytes. `offset` is a byte offset.
struct JsonErrorLocation {
  bool found = false;  // false: the text is valid JSON
  std::size_t offset = 0;
  std::size_t line = 1;
  std::size_t column = 1;
  std::string reason;  // e.g. "trailing comma before '}'"
};

// The first violation in `text`, or found == false. `max_depth` bounds nesting (objects and arrays).
JsonErrorLocation locate_json_error(std::string_view text, std::size_t max_depth);

}  // namespace ringtun
