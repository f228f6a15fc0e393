#include <doctest/doctest.h>

#include <string>

#include "tunnel/handshake.hpp"

using namespace ringtun;
using namespace ringtun::tunnel;

namespace {
Result<ControlMessage> parse(const std::string& json, std::string* error) { return parse_control(as_bytes(json), error); }
}  // namespace

TEST_CASE("hello, welcome and refusal round-trip through JSON") {
  Hello hello;
  hello.agent_id = "edge \"1\"\n";
  hello.token = "s3cr\\et";
  hello.conn_index = 2;
  hello.conn_count = 4;
  hello.services = {{"web", 8080}, {"ssh.v2", 2222}};
  std::string error;
  auto back = parse(encode_hello(hello), &error);
  REQUIRE_MESSAGE(back, error);
  REQUIRE(back->type == ControlMessage::Type::kHello);
  CHECK(back->hello.agent_id == hello.agent_id);
  CHECK(back->hello.token == hello.token);
  CHECK(back->hello.conn_index == 2);
  CHECK(back->hello.conn_count == 4);
  REQUIRE(back->hello.services.size() == 2);
  CHECK(back->hello.services[1].name == "ssh.v2");
  CHECK(back->hello.services[1].port == 2222);

  auto welcome = parse(encode_welcome({8, 3}), &error);
  REQUIRE(welcome);
  CHECK(welcome->welcome.gateway_cores == 8);
  CHECK(welcome->welcome.conn_index == 3);

  auto refused = parse(encode_refusal({RefusalCode::kPortTaken, "port 80 is taken"}), &error);
  REQUIRE(refused);
  CHECK(refused->refusal.code == RefusalCode::kPortTaken);
  CHECK(refused->refusal.message == "port 80 is taken");
  CHECK(refusal_is_fatal(RefusalCode::kBadToken));
  CHECK_FALSE(refusal_is_fatal(RefusalCode::kNotRegistered));
}

TEST_CASE("hostile or malformed hellos are refused with a reason, never a crash") {
  const std::string base = R"({"type":"hello","version":1,"agent_id":"a","token":"t","conn_index":0,"conn_count":1,)";
  struct Case {
    std::string json;
    const char* expect;
  } cases[] = {
      {"", "invalid JSON"},
      {"[1,2,3]", "not a JSON object"},
      {"{\"type\":5}", "\"type\""},
      {R"({"type":"goodbye"})", "unknown control message type"},
      {base + R"("services":{}})", "\"services\" must be an array"},
      {base + R"("services":[{"name":"web","port":0}]})", "\"port\" must be an integer 1..65535"},
      {base + R"("services":[{"name":"web","port":70000}]})", "1..65535"},
      {base + R"("services":[{"name":"bad name","port":80}]})", "[A-Za-z0-9._-]"},
      {base + R"("services":[{"name":"a","port":80},{"name":"b","port":80}]})", "listed twice"},
      {R"({"type":"hello","version":2,"agent_id":"a","token":"t","conn_index":0,"conn_count":1,"services":[]})",
       "version 2 is not supported"},
      {R"({"type":"hello","version":1,"agent_id":"","token":"t","conn_index":0,"conn_count":1,"services":[]})",
       "agent_id"},
      {R"({"type":"hello","version":1,"agent_id":"a","token":"t","conn_index":3,"conn_count":2,"services":[]})",
       "conn_index"},
      {R"({"type":"hello","version":1,"agent_id":"a","token":"t","conn_index":0,"conn_count":0,"services":[]})",
       "conn_count"},
      {std::string(20000, ' '), "larger than 16 KiB"},
      {std::string(5000, '[') + std::string(5000, ']'), "invalid JSON"},
      {"{\"type\":\"hello\",\"version\":1,\"agent_id\":\"\xff\xfe\"}", "invalid JSON"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.json.substr(0, 120));
    std::string error;
    auto r = parse(c.json, &error);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == Errc::kParse);
    CHECK_MESSAGE(error.find(c.expect) != std::string::npos, error);
  }
  // A long agent id or too many services are bounded.
  std::string many = base + "\"services\":[";
  for (int i = 0; i < 300; ++i) many += (i ? "," : "") + std::string("{\"name\":\"s\",\"port\":") + std::to_string(i + 1) + "}";
  many += "]}";
  std::string error;
  CHECK_FALSE(parse(many, &error));
  CHECK(error.find("more than 256 services") != std::string::npos);
}

TEST_CASE("a refusal message never echoes a secret it was not given") {
  std::string error;
  auto r = parse(R"({"type":"hello","version":1,"agent_id":"a","token":"super-secret","conn_index":9,"conn_count":1,"services":[]})",
                 &error);
  REQUIRE_FALSE(r);
  CHECK(error.find("super-secret") == std::string::npos);
}
