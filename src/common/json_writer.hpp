// JsonWriter: builds a compact JSON text into a string (admin API answers, access log lines).
//
// Strings are escaped per RFC 8259 (quote, backslash, control characters as \u00XX); bytes that are not valid
// UTF-8 are written as U+FFFD so the output is always valid JSON whatever a peer sent. Commas are placed by the
// writer: begin_object()/key()/value.../end_object(). Misuse (a value where a key is due) is a bug: asserted.
// Thread rules: one writer per string.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ringtun {

class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  JsonWriter& key(std::string_view name);
  JsonWriter& string(std::string_view value);
  JsonWriter& number(std::uint64_t value);
  JsonWriter& number_signed(std::int64_t value);
  JsonWriter& number_double(double value);  // non-finite values written as null
  JsonWriter& boolean(bool value);
  JsonWriter& null();

  // key(name) + value, for the common case.
  JsonWriter& field(std::string_view name, std::string_view value) { return key(name).string(value); }
  JsonWriter& field(std::string_view name, const char* value) { return key(name).string(value); }
  JsonWriter& field(std::string_view name, std::uint64_t value) { return key(name).number(value); }
  JsonWriter& field(std::string_view name, bool value) { return key(name).boolean(value); }

 private:
  void before_value();
  void open(char bracket, bool object);
  void close(char bracket, bool object);
  std::string& out_;
  std::vector<bool> first_;   // per open container: no element written yet
  std::vector<bool> object_;  // per open container: an object (keys due) rather than an array
  bool after_key_ = false;
};

// Appends `text` as a JSON string literal (with quotes): '"' and '\\' escaped, \n \r \t as such, other control
// characters as \u00xx, ill-formed UTF-8 replaced by U+FFFD (one per maximal ill-formed subpart, as Unicode
// recommends), everything else (including DEL, unless `escape_del`, and valid non-ASCII) as is. `escape_del`: DEL
// as \u007f too, for text a terminal may show (the access log), so no control byte reaches it.
void append_json_string(std::string& out, std::string_view text, bool escape_del = false);

}  // namespace ringtun
